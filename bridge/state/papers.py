"""What the state DB caches of each paper note's facts (`paper_meta`): the lineage, the
reading stage and the queue's order, so a sync that changed one paper asks SQLite instead of
parsing every paper note (`bridge.vault.papers` keeps the cache)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from bridge.lineage import PaperInfo
from bridge.stamps import digester


class PaperFacts:
    """`State`'s cache of paper facts (a part of `State`, which supplies `db`)."""

    db: sqlite3.Connection

    def paper_cache_index(self) -> dict[str, str]:
        """Note id → "path\\0etag" of each cached paper's facts (built by SQLite: a join with
        the notes is slower here)."""
        return dict(
            self.db.execute("SELECT note_id, path || char(0) || ifnull(etag, '') FROM paper_meta")
        )

    def all_paper_facts(self) -> dict[str, str]:
        """Note id → the cached facts of every paper, as JSON (parsed by the caller, for the
        papers it needs)."""
        return dict(self.db.execute("SELECT note_id, info_json FROM paper_meta"))

    def put_paper_meta(self, rows: list[tuple[str, str, str | None, dict[str, Any]]]) -> None:
        self.db.executemany(
            "INSERT OR REPLACE INTO paper_meta"
            " (note_id, path, etag, info_json, lineage, stage, sort_year, sort_title)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [
                (nid, path, etag, json.dumps(info, ensure_ascii=False), *_derived(info))
                for nid, path, etag, info in rows
            ],
        )

    def _derive_paper_meta(self) -> None:
        """Fill the columns of migration 4 from the facts cached before it."""
        rows = self.db.execute("SELECT note_id, info_json FROM paper_meta").fetchall()
        self.db.executemany(
            "UPDATE paper_meta SET lineage=?, stage=?, sort_year=?, sort_title=? WHERE note_id=?",
            [(*_derived(json.loads(info)), note_id) for note_id, info in rows],
        )

    def lineage_facts_digest(self) -> str:
        """A hash of every cached fact of the papers that propose or extend a method: all a
        method note shows. Equal digests: no method note needs rendering again."""
        digest = digester()
        for note_id, info in self.db.execute(
            # by the lineage index (a tenth of the papers), not by scanning every row's facts
            "SELECT note_id, info_json FROM paper_meta WHERE lineage > 0 ORDER BY +note_id"
        ):
            digest.update(f"{note_id}\0{info}\0".encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def staged_papers(
        self, stage: str, limit: int | None
    ) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        """How many papers are in a queue stage, and the first `limit` (None: all), newest
        first (year, then title ignoring case, then path) — sorted by SQLite, not Python."""
        (count,) = self.db.execute(
            "SELECT count(*) FROM paper_meta WHERE stage=?", (stage,)
        ).fetchone()
        rows = self.db.execute(
            "SELECT note_id, info_json FROM paper_meta WHERE stage=?"
            " ORDER BY sort_year DESC, sort_title, path LIMIT ?",
            (stage, -1 if limit is None else limit),
        )
        return int(count), [(note_id, json.loads(info)) for note_id, info in rows]

    def paper_facts(self, note_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached facts of some papers."""
        found: dict[str, dict[str, Any]] = {}
        ids = list(note_ids)
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for note_id, info in self.db.execute(
                f"SELECT note_id, info_json FROM paper_meta WHERE note_id IN ({marks})", part
            ):
                found[note_id] = json.loads(info)
        return found

    def noted_paper_facts(self) -> list[tuple[str, str, str]]:
        """(note id, path, facts JSON) of every paper note the user has not deleted: what the
        Obsidian plugin's item index shows of each note (`bridge.library_index`)."""
        return self.db.execute(
            "SELECT p.note_id, p.path, p.info_json FROM paper_meta p JOIN notes n"
            " ON n.note_id = p.note_id WHERE n.kind = 'paper' AND n.user_deleted = 0"
        ).fetchall()

    def paper_facts_mark(self) -> tuple[int, int | None]:
        """(rows, highest rowid) of the facts cache: a row is replaced — a new rowid —
        whenever a note's facts change, and a note gone drops its row. Two O(1) lookups."""
        count, top = self.db.execute("SELECT count(*), max(rowid) FROM paper_meta").fetchone()
        return int(count), top

    def drop_paper_meta(self, note_ids: list[str]) -> None:
        self.db.executemany("DELETE FROM paper_meta WHERE note_id=?", [(n,) for n in note_ids])


def _derived(info: dict[str, Any]) -> tuple[int, str | None, int, str]:
    """(lineage, stage, sort_year, sort_title) of a paper's cached facts."""
    from bridge.reading import stage  # the templates' modules: only when papers are cached

    paper = PaperInfo(**{**info, "proposes": tuple(info.get("proposes") or ()),
                         "extends": tuple(info.get("extends") or ())})  # fmt: skip
    year = paper.year if isinstance(paper.year, int) else 0
    return int(bool(paper.proposes or paper.extends)), stage(paper), year, paper.title.casefold()
