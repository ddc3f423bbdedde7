"""What counts as a change: the user's edits, not the daemon's own writes, nor noise."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from bridge.daemon.watches import RawEvent
from bridge.retries import fingerprint, held_fingerprints
from bridge.state import State
from bridge.vault.fs import etag_of
from bridge.vault.guard import inside_any


@dataclass
class VaultFilter:
    """Tells the user's edits from the daemon's own writes (and from noise)."""

    root: Path
    papers_folder: str
    written: dict[str, str | None] = field(default_factory=dict)  # path → etag in state DB
    consumed: dict[str, str | None] = field(default_factory=dict)  # path → etag a sync read
    # notes that could not take Zotero's change (`bridge.retries`): path → fingerprint then;
    # making one writable (chmod) moves no etag, yet must bring the sync it waits for
    held: dict[str, str | None] = field(default_factory=dict)
    # Zotero's data directory when it lies inside the vault (`bridge.vault.guard`): its files
    # are Zotero's, never notes
    skip: frozenset[str] = frozenset()

    def rel(self, path: str) -> str | None:
        try:
            rel = PurePosixPath(Path(path).relative_to(self.root).as_posix())
        except ValueError:
            return None
        if any(part.startswith(".") for part in rel.parts):
            return None  # .zotero-bridge, .obsidian, .trash, the bridge's temp files
        if self.skip and inside_any(str(rel), self.skip):
            return None
        return str(rel)

    def relevant_paths(self, event: RawEvent) -> list[str]:
        """The vault-relative note paths this event may have changed."""
        paths = [p for p in (event.src, event.dest) if p]
        if event.is_directory:
            # a folder's mode matters only to the notes held in it; a move or delete, to all
            notes = self.held if event.kind in ("attrib", "modified") else self.written
            found = []
            for path in paths:
                rel = self.rel(path)
                if rel is not None:
                    found += [p for p in notes if p.startswith(rel + "/")]
            return found
        rels = [self.rel(p) for p in paths]
        return [r for r in rels if r is not None and r.endswith(".md") and self._watched(r)]

    def _watched(self, rel: str) -> bool:
        return rel in self.written or rel.startswith(self.papers_folder.rstrip("/") + "/")

    def etag(self, rel: str) -> str | None:
        try:
            return etag_of(os.stat(self.root / rel, follow_symlinks=False))
        except OSError:
            return None

    def changed(self, rel: str) -> str | None | bool:
        """The file's etag when it changed since the bridge wrote or read it; False if not."""
        current = self.etag(rel)
        if rel in self.held and fingerprint(self.root, rel) != self.held[rel]:
            return current
        if rel in self.written and self.written[rel] == current:
            return False
        if rel in self.consumed and self.consumed[rel] == current:
            return False
        if current is None and rel not in self.written:
            return False  # something that never was a note came and went
        return current

    def refresh(self, state: State) -> None:
        self.written = state.note_etags()
        self.held = held_fingerprints(state)
