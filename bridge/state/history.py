"""What the state DB remembers over time: each sync's counts (`syncs`), and the reading
workflow's history (progress, annotations and note changes seen, pins, tags written back)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from bridge.stamps import iso


class History:
    """`State`'s logs (a part of `State`, which supplies `db`)."""

    db: sqlite3.Connection

    def record_sync(self, started: str, source: str, counts: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO syncs (started_at, finished_at, source, created, updated, unchanged,"
            " conflicts, skipped, deleted, errors_json) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                started, iso(), source, counts["created"], counts["updated"],
                counts["unchanged"], counts["conflicts"], counts["skipped"], counts["deleted"],
                json.dumps(counts["errors"], ensure_ascii=False),
            ),
        )  # fmt: skip

    def last_sync(self) -> dict[str, Any] | None:
        row = self.db.execute(
            "SELECT started_at, finished_at, source, created, updated, unchanged, conflicts,"
            " skipped, deleted, errors_json FROM syncs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        keys = ["started_at", "finished_at", "source", "created", "updated", "unchanged",
                "conflicts", "skipped", "deleted"]  # fmt: skip
        result = dict(zip(keys, row[:9], strict=True))
        result["errors"] = json.loads(row[9] or "[]")
        return result

    # --- reading workflow (bridge/workflow/) --------------------------------------------

    def latest_progress(
        self, note_ids: list[str] | None = None
    ) -> dict[str, tuple[int | None, str]]:
        """Each note's last recorded (pass, status); of `note_ids` only, when given and few."""
        if note_ids is not None and len(note_ids) <= 500:
            marks = ",".join("?" * len(note_ids))
            rows = self.db.execute(
                "SELECT note_id, reading_pass, status FROM progress_log"
                f" WHERE note_id IN ({marks}) ORDER BY seen_at, rowid",
                note_ids,
            )
        else:
            rows = self.db.execute(
                "SELECT note_id, reading_pass, status FROM progress_log ORDER BY seen_at, rowid"
            )
        return {row[0]: (row[1], row[2]) for row in rows}

    def add_progress(self, rows: list[tuple[str, str, int | None, str]]) -> None:
        """Rows of (note_id, seen_at, pass, status)."""
        self.db.executemany("INSERT INTO progress_log VALUES (?,?,?,?)", rows)

    def progress_log(self, until: str | None = None) -> list[tuple[str, str, int | None, str]]:
        """(note_id, seen_at, pass, status) in time order, up to `until` (exclusive)."""
        rows = self.db.execute(
            "SELECT note_id, seen_at, reading_pass, status FROM progress_log"
            " WHERE seen_at < ? ORDER BY seen_at, rowid",
            (until or "9999",),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def known_annotations(self, keys: list[str] | None = None) -> set[str]:
        """Annotation keys already in the history (of `keys` only, when given and few)."""
        if keys is not None and len(keys) <= 500:
            marks = ",".join("?" * len(keys))
            query = f"SELECT annotation_key FROM annotation_log WHERE annotation_key IN ({marks})"
            return {row[0] for row in self.db.execute(query, keys)}
        return {row[0] for row in self.db.execute("SELECT annotation_key FROM annotation_log")}

    def add_annotations(self, rows: list[tuple[str, str, str, str]]) -> None:
        """Rows of (annotation_key, note_id, added_at, first_seen); known keys are kept."""
        self.db.executemany("INSERT OR IGNORE INTO annotation_log VALUES (?,?,?,?)", rows)

    def annotations_between(self, start: str, end: str) -> list[tuple[str, str, str]]:
        """(annotation_key, note_id, added_at) added in [start, end)."""
        rows = self.db.execute(
            "SELECT annotation_key, note_id, added_at FROM annotation_log"
            " WHERE added_at >= ? AND added_at < ? ORDER BY added_at, annotation_key",
            (start, end),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def add_note_events(self, rows: list[tuple[str, str, str, str, str]]) -> None:
        """Rows of (note_id, kind, path, action, at)."""
        self.db.executemany("INSERT INTO note_log VALUES (?,?,?,?,?)", rows)

    def note_events_between(self, start: str, end: str) -> list[tuple[str, str, str, str, str]]:
        rows = self.db.execute(
            "SELECT note_id, kind, path, action, at FROM note_log"
            " WHERE at >= ? AND at < ? ORDER BY at, rowid",
            (start, end),
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]

    def pinned(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT note_id FROM pinned")}

    def pin(self, note_id: str, at: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO pinned VALUES (?, ?)", (note_id, at))

    def written_back(self) -> dict[str, list[str]]:
        """Zotero key → the progress tags last written back to that item."""
        rows = self.db.execute("SELECT note_id, tags_json FROM writeback")
        return {row[0]: json.loads(row[1]) for row in rows}

    def put_written_back(self, note_id: str, tags: list[str], at: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO writeback VALUES (?, ?, ?)", (note_id, json.dumps(tags), at)
        )
