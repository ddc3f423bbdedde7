"""What a read remembers for the next one: the cursor, the digests in it that reveal what
timestamps cannot, and the source files' fingerprint that says nothing changed at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bridge.model import (
    Item,
    Library,
)
from bridge.sources.sqlite.schema import _LibraryInfo

CURSOR_PREFIX = "zob-sqlite:"
MAX_BOUNDARY = 500  # items of the cursor's own second whose hashes the cursor keeps


# A file fingerprint only vouches for "nothing changed" once every mtime in it is this much
# older than the moment it was taken: file-system clocks are coarse, and a second write in the
# same tick could keep size and mtime.
SETTLE_NS = 2_000_000_000


class _Entry(NamedTuple):
    """One file or directory of a source fingerprint (`SqliteSource._fingerprint`)."""

    path: str
    exists: bool
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    head: bytes = b""  # SQLite's header holds the change counter, a WAL's its salts


def _path_entry(path: Path, head: bool) -> _Entry | None:
    """`path` as it is now (with its first 100 bytes when `head`); None when that cannot be
    told, which rules out a fingerprint."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return _Entry(str(path), False)
    except OSError:
        return None
    data = b""
    if head:
        try:
            with open(path, "rb") as handle:
                data = handle.read(100)
        except OSError:  # vanished or replaced since the stat: it is changing
            return None
    return _Entry(
        str(path), True, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, data
    )


@dataclass(frozen=True)
class _Cursor:
    """What a read remembers: the newest local-save time it saw, the highest itemID, and
    digests that reveal what timestamps cannot (a deleted or moved attachment/annotation does
    not touch its parent; Better BibTeX keys have no timestamps).

    Zotero stamps with one-second steps, and a transaction is stamped when it starts, so an
    edit committed after the snapshot can carry the cursor's own second: the next read must
    compare with `>=`. To avoid re-sending the items of that second forever, `boundary` holds
    a content hash of each of them; one whose content is unchanged is left out next time.
    """

    library_id: int
    time: str
    max_item_id: int
    children: str
    bbt: str
    boundary: dict[str, str] = field(default_factory=dict, hash=False)
    images: str = ""  # digest of which image/ink annotations have a cached PNG
    # The source files' fingerprint, taken before they were copied, when it was settled
    # (`SqliteSource._fingerprint`); "" = none. Equal next time: nothing can have changed.
    files: str = ""
    kind: str = "user"  # the library read, so an unchanged read can say so without reading
    group_id: int | None = None

    @classmethod
    def of(
        cls,
        info: _LibraryInfo,
        *,
        time: str,
        max_item_id: int,
        children: str,
        bbt_keys: dict[str, str],
        boundary: dict[str, str],
        images: str,
        files: str,
    ) -> _Cursor:
        """The cursor of a read of `info`'s library (full, streamed or by SQL)."""
        return cls(
            library_id=info.library_id, time=time, max_item_id=max_item_id,
            children=children, bbt=_bbt_digest(bbt_keys), boundary=boundary, images=images,
            files=files, kind=info.library.kind, group_id=info.library.group_id,
        )  # fmt: skip

    def encode(self) -> str:
        payload = {
            "lib": self.library_id,
            "t": self.time,
            "id": self.max_item_id,
            "ch": self.children,
            "bbt": self.bbt,
            "edge": self.boundary,
            "img": self.images,
            "fp": self.files,
            "kind": self.kind,
            "gid": self.group_id,
        }
        return CURSOR_PREFIX + json.dumps(payload, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> _Cursor | None:
        if not text.startswith(CURSOR_PREFIX):
            return None
        try:
            data = json.loads(text[len(CURSOR_PREFIX) :])
            edge = {str(k): str(v) for k, v in dict(data["edge"]).items()}
            group_id = data.get("gid")
            return cls(
                int(data["lib"]),
                str(data["t"]),
                int(data["id"]),
                str(data["ch"]),
                str(data["bbt"]),
                edge,
                str(data.get("img", "")),
                str(data.get("fp", "")),  # older cursors have none: they never short-circuit
                str(data.get("kind", "user")),
                None if group_id is None else int(group_id),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def is_after(self, stamp: str) -> bool:
        """Whether a Zotero timestamp may belong to an edit this cursor's read did not see."""
        return stamp >= self.time

    @property
    def library(self) -> Library:
        return Library(self.kind, self.group_id)


def _item_hash(item: Item) -> str:
    """Content hash of a model item (its repr covers fields, children and annotations)."""
    return hashlib.blake2b(repr(item).encode(), digest_size=8).hexdigest()


_P = 2_147_483_647  # a prime: `_children_digest`'s products stay below SQLite's 2**63


def _children_digest(rows: Iterable[tuple[int, str, int | None]], max_item_id: int) -> str:
    """Digest of (itemID, parent) of the children up to `max_item_id`: the count and three
    sums, so SQLite computes the same per table, in any order (`_children_digests`). Equal
    digests mean no child that existed then was erased (the count) or moved (the sum of
    parents; two children swapping parents change the sum of products) since; a new or
    edited child has a stamp of its own."""
    count = ids = parents = products = 0
    for item_id, _key, parent in rows:
        if item_id <= max_item_id:
            count += 1
            ids += item_id
            parents += parent or 0
            products += item_id * (parent or 0) % _P
    return f"{count}:{ids}:{parents}:{products}"


def _bbt_digest(keys: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(keys.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _images_digest(keys: Iterable[str]) -> str:
    text = "\n".join(sorted(keys))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _files_digest(taken: int, entries: list[_Entry | None], asked: tuple[object, ...]) -> str:
    """A digest of the files' entries (and of what the source was `asked` to read), or ""
    when one could not be taken or is not settled: some mtime less than `SETTLE_NS`
    before `taken` (or after it), so a write in the same clock tick could hide."""
    if any(entry is None for entry in entries):
        return ""
    for entry in entries:
        if entry is not None and entry.exists and entry.mtime_ns > taken - SETTLE_NS:
            return ""
    text = repr((*asked, entries))
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
