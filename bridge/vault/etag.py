"""A file's etag, `mtime_ns;size;inode`: cheap to take, compared before every write.

Pure: it formats and reads etags, and takes the time it compares against as an argument, so
the planner (`bridge.planner`) can use it without reading the clock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import os

# an etag younger than this is not trusted alone (`etag_settled`)
RECENT_NS = 2_000_000_000


def etag_of(stat: os.stat_result) -> str:
    return f"{stat.st_mtime_ns};{stat.st_size};{stat.st_ino}"


def etag_settled(etag: str, now_ns: int) -> bool:
    """True when a file's mtime is old enough at `now_ns` that its etag can be trusted alone.

    File systems stamp mtimes with a coarse clock (a few ms): two writes of the same size
    within one tick share an etag. Recently touched files are therefore checked by content.
    """
    try:
        mtime_ns = int(etag.split(";", 1)[0])
    except ValueError:
        return False
    return now_ns - mtime_ns > RECENT_NS
