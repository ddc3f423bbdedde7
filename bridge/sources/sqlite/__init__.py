"""Read a Zotero library straight from `zotero.sqlite` (and `better-bibtex.sqlite`).

Safety first, because this file belongs to a program that is usually running:
- Zotero holds `PRAGMA locking_mode=EXCLUSIVE`, so even a read-only connection to the live file
  fails with "database is locked" — and any connection we opened could take a lock Zotero
  needs. Zotero 10 runs in WAL mode without a `-shm` file and checkpoints rarely, so committed
  edits can live only in `zotero.sqlite-wal`; an "immutable" open of the live file would miss them.
- So we never open Zotero's files with SQLite. We copy `zotero.sqlite` plus its `-wal` (always:
  it holds committed data) and its `-journal` (only when hot: a write in progress) into a
  private temp directory outside the data directory, and open the *copy*. SQLite then replays
  the WAL, or rolls back a half-written transaction, in the copy only.
- A copy taken while Zotero writes can be torn. Every file's size, mtime, inode and header are
  compared before and after copying, the tables we read are checked with `quick_check`, and a
  damaged or changing snapshot is retried a few times with short sleeps before we give up with
  a `SourceError` that says what to do.
- A hot journal that names a super-journal (a commit spanning attached databases) is never
  opened: SQLite would look for that file inside Zotero's data directory. We retry instead.
- Queries are one scan per table, grouped in Python, never one query per item: 10,000 items
  with a PDF each read in about 0.5 s (1 s with 30,000 annotations) on a modest machine.

Incremental reads (`since` = a previous cursor) return the items whose own
`clientDateModified`, or that of one of their attachments or annotations, collections or trash
entries, is at or after the cursor's newest stamp. Deleted or moved children and Better BibTeX
key changes leave no stamp; digests in the cursor notice them and the read returns everything.
`all_keys` is complete, so permanent deletions show up by comparison. A cursor read asks SQLite
what changed (stamps, digests, the touched items — `_read_changes`) and turns only the changed
items into Python rows, reading their fields, creators, tags, relations and annotations by
itemID: at 10,000 items it costs about a fifth of a full read, most of it the copy and checks.
And when the source files are exactly as the cursor's read fingerprinted them before copying
(size, mtime, inode, header bytes; and settled, every mtime 2 s old then), nothing can have
changed: the read returns at once, copying nothing, with `all_keys` None ("not looked at").
"""

from __future__ import annotations

import sqlite3
import tempfile
import time
from collections.abc import Callable, Collection
from contextlib import closing
from functools import partial
from pathlib import Path

from bridge.errors import SchemaVersionError, SourceError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.sqlite import queries
from bridge.sources.sqlite.build import _Builder
from bridge.sources.sqlite.changes import read_changes
from bridge.sources.sqlite.copy import (
    JOURNAL_MAGIC,
    _BackgroundCheck,
    _check_tables,
    _is_damage,
    _open_copy,
    _Unstable,
    snapshot_database,
)
from bridge.sources.sqlite.cursor import (
    CURSOR_PREFIX,
    MAX_BOUNDARY,
    _Cursor,
    _Entry,
    _files_digest,
    _item_hash,
    _path_entry,
)
from bridge.sources.sqlite.queries import _keys_by_id, _query_rows, _read_bbt, _Rows
from bridge.sources.sqlite.schema import (
    BBT_NAME,
    CHANGE_TABLES,
    DB_NAME,
    READ_TABLES,
    SUPPORTED_SCHEMAS,
    _has_table,
    _library_info,
    _LibraryInfo,
    field_text,
)
from bridge.sources.sqlite.stream import NAMING_FIELDS, _is_large, _StreamedItems, read_streamed

__all__ = [
    "BBT_NAME",
    "CURSOR_PREFIX",
    "DB_NAME",
    "JOURNAL_MAGIC",
    "NAMING_FIELDS",
    "SUPPORTED_SCHEMAS",
    "SqliteSource",
    "field_text",
    "snapshot_database",
]

