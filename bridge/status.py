"""`zob status`: what the bridge knows about a vault, for people and for scripts."""

from __future__ import annotations

from typing import Any

from bridge.config import Config, require_vault
from bridge.daemon import daemon_status
from bridge.lineage_stage import open_problems
from bridge.session import reading, state_exists


def vault_status(config: Config) -> dict[str, Any]:
    vault = require_vault(config)
    info: dict[str, Any] = {
        "vault": str(vault),
        "source": config.source,
        "zotero_dir": str(config.zotero_dir) if config.zotero_dir else None,
        "synced": state_exists(vault),
    }
    if not info["synced"]:
        info.update(
            last_sync=None, notes={}, conflicts=[], lineage_problems=[],
            daemon=daemon_status(vault, None),
        )  # fmt: skip
        return info
    with reading(config, root=vault) as session:
        state = session.state
        notes = state.notes().values()
        info["last_sync"] = state.last_sync()
        info["notes"] = {
            "papers": sum(1 for n in notes if n.kind == "paper"),
            "methods": sum(1 for n in notes if n.kind == "method"),
            "deleted_in_zotero": sum(1 for n in notes if n.zotero_deleted),
            "deleted_by_user": sum(1 for n in notes if n.user_deleted),
        }
        info["conflicts"] = [
            {"key": key, "path": path, "field": field, "since": since}
            for key, path, field, since in state.conflicts()
        ]
        info["lineage_problems"] = open_problems(state)
        info["state_schema"] = state.schema_version
        info["daemon"] = daemon_status(vault, state.marks.daemon)
    return info


def print_status(info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    console.print(f"[bold]Vault[/bold]   {info['vault']}")
    source = info["source"] + (f" ({info['zotero_dir']})" if info.get("zotero_dir") else "")
    console.print(f"[bold]Source[/bold]  {source}")
    _print_daemon(console, info.get("daemon") or {})
    last = info.get("last_sync")
    if not last:
        console.print("Never synced here — run `zob sync`.")
        return
    console.print(
        f"[bold]Last sync[/bold] {last['finished_at']} from {last['source']}: "
        f"created {last['created']}, updated {last['updated']}, unchanged {last['unchanged']},"
        f" conflicts {last['conflicts']}, skipped {last['skipped']}, deleted {last['deleted']}"
    )
    notes = info["notes"]
    console.print(
        f"[bold]Notes[/bold]   {notes['papers']} papers, {notes['methods']} methods"
        f" ({notes['deleted_in_zotero']} deleted in Zotero, {notes['deleted_by_user']} deleted"
        " by you and not recreated)"
    )
    for error in last.get("errors", []):
        console.print(f"[yellow]skipped[/yellow] {escape(error['message'])}")
    if info["conflicts"]:
        table = Table(
            "note", "field", "since", title="Open conflicts (delete the callout when done)"
        )
        for conflict in info["conflicts"]:
            table.add_row(conflict["path"], conflict["field"], conflict["since"])
        console.print(table)
    else:
        console.print("No open conflicts.")
    _print_lineage_problems(console, info.get("lineage_problems") or [])


def _print_lineage_problems(console: Any, problems: list[str]) -> None:
    """Open lineage problems (said once as warnings when they appeared)."""
    from rich.markup import escape

    if not problems:
        return
    console.print(
        f"[bold]Lineage problems[/bold] ({len(problems)}; fix them in Zotero or the notes)"
    )
    for problem in problems:
        console.print(f"  [yellow]•[/yellow] {escape(problem)}")


def _print_daemon(console: Any, daemon: dict[str, Any]) -> None:
    """`zob watch` for this vault: running or not, and what it last did."""
    if daemon.get("running"):
        console.print(
            f"[bold]Daemon[/bold]  running, pid {daemon.get('pid')} since {daemon.get('since')}"
            f" ({daemon.get('mode') or 'zob watch'}); {daemon.get('syncs', 0)} syncs,"
            f" last at {daemon.get('last_sync_at') or '—'}"
        )
    elif daemon.get("pid"):
        console.print(
            f"[bold]Daemon[/bold]  not running (last ran as pid {daemon['pid']}, stopped"
            f" {daemon.get('stopped_at') or 'without a clean exit'}) — `zob watch` starts it"
        )
    else:
        console.print("[bold]Daemon[/bold]  not running — `zob watch` or `zob service install`")
    if daemon.get("last_error") and daemon.get("failures"):
        retry = daemon.get("next_retry_in")
        console.print(
            f"[red]Daemon error[/red] {daemon['last_error']} (at {daemon.get('last_error_at')},"
            f" {daemon['failures']} failed attempts"
            + (f", retrying in {retry:g} s)" if retry is not None else ")")
        )
