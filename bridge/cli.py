"""The `zob` command line: parse, call one function, print. No logic lives here.

Exit codes: 0 all good · 1 finished but something was skipped · 2 usage or config error ·
3 the Zotero source could not be read · 4 refused by a safety tripwire.
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

from bridge import __version__
from bridge.errors import EXIT_SKIPPED, BridgeError

EPILOG = (
    "Exit codes: 0 all good, 1 finished but something was skipped, 2 usage or config error, "
    "3 the Zotero source could not be read, 4 refused by a safety tripwire."
)


class BridgeGroup(click.Group):
    """Turns the library's errors into a message and an exit code — never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BridgeError as exc:
            _error(str(exc))
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            _error("interrupted; notes written so far are complete (every write is atomic)")
            sys.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so briefly, keep the traceback for ZOB_DEBUG
            if os.environ.get("ZOB_DEBUG"):
                raise
            _error(
                f"internal error: {type(exc).__name__}: {exc}\n  → this is a bug in "
                "zotero-obsidian-bridge; run again with ZOB_DEBUG=1 and report the traceback"
            )
            sys.exit(70)


def _error(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)


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
    from bridge.config import load_config

    return load_config(config_path).with_overrides(**overrides)


@contextmanager
def progress_bar(enabled: bool) -> Iterator[Callable[[int], Callable[[int], None]] | None]:
    """A rich progress bar on long syncs, only when a person is watching a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def factory(total: int) -> Callable[[int], None]:
            task = bar.add_task("syncing notes", total=total, visible=total > 200)
            return lambda n: bar.advance(task, n)

        yield factory


def print_result(result: Any, as_json: bool, verbose: bool = False) -> None:
    counts = result.counts()
    if as_json:
        click.echo(json.dumps(counts, ensure_ascii=False))
    else:
        if result.dry_run:
            click.echo("Dry run — nothing was written. The plan:")
            for action in result.actions:
                if action.kind != "unchanged" or verbose:
                    click.echo(f"  {action.describe()}")
        summary = ", ".join(
            f"{k} {counts[k]}"
            for k in ("created", "updated", "unchanged", "conflicts", "skipped", "deleted")
        )
        click.echo(("Would be: " if result.dry_run else "Synced: ") + summary)
        for warning in result.warnings:
            click.echo(click.style("warning: ", fg="yellow") + warning, err=True)
        for error in result.errors:
            click.echo(click.style("skipped: ", fg="yellow") + error["message"], err=True)
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
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object: created, updated, unchanged, conflicts, skipped, deleted, errors.",
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
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Template language.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the sync summary as JSON.")
def demo(vault: Path, language: str, as_json: bool) -> None:
    """Sync the bundled sample library (19 classic papers) into VAULT.

    No Zotero needed: this shows what the bridge makes — three-pass paper notes, highlights
    grouped by colour, and method lineage (NMS → Soft-NMS, BN + IN → GN, VAE → CVAE).
    Run it again on the same vault and it re-syncs like `zob sync`, keeping your edits.
    """
    from bridge.config import Config
    from bridge.sync import sync as run_sync

    try:
        vault.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise click.UsageError(f"cannot create {vault}: {exc.strerror or exc}") from exc
    config = Config().with_overrides(vault=vault, source="sample", language=language)
    result = run_sync(config)
    print_result(result, as_json)
    if not as_json:
        click.echo(
            f"Open {config.vault} as a vault in Obsidian; start with "
            f"{config.papers_folder}/ and {config.methods_folder}/."
        )
    _finish(result)


@main.command(epilog=EPILOG)
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option(
    "--zotero-dir",
    type=click.Path(path_type=Path),
    help="Zotero's data directory (default: detected, usually ~/Zotero).",
)
@click.option("--language", type=click.Choice(["en", "zh"]), default="en", show_default=True)
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
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON object.")
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
@click.argument("method")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option(
    "--depth",
    type=click.IntRange(1, 20),
    default=3,
    show_default=True,
    help="Generations to show above and below.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print {method, proposed_in, extends, extended_by, descendants} as JSON.",
)
def lineage(
    method: str, config_path: Path | None, vault: Path | None, depth: int, as_json: bool
) -> None:
    """Print METHOD's lineage: who proposed it, what it extends, what extends it.

    Read from the paper notes as they are now (your own `extends` edits included).
    Example: `zob lineage NMS` shows Soft-NMS and the papers behind both.
    """
    from bridge.queries import lineage as query

    info = query(load(config_path, vault=vault), method, depth)
    if as_json:
        click.echo(json.dumps(info, ensure_ascii=False, indent=2))
        return
    from bridge.render_terminal import print_lineage

    print_lineage(info)


@main.command(epilog=EPILOG)
@click.argument("note")
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="Config file.")
@click.option("--vault", type=click.Path(path_type=Path), help="The Obsidian vault folder.")
@click.option("--json", "as_json", is_flag=True, help="Print a sorted JSON list of vault paths.")
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


def run() -> None:  # pragma: no cover - console entry point alias
    main()


if __name__ == "__main__":  # pragma: no cover
    main()
