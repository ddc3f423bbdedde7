"""The search index: `<vault>/.zotero-bridge/search.sqlite`, SQLite FTS5 ranked by BM25.

Why FTS5 (measured in bench/search_choice.py on 100,000 passages): it updates in place — one
changed passage in 1.6 ms, where bm25s can only rebuild its matrices (5.2 s) — answers in
~10 ms, takes 0.77× the text on disk (bm25s 1.43×), needs no new dependency and lives in one
SQLite file opened by the same no-link rules as the state DB (`connect_state_db`). Tantivy
was faster still but keeps a folder of files it opens itself, out of reach of those rules.

Tables: `docs` (one row per note: its facts, its etag, its full text's etag), `passages`
(each passage's text, zlib-compressed, with its kind, section, `^block` and page) and `fts`,
a contentless FTS5 table of the passages' terms (`bridge.search.tokens`). Every note is
re-indexed in one transaction: a search never sees half a note.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from bridge.errors import EXIT_STATE_DAMAGED, BridgeError, StateDamagedError
from bridge.search import tokens
from bridge.search.passages import NoteDoc, Passage
from bridge.state import connect_state_db
from bridge.state.db import state_error
from bridge.statefolder import STATE_DIRNAME, StateFolder

INDEX_NAME = "search.sqlite"
SCHEMA = "2"
SIDE_FILES = ("-journal", "-wal", "-shm")
NOTE, PDF = 0, 1  # the two parts of a note's passages: its own, and its PDF's full text
SEPARATOR = "\n"
HEAD_WEIGHT = 3.0  # a term in a title or property counts three times one in a paragraph
# a term in more passages than this is left out of a query that has rarer terms: ranking its
# every passage is what makes a query slow, and its BM25 weight (idf) is small anyway
COSTLY = 5000
SAMPLE = 20000  # matches ranked when every term of a query is costly

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT)",
    """CREATE TABLE IF NOT EXISTS docs(
        id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, etag TEXT, kind TEXT, title TEXT,
        citekey TEXT, year INTEGER, pass TEXT, status TEXT, tags TEXT, added TEXT,
        zotero_key TEXT, pdf_key TEXT, ft_etag TEXT, chars INTEGER DEFAULT 0)""",
    # a note's passages (part 0) and its PDF's (part 1) as one compressed text each; a
    # passage is a slice of it (one zlib call per note, not per passage: 20 % of a build)
    """CREATE TABLE IF NOT EXISTS texts(
        doc INTEGER NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL,
        PRIMARY KEY(doc, part)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS passages(
        id INTEGER PRIMARY KEY, doc INTEGER NOT NULL, part INTEGER NOT NULL, kind TEXT NOT NULL,
        section TEXT, block TEXT, page INTEGER, start INTEGER NOT NULL, length INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS passages_doc ON passages(doc, part)",
    # the [semantic] extra's embeddings (float16), by passage
    "CREATE TABLE IF NOT EXISTS vectors(passage INTEGER PRIMARY KEY, vec BLOB NOT NULL)",
    # covering indexes: a refresh compares every note's etag without reading the rows
    "CREATE INDEX IF NOT EXISTS docs_etag ON docs(path, etag, id)",
    "CREATE INDEX IF NOT EXISTS docs_pdf ON docs(pdf_key, id, ft_etag)",
    """CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(head, body, content='',
        tokenize='porter unicode61 remove_diacritics 2')""",
)

_VOCAB = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem USING fts5(x, "
    "tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.stem_v USING fts5vocab(temp, stem, 'instance')",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.fts_v USING fts5vocab(main, fts, 'row')",
)

DOC_COLUMNS = "id, path, kind, title, citekey, year, pass, status, tags, added, zotero_key, pdf_key"


def pack(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 1)


def unpack(data: bytes) -> str:
    return zlib.decompress(data).decode("utf-8")


@dataclass(frozen=True)
class Hit:
    """One passage that matched, with its BM25 score (higher is better)."""

    passage_id: int
    doc_id: int
    kind: str
    section: str
    block: str | None
    page: int | None
    text: str  # "" until `SearchIndex.with_texts` fills it (only for what is shown)
    score: float
    part: int = NOTE
    start: int = 0
    length: int = 0


@dataclass(frozen=True)
class Prepared:
    """A note's (or its PDF's) passages ready to insert: the compressed text, each passage's
    row and terms. Made by `prepare` — the CPU-heavy part, which a build runs in a worker."""

    blob: bytes | None
    chars: int
    rows: list[tuple]  # (kind, section, block, page, start, length)
    terms: list[tuple[str, str]]  # (head, body)


def prepare(passages: list[Passage]) -> Prepared:
    if not passages:
        return Prepared(None, 0, [], [])
    text = SEPARATOR.join(p.text for p in passages)
    rows, start = [], 0
    for p in passages:
        rows.append((p.kind, p.section, p.block, p.page, start, len(p.text)))
        start += len(p.text) + len(SEPARATOR)
    return Prepared(pack(text), len(text), rows, [_columns(p.kind, p.text) for p in passages])


class SearchIndexDamagedError(BridgeError):
    """The index file is not a database (any more). It only holds what the notes and PDFs
    say, so the way out is to build it again — unlike the state database."""

    exit_code = EXIT_STATE_DAMAGED

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(
            f"the search index {path} is damaged ({detail}); your notes and the sync's state "
            "are not affected",
            "build it again with `zob search --reindex QUERY` (it is made from the notes alone)",
        )


def index_error(vault_root: Path, exc: sqlite3.Error) -> BridgeError | None:
    """What a failure of the index means for the user (damaged, busy, unreadable); None for
    a bug, which must stay visible as one."""
    path = vault_root / STATE_DIRNAME / INDEX_NAME
    error = state_error(path, exc)
    if isinstance(error, StateDamagedError):
        return SearchIndexDamagedError(path, str(exc))
    return error


def remove_index(vault_root: Path) -> None:
    """Delete the index and its side files (never through a link): for `--reindex` of a
    damaged one, which SQLite cannot even open to clear."""
    with StateFolder(vault_root) as folder:
        for suffix in ("", *SIDE_FILES):
            folder.remove(INDEX_NAME + suffix)


class SearchIndex:
    """The open index of one vault. Use as a context manager."""

    def __init__(self, vault_root: Path, *, create: bool = True) -> None:
        self.vault_root = vault_root
        self._vocab_ready = False
        self._folder = StateFolder(vault_root, create=create)
        try:
            if not create and self._folder.lstat(INDEX_NAME) is None:
                raise FileNotFoundError(INDEX_NAME)
            self.db = connect_state_db(self._folder, INDEX_NAME)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            for suffix in SIDE_FILES:
                self._folder.check(INDEX_NAME + suffix)
            self._schema()
        except sqlite3.Error as exc:
            self._folder.close()
            error = index_error(vault_root, exc)
            if error is None:
                raise
            raise error from exc
        except BaseException:
            self._folder.close()
            raise

    def _schema(self) -> None:
        with self.transaction():
            for statement in _DDL:
                self.db.execute(statement)
            version = f"{SCHEMA}.{tokens.VERSION}"
            row = self.db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
            if row is not None and row[0] != version:  # terms changed: start again
                self._clear()
            self.db.execute("INSERT OR REPLACE INTO meta VALUES('version', ?)", (version,))
            self.db.execute(
                "INSERT INTO fts(fts, rank) VALUES('rank', ?)", (f"bm25({HEAD_WEIGHT}, 1.0)",)
            )

    def clear(self) -> None:
        """Forget everything indexed (the next refresh reads the whole vault again)."""
        with self.transaction():
            self._clear()

    def _clear(self) -> None:
        self.db.execute("DELETE FROM docs")
        self.db.execute("DELETE FROM passages")
        self.db.execute("DELETE FROM texts")
        self.db.execute("DELETE FROM vectors")
        self.db.execute("DELETE FROM meta WHERE key='built'")
        self.db.execute("INSERT INTO fts(fts) VALUES('delete-all')")

    def close(self) -> None:
        self.db.close()
        self._folder.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def transaction(self):  # noqa: ANN201 - a context manager
        return _Transaction(self.db)

    # --- meta and documents ----------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        if value is None:
            self.db.execute("DELETE FROM meta WHERE key=?", (key,))
        else:
            self.db.execute("INSERT OR REPLACE INTO meta VALUES(?, ?)", (key, value))

    def known(self) -> dict[str, tuple[int, str | None]]:
        """path → (doc id, etag as indexed) of every indexed note."""
        return {p: (i, e) for i, p, e in self.db.execute("SELECT id, path, etag FROM docs")}

    def full_texts(self, only: set[int] | None = None) -> list[tuple[int, str, str | None]]:
        """(doc id, attachment key, etag of the cache as indexed) of notes with a PDF (of
        the notes `only` names, when given)."""
        if only is None:
            return list(self.db.execute("SELECT id, pdf_key, ft_etag FROM docs WHERE pdf_key > ''"))
        ids = sorted(only)
        rows = []
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows += self.db.execute(
                f"SELECT id, pdf_key, ft_etag FROM docs WHERE pdf_key > '' AND id IN"
                f" ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
        return rows

    def put_note(self, doc: NoteDoc, etag: str | None, ready: Prepared | None = None) -> int:
        """Index (or re-index) one note's passages (`ready`: `prepare(doc.passages)` done
        already, in a worker); its full-text passages stay."""
        row = self.db.execute("SELECT id, pdf_key FROM docs WHERE path=?", (doc.path,)).fetchone()
        values = (
            etag, doc.kind, doc.title, doc.citekey, doc.year, doc.reading_pass, doc.status,
            json.dumps(doc.tags, ensure_ascii=False), doc.added, doc.zotero_key, doc.pdf_key,
        )  # fmt: skip
        if row is None:
            doc_id = self.db.execute(
                "INSERT INTO docs(etag, kind, title, citekey, year, pass, status, tags, added,"
                " zotero_key, pdf_key, path) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (*values, doc.path),
            ).lastrowid
        else:
            doc_id = row[0]
            self._drop_passages(doc_id, NOTE)
            if row[1] != doc.pdf_key:  # another PDF: its text is read again
                self._drop_passages(doc_id, PDF)
                self.db.execute("UPDATE docs SET ft_etag=NULL WHERE id=?", (doc_id,))
            self.db.execute(
                "UPDATE docs SET etag=?, kind=?, title=?, citekey=?, year=?, pass=?, status=?,"
                " tags=?, added=?, zotero_key=?, pdf_key=? WHERE id=?",
                (*values, doc_id),
            )
        self._add_passages(doc_id, NOTE, ready or prepare(doc.passages))
        return doc_id

    def put_full_text(self, doc_id: int, ready: Prepared, etag: str | None, key: str) -> bool:
        """Index the full text of the PDF `key` for the note `doc_id`; False (nothing done)
        when that note no longer has that PDF: another writer (a `--reindex` while a sync
        refreshes) may have given the id to another note since the work was listed."""
        row = self.db.execute("SELECT pdf_key FROM docs WHERE id=?", (doc_id,)).fetchone()
        if row is None or row[0] != key:
            return False
        self._drop_passages(doc_id, PDF)
        self._add_passages(doc_id, PDF, ready)
        self.db.execute("UPDATE docs SET ft_etag=? WHERE id=?", (etag, doc_id))
        return True

    def drop_note(self, doc_id: int, path: str | None = None) -> None:
        """Forget a note (only if the id is still `path`'s, when given: see `put_full_text`)."""
        if path is not None:
            row = self.db.execute("SELECT path FROM docs WHERE id=?", (doc_id,)).fetchone()
            if row is None or row[0] != path:
                return
        self._drop_passages(doc_id, NOTE)
        self._drop_passages(doc_id, PDF)
        self.db.execute("DELETE FROM docs WHERE id=?", (doc_id,))

    def _add_passages(self, doc_id: int, part: int, ready: Prepared) -> None:
        if ready.blob is None:
            return
        self.db.execute("INSERT OR REPLACE INTO texts VALUES (?, ?, ?)", (doc_id, part, ready.blob))
        first = (self.db.execute("SELECT max(id) FROM passages").fetchone()[0] or 0) + 1
        self.db.executemany(
            "INSERT INTO passages VALUES (?,?,?,?,?,?,?,?,?)",
            [(first + i, doc_id, part, *row) for i, row in enumerate(ready.rows)],
        )
        self.db.executemany(
            "INSERT INTO fts(rowid, head, body) VALUES (?,?,?)",
            [(first + i, *terms) for i, terms in enumerate(ready.terms)],
        )
        self.db.execute("UPDATE docs SET chars=chars+? WHERE id=?", (ready.chars, doc_id))

    def _drop_passages(self, doc_id: int, part: int) -> None:
        """Remove a note's own passages (NOTE) or its PDF's (PDF)."""
        text = self._text(doc_id, part)
        if text is None:
            return
        rows = self.db.execute(
            "SELECT id, kind, start, length FROM passages WHERE doc=? AND part=?", (doc_id, part)
        ).fetchall()
        self.db.executemany(
            "INSERT INTO fts(fts, rowid, head, body) VALUES ('delete', ?, ?, ?)",
            [(pid, *_columns(kind, text[s : s + n])) for pid, kind, s, n in rows],
        )
        self.db.execute(
            "DELETE FROM vectors WHERE passage IN (SELECT id FROM passages WHERE doc=? AND part=?)",
            (doc_id, part),
        )
        self.db.execute("DELETE FROM passages WHERE doc=? AND part=?", (doc_id, part))
        self.db.execute("DELETE FROM texts WHERE doc=? AND part=?", (doc_id, part))
        self.db.execute("UPDATE docs SET chars=max(chars-?, 0) WHERE id=?", (len(text), doc_id))

    def _text(self, doc_id: int, part: int) -> str | None:
        row = self.db.execute(
            "SELECT data FROM texts WHERE doc=? AND part=?", (doc_id, part)
        ).fetchone()
        try:
            return unpack(row[0]) if row else None
        except (zlib.error, UnicodeDecodeError, TypeError) as exc:  # SQLite's pages are sound
            path = self.vault_root / STATE_DIRNAME / INDEX_NAME
            raise SearchIndexDamagedError(path, f"a note's text cannot be read: {exc}") from exc

    def _hits(self, rows: Iterable[tuple]) -> list[Hit]:
        """Rows of (id, doc, part, kind, section, block, page, start, length, rank) → hits,
        each note's text decompressed once."""
        texts: dict[tuple[int, int], str] = {}
        hits = []
        for pid, doc, part, kind, section, block, page, start, length, rank in rows:
            text = texts.get((doc, part))
            if text is None:
                text = texts[doc, part] = self._text(doc, part) or ""
            piece = text[start : start + length]
            hits.append(
                Hit(pid, doc, kind, section, block, page, piece, -rank, part, start, length)
            )
        return hits

    # --- reading ---------------------------------------------------------------------------

    def docs(self, ids: Iterable[int]) -> dict[int, dict]:
        """The facts of these notes, by id."""
        wanted = list(dict.fromkeys(ids))
        out: dict[int, dict] = {}
        names = [c.strip() for c in DOC_COLUMNS.split(",")]
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT {DOC_COLUMNS} FROM docs WHERE id IN ({marks})", chunk
            ):
                info = dict(zip(names, row, strict=True))
                info["tags"] = json.loads(info["tags"] or "[]")
                out[info["id"]] = info
        return out

    def doc_by_path(self, path: str) -> dict | None:
        row = self.db.execute("SELECT id FROM docs WHERE path=?", (path,)).fetchone()
        return self.docs([row[0]]).get(row[0]) if row else None

    def passages_by_id(self, ids: list[int], *, with_text: bool = True) -> list[Hit]:
        """These passages (in this order), with their text unless told otherwise."""
        found: dict[int, Hit] = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self.db.execute(
                "SELECT id, doc, kind, section, block, page, part, start, length FROM passages"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                chunk,
            )
            for pid, doc, kind, section, block, page, part, start, length in rows:
                found[pid] = Hit(pid, doc, kind, section, block, page, "", 0.0, part, start, length)
        hits = [found[i] for i in ids if i in found]
        return self.with_texts(hits) if with_text else hits

    def passages_of(self, doc_id: int) -> list[Hit]:
        rows = self.db.execute(
            "SELECT id, doc, part, kind, section, block, page, start, length, 0.0"
            " FROM passages WHERE doc=? ORDER BY id",
            (doc_id,),
        )
        return self._hits(rows)

    def match(
        self, words: list[str], limit: int, doc_filter: tuple[str, list] | None = None
    ) -> list[Hit]:
        """The best `limit` passages for any of `words` (BM25), restricted to the notes a
        `doc_filter` (an SQL condition on `docs` and its parameters) selects."""
        expression, costly = self._expression(words)
        if expression is None:
            return []
        # every term is in more than COSTLY passages: rank the first SAMPLE matches only
        source = (
            f"(SELECT rowid, rank FROM fts WHERE fts MATCH ? LIMIT {SAMPLE})" if costly else "fts"
        )
        sql = (
            "SELECT p.id, p.doc, p.kind, p.section, p.block, p.page, p.part, p.start, p.length,"
            f" f.rank FROM {source} AS f JOIN passages p ON p.id = f.rowid"
            + ("" if costly else " WHERE f.fts MATCH ?")
        )
        params: list = [expression]
        if doc_filter is not None:
            sql += " AND" if not costly else " WHERE"
            sql += f" p.doc IN (SELECT id FROM docs WHERE {doc_filter[0]})"
            params.extend(doc_filter[1])
        sql += " ORDER BY f.rank LIMIT ?"
        params.append(limit)
        return [
            Hit(pid, doc, kind, section, block, page, "", -rank, part, start, length)
            for pid, doc, kind, section, block, page, part, start, length, rank in self.db.execute(
                sql, params
            )
        ]

    def _expression(self, words: list[str]) -> tuple[str | None, bool]:
        """The MATCH for `words` and whether it is costly: any of them, the costly ones left
        out when rarer ones are there; all of them when every one is costly; None when none
        occurs at all."""
        df = self.frequencies(words)
        present = [w for w in words if df.get(w)]
        if not present:
            return None, False
        rare = [w for w in present if df[w] <= COSTLY]
        if rare:
            return tokens.match_expression(rare), False
        return " AND ".join(tokens.match_expression([w]) for w in present), True

    def with_texts(self, hits: list[Hit]) -> list[Hit]:
        """The hits with their text (each note's text decompressed once)."""
        texts: dict[tuple[int, int], str] = {}
        out = []
        for hit in hits:
            key = (hit.doc_id, hit.part)
            if key not in texts:
                texts[key] = self._text(*key) or ""
            out.append(replace(hit, text=texts[key][hit.start : hit.start + hit.length]))
        return out

    def frequencies(self, words: list[str]) -> dict[str, int]:
        """In how many passages each term occurs, read from the FTS5 vocabulary. The terms
        are stemmed by the table's own tokenizer first (a scratch FTS5 table in `temp`)."""
        if not words:
            return {}
        if not self._vocab_ready:
            for statement in _VOCAB:
                self.db.execute(statement)
            self._vocab_ready = True
        self.db.executemany(
            "INSERT INTO temp.stem(rowid, x) VALUES (?, ?)",
            [(i, tokens.indexed(w)) for i, w in enumerate(words)],
        )
        stems = self.db.execute("SELECT doc, term FROM temp.stem_v").fetchall()
        self.db.execute("DELETE FROM temp.stem")
        df = dict.fromkeys(words, 0)
        for i, term in stems:
            row = self.db.execute("SELECT doc FROM temp.fts_v WHERE term = ?", (term,)).fetchone()
            df[words[i]] = max(df[words[i]], row[0] if row else 0)
        return df

    def counts(self) -> dict[str, int]:
        docs, chars = self.db.execute("SELECT count(*), total(chars) FROM docs").fetchone()
        by_kind = dict(self.db.execute("SELECT kind, count(*) FROM passages GROUP BY kind"))
        return {"notes": docs, "characters": int(chars), **by_kind}


def _columns(kind: str, text: str) -> tuple[str, str]:
    """The (head, body) terms of a passage."""
    terms = tokens.indexed(text)
    return (terms, "") if kind == "head" else ("", terms)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


ProgressFactory = Callable[[int], Callable[[int], None]]
