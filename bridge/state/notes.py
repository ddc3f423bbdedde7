"""What the state DB keeps of each note: the `notes` rows (what the bridge last wrote or saw),
the texts seen (`seen_text`) and the open conflicts."""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from bridge.notestate import NoteState  # plain data, for the planner
from bridge.stamps import iso


class NoteIndex(Mapping[str, NoteState]):
    """The notes as `State.notes()` gives them, read from the state DB only as far as they are
    asked for: a sync that touches three notes of 50,000 looks up three. Going through all of
    them (`values()`, `len()`…) reads them all, once."""

    def __init__(self, state: NoteRows) -> None:
        self._state = state
        self._found: dict[str, NoteState | None] = {}
        self._all: dict[str, NoteState] | None = None

    @property
    def loaded(self) -> bool:
        return self._all is not None

    def _everything(self) -> dict[str, NoteState]:
        if self._all is None:
            self._all = self._state.notes()
        return self._all

    def __getitem__(self, note_id: str) -> NoteState:
        if self._all is not None:
            return self._all[note_id]
        if note_id not in self._found:
            self._found[note_id] = self._state.note(note_id)
        note = self._found[note_id]
        if note is None:
            raise KeyError(note_id)
        return note

    def __iter__(self) -> Iterator[str]:
        return iter(self._everything())

    def __len__(self) -> int:
        return len(self._everything())


def _note_from_row(row: tuple[Any, ...]) -> NoteState:
    return NoteState(
        note_id=row[0], kind=row[1], path=row[2], base_raw=row[3], render_hash=row[4],
        etag=row[5], user_deleted=bool(row[6]), zotero_deleted=bool(row[7]), prev_status=row[8],
        content_hash=row[9],
    )  # fmt: skip


class NoteRows:
    """`State`'s note rows (a part of `State`, which supplies `db`)."""

    db: sqlite3.Connection
    _loader: Callable[[str], str]

    def notes(self, kind: str | None = None) -> dict[str, NoteState]:
        """Every note (or every note of `kind`); bases are fetched when first asked for."""
        where, args = (" WHERE kind=?", (kind,)) if kind else ("", ())
        rows = self.db.execute(
            "SELECT note_id, kind, path, NULL, render_hash, etag, user_deleted,"
            f" zotero_deleted, prev_status, content_hash FROM notes{where}",
            args,
        )
        loader = self._loader
        notes = {}
        for row in rows:
            note = _note_from_row(row)
            note.loader = loader
            notes[row[0]] = note
        return notes

    def _base_json(self, note_id: str) -> str:
        row = self.db.execute("SELECT base_json FROM notes WHERE note_id=?", (note_id,)).fetchone()
        return row[0] if row else "{}"

    def note(self, note_id: str) -> NoteState | None:
        row = self.db.execute(
            "SELECT note_id, kind, path, base_json, render_hash, etag, user_deleted,"
            " zotero_deleted, prev_status, content_hash FROM notes WHERE note_id=?",
            (note_id,),
        ).fetchone()
        return _note_from_row(row) if row else None

    def count_notes(self, kind: str, *, include_user_deleted: bool = False) -> int:
        where = "" if include_user_deleted else " AND user_deleted=0"
        row = self.db.execute(f"SELECT count(*) FROM notes WHERE kind=?{where}", (kind,)).fetchone()
        return int(row[0])

    def put_note(self, note: NoteState) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO notes (note_id, kind, path, base_json, render_hash, etag,"
            " content_hash, user_deleted, zotero_deleted, prev_status, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                note.note_id, note.kind, note.path,
                note.base_json,
                note.render_hash, note.etag, note.content_hash, int(note.user_deleted),
                int(note.zotero_deleted), note.prev_status, iso(),
            ),
        )  # fmt: skip

    def put_seen_texts(self, rows: Iterable[tuple[str, bytes]]) -> None:
        """Each note's text as last written or seen, zlib-compressed (`seen_text`)."""
        self.db.executemany("INSERT OR REPLACE INTO seen_text VALUES (?, ?)", rows)

    def seen_text(self, note_id: str) -> str | None:
        """The note's text as the bridge last wrote or saw it, if kept."""
        row = self.db.execute("SELECT text_z FROM seen_text WHERE note_id=?", (note_id,)).fetchone()
        if row is None:
            return None
        try:
            return zlib.decompress(row[0]).decode("utf-8", "surrogatepass")
        except (zlib.error, UnicodeDecodeError):
            return None

    def release_base(self, note: NoteState) -> None:
        """Let a recorded note's base go from memory: it is read back if asked for again."""
        note.base_raw, note.loader = None, self._loader

    def live_notes(self, kind: str) -> list[tuple[str, str, str | None, str | None]]:
        """(note_id, path, etag, content_hash) of every note of `kind` the user has not
        deleted, read from the light index alone (no merge base)."""
        return self.db.execute(
            "SELECT note_id, path, etag, content_hash FROM notes WHERE kind=? AND user_deleted=0",
            (kind,),
        ).fetchall()

    def note_etags(self) -> dict[str, str | None]:
        """Path → etag of every note as the bridge last wrote or saw it (cheap: no JSON).
        The daemon uses it to tell its own writes from the user's edits."""
        return dict(self.db.execute("SELECT path, etag FROM notes"))

    def move_note(self, note_id: str, path: str) -> None:
        """Record where a note moved to (found again by its key). Its etag stays: a rename
        keeps mtime, size and inode, so an unedited note still matches it at the new path."""
        self.db.execute("UPDATE notes SET path=? WHERE note_id=?", (path, note_id))

    def mark_user_deleted(self, note_id: str) -> None:
        self.db.execute("UPDATE notes SET user_deleted=1, etag=NULL WHERE note_id=?", (note_id,))

    # --- conflicts -----------------------------------------------------------------------

    def add_conflict(self, note_id: str, path: str, field: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO conflicts VALUES (?,?,?,?)", (note_id, path, field, iso())
        )

    def conflicts(self) -> list[tuple[str, str, str, str]]:
        return list(
            self.db.execute(
                "SELECT note_id, path, field, detected_at FROM conflicts ORDER BY path, field"
            )
        )

    def resolve_conflicts_for(self, note_id: str, still_open: set[str]) -> None:
        """Forget conflicts of a note whose callout the user has removed."""
        for (name,) in list(
            self.db.execute("SELECT field FROM conflicts WHERE note_id=?", (note_id,))
        ):
            if name not in still_open:
                self.db.execute(
                    "DELETE FROM conflicts WHERE note_id=? AND field=?", (note_id, name)
                )
