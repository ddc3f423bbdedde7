"""The bridge's own memory: `<vault>/.zotero-bridge/state.sqlite`.

Per note it keeps what the bridge last rendered from Zotero (the *base* of the three-way merge),
a hash of that render (to skip unchanged items without reading the file) and a cheap etag of
the file as last written or seen (`mtime_ns;size;inode`, to skip unchanged files without
reading them). Schema changes are numbered migrations recorded in `migrations` and applied in
one transaction each.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.errors import (
    EXIT_USAGE,
    BridgeError,
    NoSpaceError,
    StateBusyError,
    StateDamagedError,
    StateError,
    is_no_space,
)
from bridge.stamps import digester, iso
from bridge.statefolder import STATE_DIRNAME, StateFileRefused, StateFolder

__all__ = ["STATE_DIRNAME", "State", "StateError", "SharedStateError", "StateFileRefused"]

DB_NAME = "state.sqlite"
DB_SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite keeps beside it
VAULT_ID_FILE = "vault-id"  # the vault's id, readable without opening its database
VAULT_ID_KEY, VAULT_PATH_KEY = "vault_id", "vault_path"

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


class NoteIndex(Mapping[str, NoteState]):
    """The notes as `State.notes()` gives them, read from the state DB only as far as they are
    asked for: a sync that touches three notes of 50,000 looks up three. Going through all of
    them (`values()`, `len()`…) reads them all, once."""

    def __init__(self, state: State) -> None:
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


# SQLite's primary result codes that are the environment's doing, not the bridge's
_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_NOTADB = 5, 6, 11, 13, 26
_SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_READONLY = 10, 14, 8
BUSY_SECONDS = 10.0  # how long a lock held by another process is waited for


def state_error(path: Path, exc: sqlite3.Error) -> BridgeError | None:
    """What a failure of the state database means for the user; None for a bug (bad SQL,
    a broken constraint), which must stay visible as one."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    detail = str(exc)
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return StateDamagedError(str(path), detail)
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED):
        return StateBusyError(str(path), lock_holders(path), BUSY_SECONDS)
    if primary == _SQLITE_FULL:
        return NoSpaceError(str(path), "the disk is full")
    if primary == _SQLITE_IOERR and (reason := _out_of_space(path)):
        return NoSpaceError(str(path), reason)  # SQLite reports ENOSPC/EFBIG as an I/O error
    if primary in (_SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_READONLY):
        return StateError(
            f"cannot read or write the bridge's state database {path} ({detail}); the bridge "
            "stopped and your notes are intact",
            "check that the vault's disk is mounted and writable, then try again",
        )
    return None


def _out_of_space(path: Path) -> str | None:
    """Why a write of the state database failed for want of space, when that is why: SQLite
    keeps the errno to itself, so the disk and this process's file-size limit are asked."""
    try:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        largest = max(
            (os.stat(f"{path}{suffix}").st_size for suffix in ("", "-wal", "-journal")
             if os.path.exists(f"{path}{suffix}")),
            default=0,
        )  # fmt: skip
        if limit != resource.RLIM_INFINITY and largest + 65536 >= limit:
            return f"File too large (this process may write files of at most {limit} bytes)"
    except (ImportError, OSError, ValueError):
        pass
    try:
        disk = os.statvfs(path.parent)
    except (AttributeError, OSError):
        return None
    return "the disk is full" if disk.f_bavail * disk.f_frsize < 65536 else None


def lock_holders(path: Path) -> list[str]:
    """Other processes holding a lock on the database or its WAL files (`pid N (command)`),
    from /proc/locks; empty where that is not available."""
    try:
        wanted = set()
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            with contextlib.suppress(OSError):
                info = os.stat(name)
                wanted.add((os.major(info.st_dev), os.minor(info.st_dev), info.st_ino))
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return []
    pids: list[int] = []
    for line in lines:
        fields = line.split()
        if len(fields) < 6 or fields[1] == "->":  # "->": a waiter, not a holder
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            key = (int(major, 16), int(minor, 16), int(inode))
        except ValueError:
            continue
        if key in wanted and pid != os.getpid() and pid not in pids:
            pids.append(pid)
    return [_describe_process(pid) for pid in pids]


