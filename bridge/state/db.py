"""Opening the state database safely, and what its failures mean for the user.

Nothing here knows the tables (`bridge.state.schema`) or the rows (`bridge.state.core`): it
is the connection and the errors around it.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from bridge.errors import BridgeError, NoSpaceError, StateBusyError, StateDamagedError, StateError
from bridge.statefolder import StateFileRefused, StateFolder

DB_NAME = "state.sqlite"
DB_SIDE_FILES = ("-journal", "-wal", "-shm")  # what SQLite keeps beside it
VAULT_ID_FILE = "vault-id"  # the vault's id, readable without opening its database

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


def raised_by_a_source(exc: BaseException) -> bool:
    """Whether the innermost Python frame of `exc` is in a Zotero source (Zotero's database,
    not ours)."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return str(tb.tb_frame.f_globals.get("__name__", "")).startswith("bridge.sources")


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
        if seen is None or not same_file(opened, seen) or not same_file(opened.parent, folder.stat):
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


def same_file(path: Path, seen: os.stat_result) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino)


def inspect_state_db(path: Path) -> int:
    """`zob doctor`'s look at a state database: opened read-only (nothing created, migrated or
    claimed), checked with `PRAGMA quick_check`; returns how many notes it records. Raises
    `sqlite3.DatabaseError` when it is damaged, locked or unreadable (`state_error` says
    which)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=2)) as db:
        problems = [" ".join(row[0].split()) for row in db.execute("PRAGMA quick_check(3)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("; ".join(problems))
        return int(db.execute("SELECT count(*) FROM notes").fetchone()[0])


def peek_meta(vault: Path, keys: tuple[str, ...]) -> dict[str, str]:
    """Some `meta` values read without writing a byte (a command run while a sync holds the
    vault must change nothing before it has the lock): the state DB opened read-only
    (immutable unless a writer keeps a -wal: no -wal/-shm made, no locks taken), never through
    a link. What is read is a hint: a busy, damaged or older DB gives {}."""
    from urllib.parse import quote

    from bridge.statefolder import STATE_DIRNAME

    folder = vault / STATE_DIRNAME
    path = folder / DB_NAME
    if folder.is_symlink() or path.is_symlink() or not path.is_file():
        return {}
    marks = ", ".join("?" for _ in keys)
    try:
        # immutable only while no writer keeps a -wal beside it: committed changes can live
        # there alone, and an immutable open would miss them. With a -wal, its -shm is there
        # too (the writer made both), so a read-only open creates nothing.
        wal = os.path.lexists(folder / (DB_NAME + "-wal"))
        uri = f"file:{quote(str(path))}?mode=ro" + ("" if wal else "&immutable=1")
        with closing(sqlite3.connect(uri, uri=True, timeout=1.0)) as db:
            query = f"SELECT key, value FROM meta WHERE key IN ({marks})"
            return dict(db.execute(query, keys).fetchall())
    except sqlite3.Error:
        return {}
