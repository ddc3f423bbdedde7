"""The settle rules (`bridge.vault.settle`) fed with this process's clock and memory.

The rules themselves are pure; what they need from outside is here: the time now, and when
this process first saw a file whose mtime is ahead of its clock (`first_seen`: such a file
counts as settled only once it has been seen unchanged for a whole window). The planner's
driver (`bridge.plan`) and the held cursors (`bridge.retries`) share that memory.
"""

from __future__ import annotations

import time

from bridge.vault import settle
from bridge.vault.settle import (
    CUT_MID_LINE,
    EMPTY,
    END_MARKER,
    NO_FRONTMATTER,
    frontmatter_complete,
    in_flight,
    remedy,
)

__all__ = [
    "CUT_MID_LINE", "EMPTY", "END_MARKER", "NO_FRONTMATTER", "first_seen",
    "frontmatter_complete", "in_flight", "remedy", "settles_at", "settling",
]  # fmt: skip


def settles_at(etag: str, settle_ns: int) -> float:
    """`settle.settles_at` now."""
    return settle.settles_at(etag, settle_ns, time.time_ns())


def settling(etag: str, settle_ns: int, where: str = "", now_ns: int | None = None) -> bool:
    """`settle.settling` for the file at `where`, at `now_ns` (now by default); a file with an
    mtime ahead of the clock is remembered from the first time it is asked about."""
    now = time.time_ns() if now_ns is None else now_ns
    seen = first_seen(where, etag, now) if settle.mtime_ahead(etag, now) else None
    return settle.settling(etag, settle_ns, now, seen)


def first_seen(where: str, etag: str, now_ns: int) -> int:
    """When this process first saw the file at `where` with this etag (`now_ns` if never)."""
    first = _FIRST_SEEN.setdefault((where, etag), now_ns)
    if len(_FIRST_SEEN) > _FIRST_SEEN_MAX:  # a long-lived daemon: forget the oldest
        for key in list(_FIRST_SEEN)[: _FIRST_SEEN_MAX // 2]:
            del _FIRST_SEEN[key]
    return first


# (path, etag) → when this process first saw a file whose mtime was in its future
_FIRST_SEEN: dict[tuple[str, str], int] = {}
_FIRST_SEEN_MAX = 10_000