def _describe_process(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return f"pid {pid}"
    command = " ".join(w.decode("utf-8", "replace") for w in words if w)
    return f"pid {pid} ({command[:80]})" if command else f"pid {pid}"


def _raised_by_a_source(exc: BaseException) -> bool:
    """Whether the innermost Python frame of `exc` is in a Zotero source (Zotero's database,
    not ours)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith("bridge.sources")


class SharedStateError(StateError):
    """This state folder is also another vault's: each vault needs its own."""

    exit_code = EXIT_USAGE


def connect_state_db(folder: StateFolder, name: str = DB_NAME) -> sqlite3.Connection:
    """Open `state.sqlite` (or another database of ours: `name`, e.g. the search index) in
    `folder` so that no link can lead SQLite outside the vault.

    sqlite3 opens by path, so no descriptor of ours can be handed to it. Instead:
    1. the database and its side files are checked with an lstat relative to the folder's
       descriptor: each is missing or a plain file with one link (`StateFolder.check`); a
       missing database is created by us with `O_CREAT | O_EXCL | O_NOFOLLOW`, so SQLite
       never creates a file through a name;
    2. SQLite turns the name into a full path itself (resolving links — that is how a
       linked `state.sqlite` used to send it into Zotero's database) and then opens that
       path and every side file with `O_NOFOLLOW`. `PRAGMA database_list`, which writes
       nothing, says which file it opened: it must be the very file (device and inode) seen
       in step 1, in the very folder we hold open. A link swapped in after step 1 is thus
       either not followed by SQLite's open or shows up here, before any statement writes.
    Only then do the first writing pragmas run; the side files they create are checked again.

    Not `/proc/self/fd/N`: it exists on Linux only, and SQLite would derive the side files'
    names from it, which is no safer. Not a descriptor of the database file kept open
    either: closing any descriptor of a file drops every POSIX lock this process holds on
    it, SQLite's own included.
    """
    for suffix in DB_SIDE_FILES:
        folder.check(name + suffix)
    seen = folder.check(name)
    if seen is None:
        with contextlib.suppress(FileExistsError):  # another process just made it
            os.close(folder.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644))
        seen = folder.check(name)
    db = sqlite3.connect(folder.path / name, isolation_level=None, timeout=BUSY_SECONDS)
    try:
        opened = Path(db.execute("PRAGMA database_list").fetchone()[2])
        if (
            seen is None
            or not _same_file(opened, seen)
            or not _same_file(opened.parent, folder.stat)
        ):
            raise StateFileRefused(
                folder.path / name, f"led SQLite to {opened} (replaced by a link meanwhile?)"
            )
    except BaseException:
        db.close()
        raise
    return db


def check_state_folder(vault: Path) -> None:
    """Refuse now (`StateFileRefused`) what a later open would: a link or other stray file
    where the state folder or one of the bridge's files should be. For `zob watch`, which
    would otherwise only log each failed sync and retry."""
    with StateFolder(vault) as folder:
        for name in (DB_NAME, *(DB_NAME + s for s in DB_SIDE_FILES), VAULT_ID_FILE, "sync.lock"):
            folder.check(name)


def _same_file(path: Path, seen: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino)


def _recorded_vault(path: Path, folder: StateFolder, vault_id: str) -> str:
    """What the vault path recorded in the state DB is now, seen from `folder`: "same" (this
    vault under another name), "shared" (it reaches this very state folder), "copy" (its own
    state folder, same vault id) or "moved" (gone, or another vault)."""
    try:
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == (folder.vault_stat.st_dev, folder.vault_stat.st_ino):
            return "same"
        if _same_file(path / STATE_DIRNAME, folder.stat):
            return "shared"
        with StateFolder(path, create=False) as other:
            theirs = other.read_small(VAULT_ID_FILE)
    except (OSError, BridgeError):
        return "moved"
    return "copy" if theirs == vault_id.encode() else "moved"


