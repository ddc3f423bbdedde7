"""Zotero access paths. Each module returns the same model (`bridge.model`).

A source is anything with `name` and `read(since) -> LibrarySnapshot`; `since` is the cursor
of the previous snapshot (None for a full read).
"""

from __future__ import annotations

from typing import Protocol

from bridge.model import LibrarySnapshot


class Source(Protocol):
    name: str

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """Read the library (or what changed since `since`). Raises `SourceError`."""
        ...
