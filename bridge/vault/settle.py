"""Is a note the user's intent, or an editor's save caught halfway? The rules, as pure functions.

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

What no rule here can catch: a save that stalls longer than the settle window between two of
its writes, whose first part is complete and is not a prefix of what the bridge saw (the user
added a line, then the save hung). The atomic swap in `bridge.vault.swap` still keeps whatever
the editor writes *during* the bridge's write; a save that resumes after it goes into a file no
longer in the vault. Editors write a note in milliseconds; the window is 2 s.

Everything here is a function of what it is given — the text, the etag, the time it was read
at — and reads neither the clock nor a file: `bridge.vault.inflight` feeds it the clock and
remembers files seen with an mtime ahead of it.
"""

from __future__ import annotations

END_MARKER = "%% zob:end "
EMPTY = "it is empty"
NO_FRONTMATTER = "its properties (frontmatter) are missing or cut short"
# a save caught mid-line while it is recent; once settled, the user's own cut (they deleted
# the last word of a note that ends without a newline, as Obsidian writes it): merged
CUT_MID_LINE = "it ends in the middle of a line it had (cut short)"


def frontmatter_complete(text: str) -> bool:
    """The text opens with a frontmatter block that is closed by a `---` line."""
    body = text.lstrip("\ufeff")
    if not (body.startswith("---\n") or body.startswith("---\r\n")):
        return False
    rest = body[3:]
    return "\n---\n" in rest or "\n---\r\n" in rest or rest.endswith("\n---")


def needs_before(text: str, last_size: int | None) -> bool:
    """Whether `in_flight` must compare `text` with the text the bridge last wrote or saw:
    only when the note lost its frontmatter or shrank (so that text is fetched rarely)."""
    if not text.strip() or last_size is None:
        return False
    return not frontmatter_complete(text) or len(text.encode("utf-8", "surrogatepass")) < last_size


def in_flight(text: str, last_size: int | None, before: str | None) -> str | None:
    """Why `text` looks like a save in progress, or None when it may be the user's intent.

    `last_size`: the byte size of the note as the bridge last wrote or saw it (None: never);
    `before`: that text, when `needs_before` asked for it and it is kept (else None)."""
    if not text.strip():
        return EMPTY
    if last_size is None:
        return None
    complete = frontmatter_complete(text)
    shorter = len(text.encode("utf-8", "surrogatepass")) < last_size
    if complete and not shorter:
        return None
    if not complete and (before is None or frontmatter_complete(before)):
        return NO_FRONTMATTER
    if before is None or not shorter or len(text) >= len(before) or not before.startswith(text):
        return None
    cut = before[len(text) :]
    if END_MARKER in cut:
        return "it ends before a managed region does (cut short)"
    if not text.endswith("\n") and not cut.startswith(("\n", "\r\n")):
        return CUT_MID_LINE
    return None


def remedy(why: str, note_id: str) -> str:
    """What the user can do about a note left alone because it looks cut short (`in_flight`)."""
    fresh = f"run `zob new {note_id}` once it is deleted, for a fresh note"
    recovery = "restore it from Obsidian's File recovery (Settings → Core plugins)"
    if why == EMPTY:
        return (
            "If you emptied it on purpose, delete the file: the bridge will not make it again"
            f" (or {fresh}); otherwise {recovery}"
        )
    if why == NO_FRONTMATTER:
        return f"{recovery[0].upper()}{recovery[1:]}, or {fresh}"
    return f"If you cut it on purpose, add a line at its end; otherwise {recovery}"


def mtime_ahead(etag: str, now_ns: int) -> bool:
    """The file's mtime is ahead of `now_ns` (a network share whose server runs ahead, a sync
    service): how long ago it was saved cannot be told from it (`settling`)."""
    try:
        return int(etag.split(";", 1)[0]) > now_ns
    except ValueError:
        return False


def settling(etag: str, settle_ns: int, now_ns: int, first_seen_ns: int | None = None) -> bool:
    """The file was modified within the settle window, at `now_ns`.

    An mtime ahead of the clock (`mtime_ahead`) cannot say how long ago the save was: such a
    file counts as settled only once it was seen unchanged for the whole window, since
    `first_seen_ns` (when this process first saw the file with this etag)."""
    try:
        age = now_ns - int(etag.split(";", 1)[0])
    except ValueError:
        return False
    if age >= 0:
        return age < settle_ns
    first = now_ns if first_seen_ns is None else first_seen_ns
    return now_ns - first < settle_ns


def settles_at(etag: str, settle_ns: int, now_ns: int) -> float:
    """When a file with this etag counts as quiet (epoch seconds; for an mtime ahead of the
    clock, one window from `now_ns`: `settling`)."""
    try:
        mtime_ns = min(int(etag.split(";", 1)[0]), now_ns)
    except ValueError:
        return 0.0
    return (mtime_ns + settle_ns) / 1e9
