"""`zob service install|status|uninstall`: click commands only (the work: `bridge.service`).

Kept out of `cli.py` (which registers the group), like `cli_plugin.py`; it imports nothing
from `cli.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bridge.errors import EPILOG, EXIT_NO_SERVICE, EXIT_SKIPPED


@click.group("service", epilog=EPILOG)
def service_group() -> None:
    """Start `zob watch` at login, as a service of your own desktop session.

    \b
    Linux:   a systemd user unit, ~/.config/systemd/user/zob-watch.service
    macOS:   a launchd agent, ~/Library/LaunchAgents/org.zotero-obsidian-bridge.watch.plist
    Windows: the Task Scheduler command to run is printed
    The service runs `zob watch --config FILE` with the config file in use now (create it with
    `zob init`), so it watches the vault and Zotero folder named there. systemctl/launchctl are
    run for you when present; --manual only writes the file and prints the commands.
    """


def _service_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--manual",
        is_flag=True,
        help="Do not run systemctl/launchctl; print the commands to run instead.",
    )(func)


def _print_service(report: Any) -> None:
    for line in report.lines:
        click.echo(line)
    if not report.ok:
        sys.exit(EXIT_SKIPPED)


@service_group.command("install", epilog=EPILOG)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Config file the service uses (default: $ZOB_CONFIG or the platform config dir).",
)
@_service_options
def service_install(config_path: Path | None, manual: bool) -> None:
    """Install and start the service that runs `zob watch` at login."""
    from bridge.service import install

    _print_service(install(config_path, manual=manual))


@service_group.command("uninstall", epilog=EPILOG)
@_service_options
def service_uninstall(manual: bool) -> None:
    """Stop the service and remove its file; the vault and its notes are not touched."""
    from bridge.service import uninstall

    _print_service(uninstall(manual=manual))


@service_group.command("status", epilog=EPILOG)
@_service_options
def service_status(manual: bool) -> None:
    """Whether the service is installed, and whether the service manager runs it.

    Exits 0 when it is installed (and, when its state can be asked, running), 8 when no
    service is installed or the service manager says it is not running. `zob status` tells
    whether a daemon watches a vault, however it was started.
    """
    from bridge.service import status as service_state

    report = service_state(manual=manual)
    for line in report.lines:
        click.echo(line)
    if not report.ok:
        sys.exit(EXIT_NO_SERVICE)