# Cursor reads decide what changed in SQL (`_read_changes`); False: always the older way, which
# pulls the light tables into Python (kept for reads that return everything, and for tests).
FAST_CURSOR_READS = True


def _wall_ns() -> int:
    """The wall clock, in ns (a function of its own so tests can move it)."""
    return time.time_ns()


class SqliteSource:
    """A Zotero data directory read through private snapshots of its SQLite files.

    `data_dir` is Zotero's data directory (holding `zotero.sqlite`, maybe
    `better-bibtex.sqlite`) or the path of the `.sqlite` file itself. `library_id` is Zotero's
    internal libraryID (default: the user's own library; groups have their own IDs).
    """

    name = "sqlite"

    def __init__(
        self,
        data_dir: Path | str,
        *,
        library_id: int | None = None,
        attempts: int = 5,
        retry_delay: float = 0.05,
    ) -> None:
        path = Path(data_dir).expanduser()
        if path.suffix == ".sqlite" or path.is_file():
            self.db_path, self.data_dir = path, path.parent
        else:
            self.db_path, self.data_dir = path / DB_NAME, path
        self.library_id = library_id
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """Read the library (everything, or what changed since the cursor `since`).

        The returned cursor is opaque. `all_keys` lists every regular item key so the caller
        can detect permanent deletions — except when nothing at all changed since `since`
        (the source files are exactly as when that cursor's read fingerprinted them): then
        the read returns at once, without copying anything, with no items, `all_keys` None
        (not looked at) and `since` as its cursor. Raises `SourceError` (never a raw sqlite3
        error) when the files are missing, not Zotero's, damaged, or kept changing.
        """
        self._check_location()
        temp_root = self._temp_root()
        unchanged = self._unchanged(since)
        if unchanged is not None:
            return unchanged
        last_problem = ""
        previous_state: tuple[object, ...] | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.retry_delay * (2 ** (attempt - 1)))
            state: tuple[object, ...] | None = None
            temp = tempfile.TemporaryDirectory(prefix="zob-zotero-", dir=temp_root)
            kept = False
            try:
                tmp = Path(temp.name)
                # Fingerprinted before copying: the copy holds at least what it vouches for.
                taken, db_files = _wall_ns(), self._db_entries()
                copy, state = snapshot_database(self.db_path, tmp)
                fingerprint = partial(self._fingerprint_with, taken, db_files)
                snapshot = self._read_copy(copy, tmp, since, fingerprint, temp)
                kept = isinstance(snapshot.items, _StreamedItems)  # it owns the copy now
                return snapshot
            except _Unstable as exc:
                last_problem = str(exc)
            except sqlite3.DatabaseError as exc:
                if not _is_damage(exc):
                    raise self._database_error(exc) from None
                last_problem = f"{exc}"
                if state is not None and state == previous_state:
                    break  # same bytes, same damage: retrying will not help
            except OSError as exc:
                raise SourceError(
                    f"cannot read {self.db_path}: {exc.strerror or exc}",
                    "check the path and its permissions",
                ) from None
            finally:
                if not kept:
                    temp.cleanup()
            previous_state = state
        raise SourceError(
            f"could not take a consistent snapshot of {self.db_path}: {last_problem}",
            "if Zotero is busy (syncing, importing), try again in a moment; if this persists, "
            "quit Zotero and run Help → Troubleshooting → Check Database Integrity, or restore "
            "zotero.sqlite.bak",
        )

    # -- nothing changed?

    def _unchanged(self, since: str | None) -> LibrarySnapshot | None:
        """The answer to `read(since)` when the source files are exactly as `since`'s read
        found them before copying, and were settled then: nothing can have changed."""
        old = _Cursor.decode(since) if since is not None else None
        if old is None or not old.files:
            return None
        taken = _wall_ns()
        files = self._fingerprint(taken, self._db_entries() + self._side_entries(old.library))
        if files != old.files:
            return None
        return LibrarySnapshot(
            items=(),
            all_keys=None,  # not looked at: the caller skips its deletion checks
            cursor=since,
            library=old.library,
            incremental=True,
        )

    def _db_entries(self) -> list[_Entry | None]:
        db = self.db_path
        return [_path_entry(Path(f"{db}{suffix}"), True) for suffix in ("", "-wal", "-journal")]

    def _side_entries(self, library: Library) -> list[_Entry | None]:
        """Better BibTeX's files and the image cache of `library` (a new PNG adds an entry,
        which moves the directory's mtime)."""
        bbt = self.data_dir / BBT_NAME
        files = [_path_entry(Path(f"{bbt}{suffix}"), True) for suffix in ("", "-wal", "-journal")]
        return [*files, _path_entry(self._image_dir(library), False)]

    def _fingerprint_with(self, taken: int, db_files: list[_Entry | None], library: Library) -> str:
        """The fingerprint from the database's entries taken at `taken` and, now, the side
        files of `library` (known once the copy is open)."""
        return self._fingerprint(taken, db_files + self._side_entries(library))

    def _fingerprint(self, taken: int, entries: list[_Entry | None]) -> str:
        """`_files_digest` of the files' entries and of what this source was asked to read."""
        return _files_digest(taken, entries, (self.library_id, str(self.db_path)))

    # -- checks

    def _check_location(self) -> None:
        if not self.data_dir.exists():
            raise SourceError(
                f"Zotero data directory {self.data_dir} does not exist",
                "check --zotero-dir (Zotero → Settings → Advanced → Files and Folders → "
                "Data Directory Location)",
            )
        if not self.db_path.is_file():
            raise SourceError(
                f"no {self.db_path.name} in {self.data_dir}: this is not Zotero's data directory",
                "check --zotero-dir (Zotero → Settings → Advanced → Files and Folders → "
                "Data Directory Location)",
            )

    def _temp_root(self) -> Path:
        """Where snapshots go: the system temp directory, which must not be inside Zotero's
        data directory (checked before anything is created there)."""
        root = Path(tempfile.gettempdir()).resolve()
        if root.is_relative_to(self.data_dir.resolve()):
            raise SourceError(
                f"the temporary directory {root} is inside Zotero's data directory",
                "set TMPDIR to a directory outside it",
            )
        return root

    def _database_error(self, exc: sqlite3.DatabaseError) -> SourceError:
        text = str(exc)
        if "not a database" in text or "encrypted" in text:
            return SourceError(
                f"{self.db_path} is not a Zotero database: {text}",
                "check --zotero-dir: it must be Zotero's data directory or its zotero.sqlite",
            )
        if "no such table" in text or "no such column" in text:
            return SourceError(
                f"{self.db_path} does not have the layout of a Zotero database ({text})",
                "check --zotero-dir; if it is Zotero's, report your Zotero version",
            )
        return SourceError(f"cannot read {self.db_path}: {text}", "check the file")

    # -- one attempt on a private copy

    def _read_copy(
        self,
        copy: Path,
        tmp: Path,
        since: str | None,
        fingerprint: Callable[[Library], str],
        temp: tempfile.TemporaryDirectory[str] | None = None,
    ) -> LibrarySnapshot:
        """A full read scans every table once; a cursor read asks SQLite what changed
        (`_read_since`). `fingerprint` gives the source files' fingerprint for the new cursor
        (taken before Better BibTeX's file is copied and the image cache is looked at).

        A full read of a large library (`STREAM_ITEMS`) streams its items: the connection
        and `temp`, the copy's folder, then belong to the snapshot's `_StreamedItems`."""
        old = _Cursor.decode(since) if since is not None else None
        conn = _open_copy(copy, str(self.db_path))
        streamed = False
        try:
            self._check_schema_version(conn)
            if old is not None and FAST_CURSOR_READS:
                return self._read_since(conn, copy, tmp, since, old, fingerprint)
            _check_tables(conn, READ_TABLES)
            info = _library_info(conn, self.library_id, str(self.db_path))
            files = fingerprint(info.library)
            if old is None and temp is not None and _is_large(conn, info):
                bbt_keys, warnings = self._bbt_keys(
                    tmp, info.library_id, lambda: _keys_by_id(conn, info.library_id)
                )
                if since is not None:  # (`old` is None: it could not be decoded)
                    warnings.append("unrecognised sync cursor; reading the whole library")
                snapshot = read_streamed(
                    conn, temp, info, bbt_keys, warnings, files,
                    image_dir=self._image_dir(info.library), label=str(self.db_path),
                )  # fmt: skip
                streamed = True
                return snapshot
            rows = _query_rows(conn, info.library_id, details=old is None)
            bbt_keys, warnings = self._bbt_keys(
                tmp, info.library_id, lambda: {i: row[0] for i, row in rows.items.items()}
            )
            return self._from_rows(conn, rows, info, bbt_keys, since, old, warnings, files)
        finally:
            if not streamed:
                conn.close()

    def _read_since(
        self,
        conn: sqlite3.Connection,
        copy: Path,
        tmp: Path,
        since: str | None,
        old: _Cursor,
        fingerprint: Callable[[Library], str],
    ) -> LibrarySnapshot:
        """A cursor read: `_read_changes`, or when everything comes back (deleted children,
        Better BibTeX edits…) or too much changed, the light tables read into Python."""
        # It scans only CHANGE_TABLES whole; the other tables it reads by itemID, for the
        # changed items alone. quick_check is for what a read scans: a torn page on the path
        # of a lookup is still caught by SQLite's own page checks (a "malformed" error,
        # retried like any damage), and the files' before/after states (`snapshot_database`)
        # remain the first guard against a copy that raced a write. Checking itemData & co.
        # whole would cost more than all the rest of such a read; checking CHANGE_TABLES runs
        # beside the read, and the read's answer waits for it.
        conn.execute("PRAGMA cache_size=-16384")  # its scans revisit items' pages: 16 MB
        check = _BackgroundCheck(copy, str(self.db_path), CHANGE_TABLES)
        try:
            info = _library_info(conn, self.library_id, str(self.db_path))
            files = fingerprint(info.library)
            bbt_keys, warnings = self._bbt_keys(
                tmp, info.library_id, lambda: _keys_by_id(conn, info.library_id)
            )
            snapshot = self._read_changes(conn, info, old, bbt_keys, warnings, files)
        except Exception:
            damage = check.join()
            if isinstance(damage, sqlite3.DatabaseError) and _is_damage(damage):
                raise damage from None  # as if the check had run first: the copy is torn
            raise
        finally:
            check.join()
        check.wait()
        if snapshot is not None:
            return snapshot
        _check_tables(conn, [table for table in READ_TABLES if table not in CHANGE_TABLES])
        rows = _query_rows(conn, info.library_id, details=False)
        return self._from_rows(conn, rows, info, bbt_keys, since, old, warnings, files)

    def _from_rows(
        self,
        conn: sqlite3.Connection,
        rows: _Rows,
        info: _LibraryInfo,
        bbt_keys: dict[str, str],
        since: str | None,
        old: _Cursor | None,
        warnings: list[str],
        files: str,
    ) -> LibrarySnapshot:
        def loader(item_ids: Collection[int] | None) -> None:
            queries._query_details(conn, rows, item_ids)

        image_dir = self._image_dir(info.library)
        builder = _Builder(rows, info, bbt_keys, image_dir, None if old is None else loader)
        return self._snapshot(builder, since, old, warnings, files)

    def _read_changes(
        self,
        conn: sqlite3.Connection,
        info: _LibraryInfo,
        old: _Cursor,
        bbt_keys: dict[str, str],
        warnings: list[str],
        files: str,
    ) -> LibrarySnapshot | None:
        """`read_changes` (None: read the way `_snapshot` does)."""
        return read_changes(
            conn, info, old, bbt_keys, warnings, files,
            image_dir=self._image_dir(info.library),
        )  # fmt: skip

    def _image_dir(self, library: Library) -> Path:
        """Where Zotero caches rendered image/ink annotations for this library."""
        cache = self.data_dir / "cache"
        if library.kind == "group":
            return cache / "groups" / str(library.group_id)
        return cache / "library"

    def _check_schema_version(self, conn: sqlite3.Connection) -> int:
        if not _has_table(conn, "version"):
            raise SourceError(
                f"{self.db_path} is a SQLite database but not a Zotero database "
                "(it has no `version` table)",
                "check --zotero-dir: it must be Zotero's data directory or its zotero.sqlite",
            )
        row = conn.execute("SELECT version FROM version WHERE schema='userdata'").fetchone()
        found = int(row[0]) if row and str(row[0]).isdigit() else None
        if found not in SUPPORTED_SCHEMAS:
            raise SchemaVersionError(found, str(self.db_path))
        return found

    def _bbt_keys(
        self, tmp: Path, library_id: int, keys_by_id: Callable[[], dict[int, str]]
    ) -> tuple[dict[str, str], list[str]]:
        """Better BibTeX keys from a snapshot of `better-bibtex.sqlite` (absent → none).
        `keys_by_id` gives the library's item keys by itemID (only old layouts need them).

        A changing file makes the whole attempt retry (`_Unstable`); a broken one only costs
        its keys, with a warning — it is an add-on's cache, not the library.
        """
        source = self.data_dir / BBT_NAME
        if not source.is_file():
            return {}, []
        target_dir = tmp / "bbt"
        target_dir.mkdir()
        copy, _ = snapshot_database(source, target_dir)
        try:
            with closing(_open_copy(copy, str(source))) as conn:
                return _read_bbt(conn, library_id, keys_by_id), []
        except (SourceError, sqlite3.DatabaseError, LookupError) as exc:
            reason = exc.message if isinstance(exc, SourceError) else str(exc)
            return {}, [f"{source}: Better BibTeX citation keys not read: {reason}"]

    def _snapshot(
        self,
        builder: _Builder,
        since: str | None,
        old: _Cursor | None,
        warnings: list[str],
        files: str = "",
    ) -> LibrarySnapshot:
        rows = builder.rows
        regular = set(builder.regular)
        all_keys = frozenset(rows.items[i][0] for i in builder.regular)
        wanted = builder.regular
        everything = True
        if since is not None and old is None:
            warnings.append("unrecognised sync cursor; reading the whole library")
        elif old is not None and not builder.needs_full_read(old):
            changed = builder.touched(old.is_after) & regular
            wanted = [i for i in builder.regular if i in changed]
            everything = False
        newest = builder.newest_stamp()
        edge = builder.touched(lambda stamp: stamp == newest) & regular if newest else set()
        if len(edge) > MAX_BOUNDARY:
            edge = set()
        builder.load_details(None if everything else set(wanted) | edge)
        built = {i: builder.item(i) for i in wanted}
        if old is not None:  # items of the old cursor's second, seen then exactly as now
            wanted = [i for i in wanted if old.boundary.get(built[i].key) != _item_hash(built[i])]
        boundary = {
            rows.items[i][0]: _item_hash(built[i] if i in built else builder.item(i))
            for i in sorted(edge)
        }
        return LibrarySnapshot(
            items=tuple(built[i] for i in wanted),
            all_keys=all_keys,
            cursor=builder.cursor(newest, boundary, files).encode(),
            library=builder.info.library,
            # Still incremental when everything is returned (children or Better BibTeX keys
            # changed): the items are then a superset of what changed.
            incremental=old is not None,
            warnings=tuple(warnings + builder.warnings),
        )
