"""Zotero access paths. Each module returns the same model (`bridge.model`).

A source is anything with `name` and `read(since) -> LibrarySnapshot`; `since` is the cursor
of the previous snapshot (None for a full read). A snapshot's `items` are an `ItemStream`
(`bridge.model`): held whole (`Items`, a tuple), or built each time they are gone through
when the library is too large to hold as objects at once.
"""

from __future__ import annotations

from typing import Protocol

from bridge.model import ItemStream, LibrarySnapshot

__all__ = ["ItemStream", "Source"]


class Source(Protocol):
    name: str

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """Read the library (or what changed since `since`). Raises `SourceError`."""
        ...
