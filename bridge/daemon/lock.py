"""One daemon per vault: `daemon.lock`, held with `flock` for the daemon's lifetime, carrying
its pid and live status (`zob status` reads it)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any

from bridge.daemon.logs import log
from bridge.errors import BridgeError, DaemonRunningError
from bridge.locks import try_lock as _try_lock
from bridge.locks import unlock as _unlock
from bridge.statefolder import STATE_DIRNAME, StateFolder

LOCK_NAME = "daemon.lock"


def _read_all(fd: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, 1 << 20, 0)
    os.lseek(fd, 0, os.SEEK_SET)  # pragma: no cover - Windows
    return os.read(fd, 1 << 20)  # pragma: no cover - Windows


def _read_json(fd: int) -> dict[str, Any]:
    """The lock file's content; a write may be under way, so a torn read is retried."""
    for _ in range(5):
        try:
            text = _read_all(fd).decode("utf-8", "replace")
        except OSError:
            return {}
        try:
            return json.loads(text) if text.strip() else {}
        except ValueError:
            time.sleep(0.02)
    return {}


class DaemonLock:
    """`<vault>/.zotero-bridge/daemon.lock`: held for the daemon's whole life.

    The file is never deleted (deleting lock files races); a clean exit empties it. Its
    content is the holder's pid and live status, rewritten as the daemon works. It is opened
    without following a link (`StateFolder`): a planted link is refused, not truncated.
    """

    def __init__(self, vault: Path) -> None:
        self.vault = vault
        self.path = vault / STATE_DIRNAME / LOCK_NAME
        self.fd: int | None = None
        self.inode: int | None = None

    def acquire(self, status: dict[str, Any]) -> None:
        """Take the lock or raise `DaemonRunningError` naming the running daemon's pid."""
        try:
            with StateFolder(self.vault) as folder:
                fd = folder.open(LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise BridgeError(
                f"cannot create {self.path}: {exc.strerror or exc}",
                "check that the vault folder exists and is writable",
            ) from exc
        for attempt in range(4):  # a `zob status` probe holds it for microseconds
            if _try_lock(fd):
                break
            if attempt == 3:
                holder = _read_json(fd)
                os.close(fd)
                pid = holder.get("pid", "unknown")
                raise DaemonRunningError(
                    f"another `zob watch` (pid {pid}) is already watching this vault",
                    f"stop it first (kill {pid}), or use `zob status` to see what it does",
                )
            time.sleep(0.05)
        previous = _read_json(fd)
        if previous.get("pid") and previous.get("pid") != os.getpid():
            log.info(
                "taking over the lock of a daemon that did not stop cleanly (pid %s)",
                previous["pid"],
            )
        self.fd = fd
        self.inode = os.fstat(fd).st_ino
        self.write(status)

    def write(self, status: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = json.dumps(status, ensure_ascii=False).encode()
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.write(self.fd, data)

    def still_ours(self) -> bool:
        """False when the lock file vanished or was replaced (vault unmounted, folder reset)."""
        try:
            return self.inode is not None and self.path.lstat().st_ino == self.inode
        except OSError:
            return False

    def release(self) -> None:
        if self.fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self.fd, 0)
        with contextlib.suppress(OSError):
            _unlock(self.fd)
        os.close(self.fd)
        self.fd = None


def probe_lock(vault: Path) -> dict[str, Any] | None:
    """The running daemon's live status for `vault`, or None when no daemon holds the lock.
    A link planted as the lock file is refused (`StateFileRefused`), never read through."""
    try:
        with StateFolder(vault, create=False) as folder:
            fd = folder.open(LOCK_NAME, os.O_RDONLY if os.name != "nt" else os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd, shared=True):
            _unlock(fd)
            return None
        return _read_json(fd) or {"pid": None}
    finally:
        os.close(fd)


def daemon_status(vault: Path, recorded: dict[str, Any] | None) -> dict[str, Any]:
    """For `zob status`: whether a daemon runs for this vault, and what it last did.

    `recorded` is the state DB's copy (`state.marks.daemon`, kept after the daemon stops);
    the lock file's copy is the live one while it runs.
    """
    live = probe_lock(vault)
    info: dict[str, Any] = dict(recorded or {})
    if live is not None:
        info.update(live)
    info["running"] = live is not None
    return info
