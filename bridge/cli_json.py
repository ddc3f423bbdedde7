"""`--json` on the commands that have it: their output, and also their failures, as JSON on
stdout, with the exit codes the commands have without it.

A command's `--json` option (`json_option`) marks the click context when it is given; the
CLI's error handling (`BridgeGroup.invoke`) then reports a failure with `fail` as one object,
`{"error", "hint", "exit_code"}`, instead of a sentence on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import click

from bridge import redact

JSON_META = "zob.json"


def wants_json(ctx: click.Context) -> bool:
    """The command was given --json (seen by its option's callback, or, when the command line
    did not parse, among the words after the command)."""
    return bool(ctx.meta.get(JSON_META)) or "--json" in sys.argv[2:]


def fail(ctx: click.Context, message: str, code: int, exc: BaseException | None = None) -> None:
    """Report a failure and exit with `code`: under --json as one JSON object on stdout
    ({"error", "hint", "exit_code"}), else as a sentence on stderr."""
    if wants_json(ctx):
        hint = getattr(exc, "hint", None)
        text = getattr(exc, "message", None) if hint else None
        click.echo(
            json.dumps(
                {
                    "error": redact.redact(text or message),
                    "hint": redact.redact(hint) if hint else None,
                    "exit_code": code,
                },
                ensure_ascii=False,
            )
        )
    else:
        click.echo(click.style("error: ", fg="red", bold=True) + redact.redact(message), err=True)
    sys.exit(code)


def json_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--json`: the command's output, and its warnings and errors, as JSON on stdout."""

    def remember(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            ctx.meta[JSON_META] = True
        return value

    return click.option(
        "--json", "as_json", is_flag=True, is_eager=True, callback=remember, help=help_text
    )
