"""Is a note the user's intent, or an editor's save caught halfway?

Obsidian (like most editors) saves in place: it opens the note with truncate, then writes,
sometimes in more than one write. Anything that reads the note meanwhile sees it empty or cut
short. Read as the user's edit, that looks like "everything (or the tail) was deleted"; merged
and written back, it would replace the user's words with the half the editor had written, and
the rest of the save would go into the replaced file.

So before a note the user changed is merged into, two questions:

- `in_flight`: does its text look like a save in progress — empty, its frontmatter gone or cut
  short, or a strict prefix of the text the bridge last wrote or saw that cuts a line in two
  or loses a managed region? Such a note is never merged into. If it stays that way once
  settled, it is left alone and reported (the user may have meant it; they are told).
- `settling`: was it modified within the settle window (`sync.settle_seconds`, 2 s by
  default: Obsidian saves about two seconds after the last keystroke)? Then it is merged once
  it is quiet: `zob sync` waits for it, `zob watch` syncs again when it settles.
"""

from __future__ import annotations

import time
from collections.abc import Callable

END_MARKER = "%% zob:end "


def frontmatter_complete(text: str) -> bool:
    """The text opens with a frontmatter block that is closed by a `---` line."""
    body = text.lstrip("\ufeff")
    if not (body.startswith("---\n") or body.startswith("---\r\n")):
        return False
    rest = body[3:]
    return "\n---\n" in rest or "\n---\r\n" in rest or rest.endswith("\n---")


def in_flight(
    text: str, last_size: int | None, seen: Callable[[], str | None] | None
) -> str | None:
    """Why `text` looks like a save in progress, or None when it may be the user's intent.

    `last_size`: the byte size of the note as the bridge last wrote or saw it (None: never);
    `seen`: fetches that text (asked only when the note lost its frontmatter or shrank)."""
    if not text.strip():
        return "it is empty"
    if last_size is None:
        return None
    complete = frontmatter_complete(text)
    shorter = len(text.encode("utf-8", "surrogatepass")) < last_size
    if complete and not shorter:
        return None
    before = seen() if seen is not None else None
    if not complete and (before is None or frontmatter_complete(before)):
        return "its frontmatter is missing or cut short"
    if before is None or not shorter or len(text) >= len(before) or not before.startswith(text):
        return None
    cut = before[len(text) :]
    if END_MARKER in cut:
        return "it ends before a managed region does (cut short)"
    if not text.endswith("\n") and not cut.startswith(("\n", "\r\n")):
        return "it ends in the middle of a line it had (cut short)"
    return None


def settles_at(etag: str, settle_ns: int) -> float:
    """When a file with this etag counts as quiet (epoch seconds)."""
    try:
        mtime_ns = int(etag.split(";", 1)[0])
    except ValueError:
        return 0.0
    return (mtime_ns + settle_ns) / 1e9


def settling(etag: str, settle_ns: int, now_ns: int | None = None) -> bool:
    """The file was modified within the settle window. An mtime more than a second ahead of
    the clock (a sync service, another machine's clock) says nothing: it does not hold the
    note back, or it would be held until that time."""
    now = time.time_ns() if now_ns is None else now_ns
    try:
        age = now - int(etag.split(";", 1)[0])
    except ValueError:
        return False
    return -1_000_000_000 < age < settle_ns
