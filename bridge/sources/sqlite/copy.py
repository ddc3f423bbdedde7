"""The private copy of a database: `zotero.sqlite` and the side files that carry its
committed state, copied without ever opening Zotero's own files, and checked for torn reads.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import threading
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from bridge.errors import SourceError

SQLITE_MAGIC = b"SQLite format 3\x00"
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")


_DAMAGE_WORDS = ("malformed", "corrupt", "disk i/o", "database disk image")


class _Unstable(Exception):
    """The files changed while we copied them; the snapshot may be torn."""


@dataclass(frozen=True)
class _FileState:
    size: int
    mtime_ns: int
    inode: int
    head: bytes


def _file_state(path: Path) -> _FileState | None:
    """Enough about a file to notice that it changed while we copied it."""
    try:
        stat = path.stat()
        with open(path, "rb") as handle:
            head = handle.read(100)
    except FileNotFoundError:
        return None
    return _FileState(stat.st_size, stat.st_mtime_ns, stat.st_ino, head)


def _copy_file(source: Path, target: Path) -> None:
    """Copy bytes only (no metadata, no locks). `copy_file_range` lets the kernel share
    extents (reflink) on filesystems that can, so even a large library copies quickly."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        if hasattr(os, "copy_file_range"):
            try:
                while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
                    pass
                return
            except OSError:
                src.seek(0)
                dst.seek(0)
                dst.truncate()
        shutil.copyfileobj(src, dst, 1 << 20)


def snapshot_database(db_path: Path, target_dir: Path) -> tuple[Path, tuple[object, ...]]:
    """Copy a SQLite database and the side files that carry its committed state.

    Returns the copy's path and the files' states (to tell a changing file from a damaged
    one). Raises `_Unstable` when anything changed during the copy.
    """
    sides = {suffix: Path(f"{db_path}{suffix}") for suffix in ("-wal", "-journal")}
    before = (_file_state(db_path), *(_file_state(p) for p in sides.values()))
    if before[0] is None:
        raise _Unstable(f"{db_path.name} disappeared")
    target = target_dir / db_path.name
    try:
        _copy_file(db_path, target)
        if before[1] is not None:
            _copy_file(sides["-wal"], Path(f"{target}-wal"))
        journal = before[2]
        if journal is not None and journal.head[:8] == JOURNAL_MAGIC:
            # A hot journal: a write is in progress (or Zotero died in one). With it next to
            # the copy, SQLite rolls the copy back to the last committed state.
            _copy_file(sides["-journal"], Path(f"{target}-journal"))
            if _names_super_journal(Path(f"{target}-journal")):
                raise _Unstable("a write spanning several databases is in progress")
    except FileNotFoundError as exc:
        raise _Unstable(f"{Path(exc.filename or '?').name} vanished while being copied") from exc
    after = (_file_state(db_path), *(_file_state(p) for p in sides.values()))
    if before != after:
        raise _Unstable(f"{db_path.name} changed while being copied")
    return target, before


def _names_super_journal(journal: Path) -> bool:
    """Whether a hot journal points at a super-journal (a commit across attached databases,
    e.g. Zotero with Better BibTeX's file). SQLite would go and look for that file — inside
    Zotero's data directory — to decide whether to roll back, so such a copy is never opened;
    the attempt is retried until the commit is over. The pointer ends with the journal magic.
    """
    size = journal.stat().st_size
    if size < 24:
        return False
    with open(journal, "rb") as handle:
        handle.seek(size - 8)
        return handle.read(8) == JOURNAL_MAGIC


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _open_copy(path: Path, label: str) -> sqlite3.Connection:
    """Open a private copy. It is opened read-write only so SQLite can replay its WAL or roll
    back a hot journal; after that first read the connection is made query-only."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise SourceError(
            f"{label} is empty (0 bytes): it is not a Zotero database",
            "check --zotero-dir; Zotero keeps backups as zotero.sqlite.bak",
        )
    if head != SQLITE_MAGIC:
        raise SourceError(
            f"{label} is not a Zotero database: file is not a database (not SQLite at all)",
            "check --zotero-dir: it must be Zotero's data directory (Zotero → Settings → "
            "Advanced → Files and Folders) or its zotero.sqlite",
        )
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Invalid UTF-8 (a broken import or plugin) must cost a character, not the whole read.
    conn.text_factory = _decode_text
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA query_only=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_tables(conn: sqlite3.Connection, tables: Iterable[str]) -> None:
    """`quick_check` limited to the tables we read: finds a torn copy without paying for the
    full-text index, which is most of a large Zotero database."""
    if sqlite3.sqlite_version_info < (3, 33, 0):  # no per-table form: check everything
        checks = ["PRAGMA quick_check"]
    else:
        present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        checks = [f"PRAGMA quick_check({table})" for table in tables if table in present]
    for check in checks:
        result = conn.execute(check).fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({result})")


class _BackgroundCheck:
    """`_check_tables` on a second connection to a copy, in a thread, while the first
    connection reads: SQLite lets go of the GIL while it works, so with two cores the check
    costs next to nothing. Start it once the first connection has opened the copy (and so
    replayed its WAL or rolled back its hot journal); `wait()` before trusting the read."""

    def __init__(self, copy: Path, label: str, tables: Iterable[str]) -> None:
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if sqlite3.threadsafety == 0:  # pragma: no cover - a single-threaded SQLite build
            self._run(copy, label, tuple(tables))
            return
        self._thread = threading.Thread(
            target=self._run, args=(copy, label, tuple(tables)), name="zob-quick-check"
        )
        self._thread.daemon = True
        self._thread.start()

    def _run(self, copy: Path, label: str, tables: tuple[str, ...]) -> None:
        try:
            with closing(_open_copy(copy, label)) as conn:
                _check_tables(conn, tables)
        except BaseException as exc:  # handed to the reading thread by `wait`
            self._error = exc

    def join(self) -> BaseException | None:
        """Wait for the check; its error (None: the tables are fine)."""
        if self._thread is not None:
            self._thread.join()
        return self._error

    def wait(self) -> None:
        """Wait for the check and raise what it found."""
        error = self.join()
        if error is not None:
            raise error


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _DAMAGE_WORDS)
