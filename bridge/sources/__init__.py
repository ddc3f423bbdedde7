"""Zotero access paths. Each module returns the same model (`bridge.model`).

A source is anything with `name` and `read(since) -> LibrarySnapshot`; `since` is the cursor
of the previous snapshot (None for a full read). A snapshot's `items` are a tuple, or an
`ItemStream` when the library is too large to hold as objects at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from bridge.model import Item, LibrarySnapshot


class Source(Protocol):
    name: str

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """Read the library (or what changed since `since`). Raises `SourceError`."""
        ...


@runtime_checkable
class ItemStream(Protocol):
    """Items built from the source each time they are gone through, never all at once: a
    `Sequence[Item]` with more.

    Equal to the tuple a whole read would return. `heads()` goes through them lighter (no
    attachments, annotations or relations: enough to name notes); `warnings` grows with items
    that failed to build while streaming; `close()` lets go of what the stream holds open (it
    also happens when the stream is garbage-collected)."""

    warnings: list[str]

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Item]: ...

    def heads(self) -> Iterator[Item]: ...

    def close(self) -> None: ...
