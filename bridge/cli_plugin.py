"""`zob plugin install|status|uninstall`: click commands only (the work: `plugin_install`).

Kept out of `cli.py` (which registers the group) so that file stays one screenful per
command family; it imports nothing from `cli.py`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from bridge.errors import EPILOG, EXIT_SKIPPED


@click.group("plugin", epilog=EPILOG)
def plugin_group() -> None:
    """The companion Obsidian plugin: cite, open and create paper notes inside Obsidian.

    \b
    zob plugin install      copy it into the vault (.obsidian/plugins/zotero-obsidian-bridge/)
    zob plugin status       installed version, up to date, enabled
    zob plugin uninstall    remove its files (its settings, data.json, stay)
    The plugin ships inside this package: no Node needed. It is never enabled for you: enable
    "Zotero Bridge" in Obsidian's Settings → Community plugins. With `zob watch` running it
    answers instantly; without it, it reads the last sync's item index and runs `zob`.
    """


def _plugin_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option(
        "--vault", type=click.Path(path_type=Path), help="The vault (default: the config's)."
    )(func)
    return click.option(
        "--config", "config_path", type=click.Path(path_type=Path), help="Config file."
    )(func)


def _plugin_vault(config_path: Path | None, vault: Path | None) -> Path | None:
    if vault is not None:
        return vault
    from bridge.config import load_config

    return load_config(config_path).vault


def _print_plugin(report: Any) -> None:
    for line in report.lines:
        click.echo(line)
    if not report.ok:
        sys.exit(EXIT_SKIPPED)


@plugin_group.command("install", epilog=EPILOG)
@_plugin_options
@click.option("--create", is_flag=True, help="Make the folder a vault (.obsidian/) if it is not.")
def plugin_install(config_path: Path | None, vault: Path | None, create: bool) -> None:
    """Put the plugin into the vault, or update it in place; says how to enable it.

    Only the plugin's own files (main.js, manifest.json) are written. A folder without
    .obsidian/ is refused (exit 2) unless --create: it is probably not the vault you meant.
    """
    from bridge.plugin_install import install

    _print_plugin(install(_plugin_vault(config_path, vault), create=create))


@plugin_group.command("status", epilog=EPILOG)
@_plugin_options
def plugin_status(config_path: Path | None, vault: Path | None) -> None:
    """Whether the plugin is installed, the same version as this zob's, and enabled.

    Exits 1 when it is missing or differs from the one this zob ships.
    """
    from bridge.plugin_install import status as plugin_state

    _print_plugin(plugin_state(_plugin_vault(config_path, vault)))


@plugin_group.command("uninstall", epilog=EPILOG)
@_plugin_options
def plugin_uninstall(config_path: Path | None, vault: Path | None) -> None:
    """Remove the plugin's files from the vault; your notes and its settings stay."""
    from bridge.plugin_install import uninstall

    _print_plugin(uninstall(_plugin_vault(config_path, vault)))
