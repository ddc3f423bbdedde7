"""The README's "Every command" table names every command of the CLI, and nothing else.

Walks click's command tree (as sqlite-utils' tests/test_docs.py does), so a new command or
subcommand fails here until the README documents it.
"""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest

from bridge.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command as the words that run it: ("sync",), ("service", "install"), …"""
    paths = []
    for name, command in sorted(group.commands.items()):
        if command.hidden:
            continue
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths.extend(command_paths(command, (*prefix, name)))
    return paths


def documented_rows() -> list[str]:
    """The first cells of the table in the README's "## Every command" section."""
    section = README.read_text(encoding="utf-8").split("\n## Every command\n", 1)[1]
    section = section.split("\n## ", 1)[0]
    return [
        line.split(" | ")[0].strip("| `").replace("\\|", "|")
        for line in section.splitlines()
        if line.startswith("| `zob ")
    ]


def is_documented(path: tuple[str, ...], rows: list[str]) -> bool:
    """`zob service install|uninstall|status` documents `service` and its three commands."""
    *parents, name = path
    for row in rows:
        words = row.split()[1:]  # after "zob"
        if words[: len(parents)] != parents or len(words) <= len(parents):
            continue
        if name in words[len(parents)].split("|"):
            return True
    return False


COMMANDS = command_paths(main)


def test_the_tree_is_walked() -> None:
    assert ("sync",) in COMMANDS and ("service", "install") in COMMANDS
    assert ("templates", "export") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_is_documented_in_the_readme(path: tuple[str, ...]) -> None:
    assert is_documented(path, documented_rows()), (
        f"`zob {' '.join(path)}` is missing from README.md's 'Every command' table"
    )


def test_the_readme_documents_no_command_that_does_not_exist() -> None:
    for row in documented_rows():
        words = [w for w in row.split()[1:] if re.fullmatch(r"[a-z][a-z|-]*", w)]
        group: click.Command = main
        for word in words:
            if not isinstance(group, click.Group):
                break
            names = word.split("|")
            assert all(n in group.commands for n in names), f"README names `zob {row}`"
            group = group.commands[names[0]]