class State:
    """A thin repository over the state database; one connection, explicit transactions.

    Opening it also checks that the state folder is this vault's (`_claim_vault`); `notices`
    then says, for the sync's report, when the vault was found moved or copied."""

    def __init__(self, vault: Path) -> None:
        self.dir = vault / STATE_DIRNAME
        self.path = self.dir / DB_NAME
        self.notices: list[str] = []
        try:
            with StateFolder(vault) as folder:
                self.db = connect_state_db(folder)
                try:
                    self._open(folder)
                except BaseException:
                    self.db.close()
                    raise
        except sqlite3.DatabaseError as exc:
            raise state_error(self.path, exc) or StateError(
                f"the bridge's state database {self.path} is unreadable ({exc})",
                "run `zob doctor`; do not delete the file: it holds the merge bases",
            ) from exc
        except OSError as exc:
            if is_no_space(exc):
                raise NoSpaceError.from_os_error(exc) from exc
            raise StateError(
                f"cannot create {self.dir}: {exc}", "check that the vault folder is writable"
            ) from exc

    def _open(self, folder: StateFolder) -> None:
        self._loader = self._base_json  # one bound method for every note's lazy base
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        # 16 MB of page cache (SQLite's default is 2 MB): a sync's batches insert rows at
        # random places of the indexes, which in a large vault span more than the default
        # cache; a page still cached is not read again
        self.db.execute("PRAGMA cache_size=-16000")
        for suffix in DB_SIDE_FILES:
            folder.check(DB_NAME + suffix)
        self._migrate()
        self._claim_vault(folder)

    def _claim_vault(self, folder: StateFolder) -> None:
        """Record which vault this state belongs to; refuse a state folder another vault uses.

        The database keeps a random vault id and the vault's resolved path; `vault-id` beside
        it repeats the id, so another location can be asked without opening its database.
        Everything else the state knows is vault-relative, so a vault folder that was moved or
        renamed — the common case — keeps working: the recorded path is gone (or holds another
        vault), and the new one is recorded. A recorded path that still reaches *this* state
        folder (a bind mount, a linked folder) means two vaults would share one state: refused.
        A recorded path that still holds its own state folder with the same id means this vault
        is a copy: it takes a new id, and each copy syncs on its own."""
        here = os.path.realpath(folder.vault)
        vault_id, recorded = self.get_meta(VAULT_ID_KEY), self.get_meta(VAULT_PATH_KEY)
        if vault_id is not None and recorded == here:
            if folder.read_small(VAULT_ID_FILE) != vault_id.encode():
                folder.write_small(VAULT_ID_FILE, vault_id.encode())
            return
        if vault_id is not None and recorded is not None:
            found = _recorded_vault(Path(recorded), folder, vault_id)
            if found == "same":  # another name of this very folder
                return
            if found == "shared":
                raise SharedStateError(
                    f"the state folder {folder.path} is also the state folder of the vault "
                    f"{recorded}: two vaults cannot share one (each one's notes would be "
                    "mistaken for the other's)",
                    f"give this vault its own state folder: remove the link or mount at "
                    f"{folder.path}; {recorded} keeps its state",
                )
            if found == "copy":
                vault_id = None
                self.notices.append(
                    f"this vault looks like a copy of {recorded}, which still exists: it now "
                    "has an identity of its own and the two are synced separately"
                )
            else:
                self.notices.append(
                    f"this vault was at {recorded} before; its state moved with it and now "
                    f"belongs to {here}"
                )
        with self.transaction():
            if vault_id is None or self.get_meta(VAULT_ID_KEY) is None:
                vault_id = vault_id or secrets.token_hex(16)
                self.set_meta(VAULT_ID_KEY, vault_id)
            self.set_meta(VAULT_PATH_KEY, here)
        folder.write_small(VAULT_ID_FILE, vault_id.encode())

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> State:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        """Close; a failure of this database inside the block becomes a StateError (or a
        NoSpaceError) that says what to do, instead of an internal error."""
        with contextlib.suppress(sqlite3.Error):
            self.close()
        if isinstance(exc, sqlite3.DatabaseError) and not _raised_by_a_source(exc):
            translated = state_error(self.path, exc)
            if translated is not None:
                raise translated from exc

    # --- schema --------------------------------------------------------------------------

    def _migrate(self) -> None:
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at TEXT)"
        )
        done = {row[0] for row in self.db.execute("SELECT version FROM migrations")}
        for version, script in enumerate(MIGRATIONS, start=1):
            if version in done:
                continue
            with self.transaction():
                for statement in script.split(";\n"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute("INSERT INTO migrations VALUES (?, ?)", (version, iso()))
                if version == 4:
                    self._derive_paper_meta()

    @property
    def schema_version(self) -> int:
        row = self.db.execute("SELECT max(version) FROM migrations").fetchone()
        return int(row[0] or 0)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            # SQLite may have rolled back already (a full disk, an I/O error): the original
            # error is the one to report, not "no transaction is active"
            if self.db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- notes ---------------------------------------------------------------------------

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

    def drop_paper_meta(self, note_ids: list[str]) -> None:
        self.db.executemany("DELETE FROM paper_meta WHERE note_id=?", [(n,) for n in note_ids])

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

    # --- sync log ------------------------------------------------------------------------

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


def compress_text(text: str) -> bytes:
    """A note's text as `seen_text` keeps it (zlib level 1: several times faster than the
    default and nearly as small on notes)."""
    return zlib.compress(text.encode("utf-8", "surrogatepass"), 1)


def _note_from_row(row: tuple[Any, ...]) -> NoteState:
    return NoteState(
        note_id=row[0], kind=row[1], path=row[2], base_raw=row[3], render_hash=row[4],
        etag=row[5], user_deleted=bool(row[6]), zotero_deleted=bool(row[7]), prev_status=row[8],
        content_hash=row[9],
    )  # fmt: skip


def _derived(info: dict[str, Any]) -> tuple[int, str | None, int, str]:
    """(lineage, stage, sort_year, sort_title) of a paper's cached facts."""
    from bridge.lineage import PaperInfo  # noqa: PLC0415 - lineage builds on this module
    from bridge.workflow.progress import stage  # noqa: PLC0415

    paper = PaperInfo(**{**info, "proposes": tuple(info.get("proposes") or ()),
                         "extends": tuple(info.get("extends") or ())})  # fmt: skip
    year = paper.year if isinstance(paper.year, int) else 0
    return int(bool(paper.proposes or paper.extends)), stage(paper), year, paper.title.casefold()
