"""One note as the bridge last left it (`NoteState`), as the state DB keeps it.

Plain data at the bottom of the package, so that the planner (`bridge.planner`) builds the
states it hands to `apply` without importing the database code; `bridge.state` reads and
writes them and re-exports these names.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class NoteState:
    """One note as the bridge last left it. `base` (what it last rendered) is parsed from
    JSON only when asked for: most syncs never merge most notes, and a large vault's
    bases take a noticeable time to parse."""

    note_id: str
    kind: str
    path: str
    base_raw: dict[str, Any] | str | None  # None: still in the state DB (`loader` fetches it)
    render_hash: str
    etag: str | None
    user_deleted: bool = False
    zotero_deleted: bool = False
    prev_status: str | None = None
    content_hash: str | None = None
    # fetches base_json by note_id: `State.notes()` leaves the bases in the database, which
    # keeps a large vault's bases (several KB a note) out of memory
    loader: Callable[[str], str] | None = field(default=None, repr=False, compare=False)

    @property
    def base_loaded(self) -> bool:
        """The base is in memory: `base` asks the state DB for nothing."""
        return self.base_raw is not None or self.loader is None

    def _raw(self) -> dict[str, Any] | str:
        if self.base_raw is None:
            self.base_raw = self.loader(self.note_id) if self.loader else "{}"
        return self.base_raw

    @property
    def base(self) -> dict[str, Any]:
        raw = self._raw()
        if isinstance(raw, str):
            raw = self.base_raw = json.loads(raw)
        return raw

    @property
    def base_json(self) -> str:
        raw = self._raw()
        if isinstance(raw, str):
            return raw
        return json.dumps(raw, ensure_ascii=False, sort_keys=True)


def compress_text(text: str) -> bytes:
    """A note's text as `seen_text` keeps it (zlib level 1: several times faster than the
    default and nearly as small on notes)."""
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 1)
