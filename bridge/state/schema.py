"""The state database's tables, as numbered migrations.

Each migration runs once, in one transaction, and is recorded in `migrations`
(`State._migrate`). A new table or column is a new entry at the end: never edit one that
shipped, as vaults in the field have run it already.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: notes, conflicts, syncs, meta
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
    CREATE TABLE notes (
        note_id TEXT PRIMARY KEY,          -- Zotero item key, or 'method:<name>'
        kind TEXT NOT NULL,                -- 'paper' | 'method'
        path TEXT NOT NULL,                -- vault-relative, posix
        base_json TEXT NOT NULL,           -- {"properties": {...}, "regions": {...}} last rendered
        render_hash TEXT NOT NULL,
        etag TEXT,                         -- mtime_ns, size, inode of the file as last written/seen
        content_hash TEXT,                 -- blake2b of the file's text as last written/seen
        user_deleted INTEGER NOT NULL DEFAULT 0,
        zotero_deleted INTEGER NOT NULL DEFAULT 0,
        prev_status TEXT,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX notes_path ON notes(path);
    CREATE TABLE conflicts (
        note_id TEXT NOT NULL, path TEXT NOT NULL, field TEXT NOT NULL,
        detected_at TEXT NOT NULL, PRIMARY KEY (note_id, field)
    );
    CREATE TABLE syncs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, started_at TEXT, finished_at TEXT, source TEXT,
        created INTEGER, updated INTEGER, unchanged INTEGER, conflicts INTEGER,
        skipped INTEGER, deleted INTEGER, errors_json TEXT
    );
    """,
    # 2: what method notes need from each paper note, cached by the note's etag
    """
    CREATE TABLE paper_meta (
        note_id TEXT PRIMARY KEY, path TEXT NOT NULL, etag TEXT, info_json TEXT NOT NULL
    );
    """,
    # 3: the reading workflow — progress history, highlights and note changes seen, pins, and
    # the progress tags last written back to Zotero (bridge/workflow/)
    """
    CREATE TABLE progress_log (
        note_id TEXT NOT NULL, seen_at TEXT NOT NULL,
        reading_pass INTEGER,              -- 0-3, NULL when the note's `pass` is not a number
        status TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX progress_log_seen ON progress_log(seen_at);
    CREATE TABLE annotation_log (
        annotation_key TEXT PRIMARY KEY, note_id TEXT NOT NULL,
        added_at TEXT NOT NULL,            -- Zotero's dateAdded, else when first seen
        first_seen TEXT NOT NULL
    );
    CREATE TABLE note_log (
        note_id TEXT NOT NULL, kind TEXT NOT NULL, path TEXT NOT NULL,
        action TEXT NOT NULL, at TEXT NOT NULL
    );
    CREATE INDEX note_log_at ON note_log(at);
    CREATE TABLE pinned (note_id TEXT PRIMARY KEY, pinned_at TEXT NOT NULL);
    CREATE TABLE writeback (note_id TEXT PRIMARY KEY, tags_json TEXT NOT NULL, pushed_at TEXT)
    """,
    # 4: what the reading queue and the method notes select by, beside each paper's facts, so
    # a sync that changed one paper asks SQLite instead of parsing every paper's facts.
    # lineage: the paper proposes or extends something; stage: its queue stage (NULL: not
    # listed); sort_year, sort_title: the queue's order (newest first)
    """
    ALTER TABLE paper_meta ADD COLUMN lineage INTEGER;
    ALTER TABLE paper_meta ADD COLUMN stage TEXT;
    ALTER TABLE paper_meta ADD COLUMN sort_year INTEGER;
    ALTER TABLE paper_meta ADD COLUMN sort_title TEXT;
    CREATE INDEX paper_meta_stage ON paper_meta(stage, sort_year, sort_title, path);
    CREATE INDEX paper_meta_lineage ON paper_meta(lineage);
    CREATE INDEX progress_log_note ON progress_log(note_id)
    """,
    # 5: every column but the base in one index: listing, counting and checking the notes
    # (each sync) reads the index alone, not rows whose base spills over several pages
    """
    CREATE INDEX notes_light ON notes(kind, user_deleted, note_id, path, etag, content_hash,
                                      render_hash, zotero_deleted, prev_status)
    """,
    # 6: each note's text as the bridge last wrote or saw it (zlib), beside its hash: a note
    # read again shorter than that is told apart from the user's edit when it is a cut-short
    # copy of it (an editor's save caught halfway, bridge/vault/inflight.py)
    """
    CREATE TABLE seen_text (note_id TEXT PRIMARY KEY, text_z BLOB NOT NULL)
    """,
]
