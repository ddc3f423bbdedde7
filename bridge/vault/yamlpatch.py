"""Change some top-level keys of a note's YAML as text, keeping every other byte.

Re-serialising a user's frontmatter would drop their comments, re-quote their values and turn
`version: 1.10` into `1.1`. So the bridge cuts the YAML into top-level blocks (a key line plus
its indented or list continuation lines), replaces only the blocks of the keys it changes, and
appends new keys at the end. If the text is too unusual to cut safely (duplicate keys, a block
that does not parse alone) or the result does not load back to exactly the intended values,
the caller falls back to a full re-serialisation — correct values over pretty text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_KEY_LINE = re.compile(r"""^(?!---|\.\.\.|-\s|-$|#|\s)(?:"[^"]*"|'[^']*'|[^:#\n]+?)\s*:(?:\s|$)""")
_CONTINUATION = re.compile(r"^(?:[ \t]+\S|-\s|-$)")
DELETE = object()


@dataclass
class _Block:
    lines: list[str]
    key: str | None = None  # None: a comment, blank lines, or anything not a key block


def _segments(lines: list[str]) -> list[_Block]:
    blocks: list[_Block] = []
    pending: list[str] = []  # blank lines that may still belong to a block scalar
    for line in lines:
        bare = line.rstrip("\r\n")
        if not bare.strip():
            pending.append(line)
            continue
        if blocks and blocks[-1].key is not None and _CONTINUATION.match(bare):
            blocks[-1].lines.extend(pending)
            blocks[-1].lines.append(line)
        elif _KEY_LINE.match(bare):
            if pending:
                blocks.append(_Block(pending))
            blocks.append(_Block([line], key=""))
        else:
            blocks.append(_Block([*pending, line]))
        pending = []
    if pending:
        blocks.append(_Block(pending))
    return blocks


def patch(
    yaml_text: str,
    changes: dict[str, Any],
    load: Callable[[str], Any],
    dump: Callable[[dict[str, Any]], str],
    newline: str,
) -> str | None:
    """`yaml_text` with `changes` applied (value DELETE removes a key), or None if unsafe."""
    lines = yaml_text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += newline
    blocks = _segments(lines)
    seen: set[str] = set()
    for block in blocks:
        if block.key is None:
            continue
        try:
            loaded = load("".join(block.lines))
        except Exception:  # noqa: BLE001 - any YAML failure means: do not cut here
            return None
        if not isinstance(loaded, dict) or len(loaded) != 1:
            return None
        block.key = str(next(iter(loaded)))
        if block.key in seen:
            return None  # duplicate keys: ambiguous which one Obsidian shows
        seen.add(block.key)
    out: list[str] = []
    for block in blocks:
        if block.key in changes:
            value = changes[block.key]
            if value is not DELETE:
                out.append(_dumped(dump, block.key, value, newline))
        else:
            out.extend(block.lines)
    for key, value in changes.items():
        if key not in seen and value is not DELETE:
            out.append(_dumped(dump, key, value, newline))
    return "".join(out)


def _dumped(dump: Callable[[dict[str, Any]], str], key: str, value: Any, newline: str) -> str:
    text = dump({key: value}).rstrip("\n")
    return text.replace("\n", newline) + newline
