"""Advisory file locks, held by the kernel: they vanish with the process (kill -9 included),
so a crashed `zob` never leaves a stale lock behind. fcntl on POSIX, msvcrt on Windows."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from bridge.errors import EXIT_BUSY, BridgeError
from bridge.statefolder import STATE_DIRNAME, StateFolder

_WIN_LOCK_OFFSET = 1 << 20  # Windows locks a byte range; lock one far past the content


def try_lock(fd: int, *, shared: bool = False) -> bool:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def unlock(fd: int) -> None:
    if os.name == "nt":  # pragma: no cover - Windows
        import msvcrt

        os.lseek(fd, _WIN_LOCK_OFFSET, os.SEEK_SET)
        with contextlib.suppress(OSError):
            msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)


class SyncBusyError(BridgeError):
    """Another sync of this vault is still running (exit 6, like a locked state DB: the
    same "try again once the other process is done")."""

    exit_code = EXIT_BUSY


@contextlib.contextmanager
def sync_lock(state_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """One sync at a time per vault (a manual `zob sync` and the daemon take turns).

    `state_dir` is `<vault>/.zotero-bridge`; the lock file in it is never reached through a
    link (`StateFolder`), so a planted `sync.lock` link creates nothing outside the vault."""
    if state_dir.name != STATE_DIRNAME:
        raise ValueError(f"not a state folder: {state_dir}")
    with StateFolder(state_dir.parent) as folder:
        fd = folder.open("sync.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        while not try_lock(fd):
            if time.monotonic() > deadline:
                raise SyncBusyError(
                    f"another sync of this vault has been running for over {timeout:.0f} s",
                    "wait for it (zob status shows a running daemon) and try again",
                )
            time.sleep(0.05)
        try:
            yield
        finally:
            unlock(fd)
    finally:
        os.close(fd)
