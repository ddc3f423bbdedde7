"""The `zob` command line: parse, call one function, print. No logic lives here.

Exit codes: `bridge.errors.EXIT_CODES` (shown in every command's --help and in the README).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bridge import __version__, redact
from bridge.actions import ActionKind
from bridge.cli_json import fail, json_option, wants_json
from bridge.cli_plugin import plugin_group
from bridge.cli_service import service_group
from bridge.errors import (
    EPILOG,
    EXIT_BUG,
    EXIT_SKIPPED,
    BridgeError,
    NoSpaceError,
    is_no_space,
)
from bridge.search.commands import add_search_commands


class BridgeGroup(click.Group):
    """Turns the library's errors into a message and an exit code — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BridgeError as exc:
            fail(ctx, str(exc), exc.exit_code, exc)
        except KeyboardInterrupt:
            fail(ctx, "interrupted; notes written so far are complete (every write is atomic)", 130)
        except click.ClickException as exc:
            if not wants_json(ctx):
                raise
            fail(ctx, exc.format_message(), exc.exit_code)
        except (click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so briefly, keep the traceback for ZOB_DEBUG
            if is_no_space(exc):  # any command may meet a full disk: that is no bug
                error = NoSpaceError.from_os_error(exc)  # type: ignore[arg-type]
                fail(ctx, str(error), error.exit_code, error)
            if os.environ.get("ZOB_DEBUG"):
                raise
            fail(
                ctx,
                f"internal error: {type(exc).__name__}: {exc}\n  → this is a bug in "
                "zotero-obsidian-bridge; run again with ZOB_DEBUG=1 and report the traceback",
                EXIT_BUG,
            )


def _error(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + redact.redact(message), err=True)


@click.group(
    cls=BridgeGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(__version__, "--version", prog_name="zob")
def main() -> None:
    """Keep an Obsidian vault in step with a Zotero library.

    One note per paper on a three-pass reading template, your Zotero highlights inside it, and
    method notes linking every method to the papers that propose and extend it. Your own words
    are never overwritten: the bridge only changes its own properties and the regions between
    `%% zob:begin … %%` / `%% zob:end … %%` markers, merging your edits three-way.

    \b
    Start:   zob demo ./demo-vault          (the bundled sample library, no Zotero needed)
    Set up:  zob init --vault ~/Obsidian/Research
    Sync:    zob sync                        (or --dry-run to see the plan first)
    """


# --- shared options ------------------------------------------------------------------------


def source_options(func: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option(
            "--config",
            "config_path",
            type=click.Path(path_type=Path),
            help="Config file (default: $ZOB_CONFIG or the platform config dir).",
        ),
        click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder."),
        click.option(
            "--zotero-dir",
            type=click.Path(path_type=Path),
            help="Zotero's data directory (the folder holding zotero.sqlite).",
        ),
        click.option(
            "--source",
            type=click.Choice(["sqlite", "sample", "web", "local"]),
            help="Where to read Zotero from (default: sqlite).",
        ),
        click.option("--library-id", help="Web/local API: the user or group ID."),
        click.option(
            "--library-type",
            type=click.Choice(["user", "group"]),
            help="Web/local API: a personal or a group library.",
        ),
        click.option("--api-url", help="Web/local API base URL (for self-hosted or tests)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def load(config_path: Path | None, **overrides: Any):  # noqa: ANN201 - Config
    """The config file under the flags; a vault no config describes uses the source it was
    last synced from (`bridge.remembered`)."""
    from bridge.config import load_config
    from bridge.remembered import recall

    file_config = load_config(config_path)
    return recall(file_config.with_overrides(**overrides), file_config, overrides)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int], Callable[[int], None]] | None]:
    """A rich progress bar on long syncs, only when a person is watching a terminal."""
    from bridge.render_terminal import progress_bars

    with progress_bars(enabled) as bars:
        yield None if bars is None else (lambda total: bars(total, "syncing notes", 200))


def print_result(result: Any, as_json: bool, verbose: bool = False) -> None:
    counts = result.counts()
    if as_json:
        warnings = [redact.redact(w) for w in result.warnings]
        deferred = [redact.redact(d["message"]) for d in getattr(result, "deferred", ())]
        errors = [{**e, "message": redact.redact(e["message"])} for e in counts["errors"]]
        data = {**counts, "errors": errors, "warnings": warnings, "deferred_notes": deferred}
        click.echo(json.dumps(data, ensure_ascii=False, default=str))
    else:
        if result.dry_run:
            click.echo("Dry run — nothing was written. The plan:")
            for action in result.actions:
                if action.kind != ActionKind.UNCHANGED or verbose:
                    click.echo(f"  {action.describe()}")
        summary = ", ".join(
            f"{k} {counts[k]}"
            for k in ("created", "updated", "unchanged", "conflicts", "skipped", "deleted")
        )
        click.echo(("Would be: " if result.dry_run else "Synced: ") + summary)
        for warning in result.warnings:
            click.echo(click.style("warning: ", fg="yellow") + redact.redact(warning), err=True)
        for error in result.errors:
            message = redact.redact(error["message"])
            click.echo(click.style("skipped: ", fg="yellow") + message, err=True)
        for deferred in getattr(result, "deferred", ()):
            message = redact.redact(deferred["message"])
            click.echo(
                click.style("still being saved: ", fg="yellow")
                + message
                + " (run `zob sync` again once you stop typing, or leave `zob watch` running)",
                err=True,
            )
        if result.conflicts:
            click.echo(
                "Conflicts are preserved in the notes as '[!warning] zotero-bridge "
                "conflict' callouts; `zob status` lists them."
            )


def _finish(result: Any) -> None:
    if not result.ok:
        sys.exit(EXIT_SKIPPED)


# --- commands ------------------------------------------------------------------------------


@main.command(epilog=EPILOG)
@source_options
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@json_option(
    "Print one JSON object: created, updated, unchanged, conflicts, skipped, deleted, errors,"
    " warnings; a failure is {error, hint, exit_code}. Same exit codes."
)
@click.option(
    "--force", is_flag=True, help="Sync even when the source suddenly returned (almost) nothing."
)
@click.option("--full", is_flag=True, help="Re-read the whole library, not only what changed.")
@click.option("-v", "--verbose", is_flag=True, help="With --dry-run: list unchanged notes too.")
def sync(
    config_path: Path | None,
    dry_run: bool,
    as_json: bool,
    force: bool,
    full: bool,
    verbose: bool,
    **overrides: Any,
) -> None:
    """Bring the vault in step with Zotero once.

    New items get a note in Papers/ built on the three-pass template; changed items update
    only the bridge's properties and managed regions; your edits are merged, never lost.
    A note you deleted is not recreated; a note you moved is found by its zotero_key.
    """
    from bridge.sync import SyncOptions
    from bridge.sync import sync as run_sync

    config = load(config_path, **overrides)
    with progress_bar(not as_json) as progress:
        result = run_sync(
            config, SyncOptions(dry_run=dry_run, force=force, full=full), progress=progress
        )
    print_result(result, as_json, verbose)
    _finish(result)


@main.command(epilog=EPILOG)
@click.argument("vault", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--language",
    type=click.Choice(["auto", "en", "zh"]),
    default="auto",
    show_default=True,
    help="Template language: auto = Chinese for Chinese items, English otherwise.",
)
@json_option("Print the sync summary (warnings and errors too) as JSON.")
def demo(vault: Path, language: str, as_json: bool) -> None:
    """Sync the bundled sample library (19 classic papers) into VAULT.

    No Zotero needed: this shows what the bridge makes — three-pass paper notes, highlights
    grouped by colour, and method lineage (NMS → Soft-NMS, BN + IN → GN, VAE → CVAE): method
    notes with clickable diagrams, a canvas per lineage in Lineage/, and
    `zob lineage gn --story` for a related-work outline.
    Run it again on the same vault and it re-syncs like `zob sync`, keeping your edits.
    """
    from bridge.config import Config
    from bridge.lineage import DEMO_ALIASES
    from bridge.sync import sync as run_sync
    from bridge.vault.guard import check_vault_location

    check_vault_location(vault, None)  # before the folder is made
    try:
        vault.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot create {vault}: {exc.strerror or exc}") from exc
    config = Config().with_overrides(
        vault=vault, source="sample", language=language, lineage_aliases=DEMO_ALIASES
    )
    result = run_sync(config)
    print_result(result, as_json)
    if not as_json:
        click.echo(
            f"Open {config.vault} as a vault in Obsidian; start with "
            f"{config.papers_folder}/, {config.methods_folder}/ and Lineage/ (canvases);"
            f" try `zob lineage gn --story --vault {config.vault}`."
        )
    _finish(result)


@main.command(epilog=EPILOG)
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option(
    "--zotero-dir",
    type=click.Path(path_type=Path),
    help="Zotero's data directory (default: detected, usually ~/Zotero).",
)
@click.option(
    "--language",
    type=click.Choice(["auto", "en", "zh"]),
    default="auto",
    show_default=True,
    help="Template language: auto = each paper in its item's language (Chinese or English).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing config file.")
def init(vault: Path | None, zotero_dir: Path | None, language: str, force: bool) -> None:
    """Write a config file so that plain `zob sync` and `zob watch` work.

    The file goes to the platform config dir (or $ZOB_CONFIG); every key is documented in
    config.example.toml.
    """
    from bridge.setup import write_config

    if vault is None:
        if not sys.stdin.isatty():
            raise click.UsageError("--vault is required when not run interactively")
        vault = Path(click.prompt("Path of your Obsidian vault", type=str)).expanduser()
    path, detected = write_config(
        vault=vault, zotero_dir=zotero_dir, language=language, force=force
    )
    click.echo(f"Wrote {path}")
    if detected:
        click.echo(f"Zotero data directory: {detected}")
    click.echo("Next: `zob sync --dry-run` to see what would be written, then `zob sync`.")


@main.command(epilog=EPILOG)
@source_options
@json_option("Print the status as one JSON object.")
def status(config_path: Path | None, as_json: bool, **overrides: Any) -> None:
    """Show the vault, the source, the last sync, note counts and open conflicts."""
    from bridge.status import vault_status

    config = load(config_path, **overrides)
    info = vault_status(config)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from bridge.status import print_status

    print_status(info)


@main.command(epilog=EPILOG)
@source_options
def doctor(config_path: Path | None, **overrides: Any) -> None:
    """Check the configured source end to end and say what to fix.

    Config, vault, then the source as a sync would open it: for sqlite the data directory,
    database and schema version; for web/local the server, the API key (web) and the library.
    Prints ✓ for what works and ✗ with the fix; exits 0 when all is well, 2 for a config
    problem, 3 when the source fails.
    """
    from bridge.doctor import diagnose

    report = diagnose(config_path, overrides)
    for line in report.lines():
        click.echo(line)
    sys.exit(report.exit_code)


@main.command(epilog=EPILOG)
@click.argument("method", required=False)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option(
    "--depth",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Generations to show above and below.",
)
@json_option(
    "Print {method, proposed_in, extends, extended_by, descendants} (or the story) as JSON."
)
@click.option(
    "--story",
    is_flag=True,
    help="Print a related-work outline (Markdown) of the line through METHOD.",
)
@click.option(
    "--suggest",
    is_flag=True,
    help="Papers whose text discusses METHOD (or any method) heavily but carry no edge to it.",
)
@click.option(
    "--accept",
    nargs=3,
    metavar="PAPER extends|proposes METHOD",
    help="Write one suggested edge into the paper note (then sync).",
)
def lineage(
    method: str | None,
    config_path: Path | None,
    vault: Path | None,
    depth: int,
    as_json: bool,
    story: bool,
    suggest: bool,
    accept: tuple[str, str, str] | None,
) -> None:
    """Print METHOD's lineage: who proposed it, what it extends, what extends it.

    Read from the paper notes and method notes as they are now (your own `extends` edits
    included). METHOD may be an alias, in any case (`zob lineage bn`).

    --story prints a related-work skeleton instead: each step from the earliest ancestor
    on — the problem, the paper and year, what it changed, the limit the next step fixed —
    from your method notes and pass notes; empty parts name the note to write them in.

    --suggest lists papers that discuss METHOD (or any method) but carry no edge to it, each
    with the `zob lineage --accept …` that adds it; nothing is written until you accept.

    \b
      zob lineage NMS
      zob lineage "group normalization" --story > related-work.md
      zob lineage --suggest NMS
    """
    if suggest or accept:  # bridge/search/commands.py
        from bridge.search import commands

        if accept:
            return commands.lineage_accept(config_path, vault, accept)
        return commands.lineage_suggest(config_path, vault, method, as_json)
    if method is None:
        raise click.UsageError("give a METHOD (or --suggest)")
    config = load(config_path, vault=vault)
    if story:
        from bridge.lineage_story import print_story

        print_story(config, method, as_json)
        return
    from bridge.queries import lineage as query

    info = query(config, method, depth)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from bridge.render_terminal import print_lineage

    print_lineage(info)


@main.command(epilog=EPILOG)
@click.argument("note")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@json_option("Print a sorted JSON list of vault paths.")
def backlinks(note: str, config_path: Path | None, vault: Path | None, as_json: bool) -> None:
    """List the notes that link to NOTE, resolved exactly as Obsidian resolves links.

    NOTE is a name as you would write it in [[NOTE]] (`NMS`) or a path in the vault
    (`Methods/NMS.md`). Links in properties count, as in Obsidian's backlinks pane.
    """
    from bridge.queries import backlinks as query

    paths = query(load(config_path, vault=vault), note)
    if as_json:
        click.echo(json.dumps(paths, ensure_ascii=False))
        return
    for path in paths:
        click.echo(path)
    if not paths:
        click.echo(f"Nothing links to {note}.", err=True)


# --- the reading workflow (bridge/workflow/) -----------------------------------------------


def _interactive() -> bool:
    return sys.stdin.isatty()


def _pick_from_list(matches: list[Any]) -> Any:
    """A numbered choice list, for a person at a terminal."""
    click.echo("Several items match:", err=True)
    for number, match in enumerate(matches, 1):
        click.echo(f"  {number}. {match.describe()}", err=True)
    number = click.prompt("Which one", type=click.IntRange(1, len(matches)), err=True)
    return matches[number - 1]


def _print_notes(result: Any) -> None:
    for warning in result.warnings:
        click.echo(click.style("warning: ", fg="yellow") + warning, err=True)
    for error in result.errors:
        click.echo(click.style("skipped: ", fg="yellow") + error["message"], err=True)
    for deferred in getattr(result, "deferred", ()):
        click.echo(
            click.style("still being saved: ", fg="yellow")
            + deferred["message"]
            + " (run the command again once you stop typing)",
            err=True,
        )


@main.command(epilog=EPILOG)
@click.argument("query", required=False)
@source_options
@click.option("--first", is_flag=True, help="When several items match, take the best one.")
@click.option("--open", "open_note", is_flag=True, help="Open the note in Obsidian afterwards.")
@click.option(
    "--method", "method_name", metavar="NAME", help="Create the method note NAME instead."
)
@click.option(
    "--extends", multiple=True, metavar="X", help="With --method: a method NAME extends (repeat)."
)
def new(
    query: str | None,
    config_path: Path | None,
    first: bool,
    open_note: bool,
    method_name: str | None,
    extends: tuple[str, ...],
    **overrides: Any,
) -> None:
    """Make one paper's note now — the one you are about to read — or a new method note.

    QUERY is a citation key (he2016deep), a Zotero item key (HC3BQT5N) or words of the
    title, the authors' names and the year ("deep residual", "he 2016"; typos forgiven).
    An exact title ranks first, then titles starting with the words. The note is created,
    or refreshed when it
    exists, exactly as a sync would — even for an item outside the [filters] of the config,
    and later syncs keep it up to date. A note you deleted comes back. Prints its path in
    the vault; --open also opens it in Obsidian.

    When several items match, a terminal shows a numbered list to choose from; otherwise
    they are listed and the command exits 2 (--first takes the best match instead).

    With --method NAME it creates Methods/NAME.md from the method template instead; later
    syncs fill in the papers that propose and extend NAME and keep your --extends links.

    \b
      zob new he2016deep --open
      zob new "attention all you need" --first
      zob new --method "Soft-NMS v2" --extends Soft-NMS
    """
    from bridge.workflow.newnote import new_method_note, new_paper_note

    if bool(query) == bool(method_name):
        raise click.UsageError("give either QUERY or --method NAME")
    if extends and not method_name:
        raise click.UsageError("--extends goes with --method NAME")
    config = load(config_path, **overrides)
    if method_name:
        made = new_method_note(config, method_name, extends)
    else:
        choose = _pick_from_list if _interactive() and not first else None
        made = new_paper_note(config, query or "", first=first, choose=choose)
    _print_notes(made.result)
    if made.action == "exists":
        click.echo(f"{made.path} exists already; it was left as it is.", err=True)
    click.echo(made.path)
    if open_note:
        click.launch(made.uri)
    _finish(made.result)


@main.command(epilog=EPILOG)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
def queue(config_path: Path | None, vault: Path | None) -> None:
    """Rewrite the reading queue note now, from the paper notes as they are.

    `Reading queue.md` lists every paper under To read, Pass 1 done → decide, Pass 2,
    Pass 3 and Dropped, from each note's `pass` (passes finished, 0–3) and `status`
    (to-read, reading, done, dropped), newest first. Every sync rewrites it; run this after
    editing `pass`/`status` in Obsidian to see the queue without reading Zotero. It also
    brings the note back if you deleted it. The lists live between `zob` markers: write
    anywhere else in the note. Path: workflow.reading_queue in the config ("" = off).
    """
    from bridge.workflow.queue import rebuild_queue

    path, result = rebuild_queue(load(config_path, vault=vault))
    _print_notes(result)
    click.echo(path)
    _finish(result)


@main.command(epilog=EPILOG)
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option(
    "--week",
    is_flag=False,
    flag_value="",
    default=None,
    metavar="[DATE]",
    help="The week: 2024-W05, or any day in it (2024-01-31). Default: this week.",
)
@json_option("Print the report's data as JSON (with its warnings and errors).")
def report(config_path: Path | None, vault: Path | None, week: str | None, as_json: bool) -> None:
    """Write the weekly reading report, Reports/YYYY-Www.md, and print its path.

    For one ISO week (Monday to Sunday, UTC): the papers whose pass advanced, the highlights
    added in Zotero, the method notes created or changed, the papers dropped, and a Mermaid
    chart of passes finished over the last eight weeks. It is built from the progress the
    bridge recorded at each sync, so any past week can be reported, and making it again
    keeps what you wrote in the note outside its `zob` markers. --json prints the same data.

    \b
      zob report --week              this week
      zob report --week 2024-W05     an ISO week
      zob report --week 2024-01-31   the week holding that day
    """
    from bridge.workflow.report import weekly_report

    data, result = weekly_report(load(config_path, vault=vault), week)
    if as_json:
        notes = {"warnings": result.warnings, "errors": result.errors}  # when there are any
        notes = {key: value for key, value in notes.items() if value}
        click.echo(json.dumps({**data, **notes}, ensure_ascii=False, indent=2, default=str))
    else:
        _print_notes(result)
        click.echo(data["path"])
    _finish(result)


@main.group(epilog=EPILOG)
def templates() -> None:
    """The note templates: copy the bundled ones to make them your own.

    Paper, method, annotation, queue and report notes are rendered from Jinja2 templates
    (English, and Chinese in zh/). `zob templates export DIR` copies them; set
    `templates_dir = "DIR"` in the config and the files there win over the bundled ones.
    A template error names the file and line. core/ holds plain versions of the paper and
    method templates for Obsidian's core Templates plugin ({{title}}, {{date}}).
    """


@templates.command("export", epilog=EPILOG)
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite files that exist in DIRECTORY.")
def templates_export(directory: Path, force: bool) -> None:
    """Copy the bundled templates into DIRECTORY, to customise them.

    Keeps the layout (zh/ for Chinese, core/ for Obsidian's core Templates plugin); files
    already in DIRECTORY are kept unless --force. Then set `templates_dir` in the config to
    DIRECTORY: what you change there is used from the next sync on (a changed template makes
    that sync re-render every note; your own words in the notes are kept).
    """
    from bridge.workflow.templates_export import export_templates

    done = export_templates(directory, force=force)
    for path in done.written:
        click.echo(f"wrote {path}")
    for path in done.kept:
        click.echo(f"kept  {path} (exists; --force overwrites)", err=True)
    click.echo(f'Next: set templates_dir = "{directory.resolve()}" in the config.')


@main.command(epilog=EPILOG)
@source_options
@click.option(
    "--polling",
    is_flag=True,
    help="Scan the files every second instead of the OS's file events (network drives, synced "
    "folders; also `watch.polling` in the config).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every change that leads to a sync.")
def watch(config_path: Path | None, polling: bool, verbose: bool, **overrides: Any) -> None:
    """Keep the vault in step while you read: sync now, then after every change.

    Watches Zotero's data directory (zotero.sqlite with its -wal and -journal,
    better-bibtex.sqlite, the annotation image cache) and your paper notes. A burst of changes
    becomes one incremental sync once quiet for `watch.debounce_seconds` (default 0.5 s): a
    highlight made in Zotero shows up in its note, an `extends` you edit in Obsidian updates
    the method notes. The bridge's own writes never trigger a sync. The web and local API
    sources are polled every `watch.poll_seconds` instead.

    \b
    One daemon per vault: a second `zob watch` exits 2 and names the running pid.
    Ctrl-C or SIGTERM: the note being written is finished, then exit 0. SIGHUP: reload config.
    Faults (Zotero busy, database missing or damaged, vault unmounted, disk full) never stop
    it: it logs them, retries with backoff, and `zob status` shows the last error.
    Logs go to stderr and to watch.log in the platform log dir (e.g. ~/.local/state/...).
    Start it at every login with `zob service install`. It also answers the Obsidian plugin
    (`zob plugin install`) on 127.0.0.1, with a token kept in .zotero-bridge/api.json.
    """
    from bridge.daemon import watch as run_watch

    sys.exit(run_watch(lambda: load(config_path, **overrides), polling=polling, verbose=verbose))


# `zob service install|status|uninstall` (bridge/cli_service.py, bridge/service.py)
main.add_command(service_group)


# `zob plugin install|status|uninstall` (bridge/cli_plugin.py, bridge/plugin_install.py)
main.add_command(plugin_group)


# --- search: `zob search`, `related`, `ask` live in bridge/search/commands.py --------------
add_search_commands(main)


def run() -> None:  # pragma: no cover - console entry point alias
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
