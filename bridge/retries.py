"""Notes that could not be written, and when to read Zotero's change for them again.

A paper note can fail to take Zotero's change: read-only, saved in Obsidian during the write,
its name taken by another file, broken YAML. Moving the source cursor on would leave that note
behind Zotero until its item changed again, whatever the user fixed. Holding the whole cursor
back (as before) re-read everything since the failure at every sync for as long as the note
kept failing — and once a children digest moved, that was the whole library each time.

So the cursor moves on, and the cursor read *before* the failure is kept beside it with a
fingerprint of each failed note (its etag and mode, and its folder's mode). A sync reads from
that held cursor instead only when it is worth it:

- once, at the next sync after a new failure (a save during the write leaves nothing else to
  notice: the note's fingerprint already holds the user's save);
- whenever a failed note's fingerprint changed: the user made it writable, fixed its YAML,
  moved the file that took its name.

A note that stays read-only therefore costs one extra read, not one per sync. The daemon asks
`held_fingerprints` which notes to watch for a mode change (chmod moves no etag).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from bridge.state import State
from bridge.vault.fs import etag_of
from bridge.vault.inflight import settles_at, settling


def fingerprint(root: str | os.PathLike[str], rel: str) -> str | None:
    """What a user changes to let a failed write through: the note (content, mode) and its
    folder's mode. None when neither exists."""
    path = os.path.join(root, rel)
    parts = []
    for target in (path, os.path.dirname(path)):
        try:
            stat = os.stat(target, follow_symlinks=False)
        except OSError:
            parts.append("-")
            continue
        # the folder's mode alone: its mtime moves whenever a note beside it is written
        parts.append(f"{etag_of(stat)};{stat.st_mode:o}" if target == path else f"{stat.st_mode:o}")
    return None if parts == ["-", "-"] else "|".join(parts)


@dataclass
class Held:
    """The cursor read before notes failed, and those notes' fingerprints then."""

    cursor: str | None  # None: the failure came from a full read
    paths: dict[str, str | None] = field(default_factory=dict)
    again: bool = True  # read from `cursor` at the next sync whatever the fingerprints say
    # the fingerprints `due` saw (not stored): what a retry read saw of each note
    seen: dict[str, str | None] = field(default_factory=dict, compare=False)
    # notes deferred while being saved: no read from `cursor` while one of them still is (a
    # full read's hold would otherwise read the whole library at every save while they type)
    waiting: list[str] = field(default_factory=list)
    settle_s: float = 2.0
    # those `due` found still being saved → when each settles (not stored)
    blocked: dict[str, float] = field(default_factory=dict, compare=False)

    @classmethod
    def load(cls, state: State, cursor_key: str) -> Held | None:
        text = state.marks.held(cursor_key)
        if not text:
            return None
        try:
            data = json.loads(text)
            held = cls(data["cursor"], dict(data["paths"]), bool(data["again"]))
            held.waiting = [str(p) for p in data.get("waiting", [])]
            held.settle_s = float(data.get("settle_s", 2.0))
            return held
        except (ValueError, KeyError, TypeError):
            return cls(None, {}, True)  # unreadable: one full read makes up for it

    def save(self, state: State, cursor_key: str) -> None:
        value = {
            "cursor": self.cursor, "paths": self.paths, "again": self.again,
            "waiting": self.waiting, "settle_s": self.settle_s,
        }  # fmt: skip
        state.marks.set_held(cursor_key, json.dumps(value, ensure_ascii=False))

    def due(self, root: str | os.PathLike[str]) -> bool:
        """Whether this sync should read from the held cursor."""
        self.seen = {path: fingerprint(root, path) for path in self.paths}
        self.blocked = {}
        for path in self.waiting:
            settles = _settles_at(root, path, self.settle_s)
            if settles is not None:
                self.blocked[path] = settles
        if self.blocked:
            return False
        return self.again or any(self.seen[path] != fp for path, fp in self.paths.items())


def update_held_cursor(
    state: State,
    cursor_key: str,
    root: str | os.PathLike[str],
    *,
    held: Held | None,
    read_from: str | None,
    retried: bool,
    failed: Iterable[str],
    settled: Iterable[str],
    deferred: Iterable[str] = (),
    settle_s: float = 2.0,
) -> None:
    """Keep or drop the held cursor after a sync that read from `read_from`.

    `failed`: the paper notes that could not take this read's changes; `settled`: those that
    took them (or were already as Zotero has them); `deferred`: those of `failed` that were
    being saved — read again at the next sync whatever their fingerprint says, as they settle
    without changing it. Call inside the sync's transaction."""
    failed = set(failed)
    paths = dict(held.paths) if held else {}
    for path in settled:
        paths.pop(path, None)
    # as the notes were when this sync read them: a retry the user's edit brought is not
    # made again for that edit
    before = {**paths, **(held.seen if held is not None and retried else {})}
    if retried:  # every change since the held cursor was planned again: what failed now is all
        paths = {p: fp for p, fp in paths.items() if p in failed}
    now = {path: fingerprint(root, path) for path in failed}
    # something new failed, or changed during this sync (saved during the write): once more
    again = any(before.get(path, "") != fp for path, fp in now.items())
    waiting = failed & set(deferred)
    if held is not None and not retried:  # not read this time: still waited for
        waiting |= {path for path in held.waiting if path in paths or path in failed}
    again = again or bool(waiting)
    paths.update(now)
    state.marks.last_cursor_key = cursor_key
    if not paths:
        state.marks.set_held(cursor_key, None)
        return
    # after a full read (new settings, `--full`) no cursor holds what it brought: None
    cursor = None if now and read_from is None else held.cursor if held else read_from
    Held(cursor, paths, again, waiting=sorted(waiting), settle_s=settle_s).save(state, cursor_key)


def _settles_at(root: str | os.PathLike[str], rel: str, settle_s: float) -> float | None:
    """When the note at `rel` settles (epoch seconds), or None if it is quiet (or gone)."""
    try:
        stat = os.stat(os.path.join(root, rel), follow_symlinks=False)
    except OSError:
        return None
    etag, settle_ns = etag_of(stat), int(settle_s * 1e9)
    return settles_at(etag, settle_ns) if settling(etag, settle_ns, rel) else None


def held_fingerprints(state: State) -> dict[str, str | None]:
    """The notes held by the last sync's source (path → fingerprint when they failed), for
    the daemon. Holds of another source or Zotero folder are not its business."""
    key = state.marks.last_cursor_key
    held = Held.load(state, key) if key else None
    return dict(held.paths) if held is not None else {}
