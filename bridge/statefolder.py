"""The bridge's own folder, `<vault>/.zotero-bridge`, reached so that nothing in it leads out.

Everything the bridge keeps there (`state.sqlite` and its `-wal`/`-shm`/`-journal`,
`sync.lock`, `daemon.lock`, `vault-id`) is opened relative to one descriptor of the folder,
itself opened with `O_NOFOLLOW | O_DIRECTORY`, and every file is opened with `O_NOFOLLOW`.
A symbolic link, a FIFO, a folder or a file with a second hard link where the bridge expects
its own file is refused with `StateFileRefused` (exit 2), naming it: writing through it would
change a file outside the vault — Zotero's database, a dotfile — and the file it points to
is left byte for byte as it was.

The vault folder itself may be reached through a link: that is the user's own choice of
path. Only what the bridge creates inside it is held to these rules.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from bridge.errors import EXIT_USAGE, BridgeError

STATE_DIRNAME = ".zotero-bridge"

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as a lock file must not block us
# Windows has neither dir_fd nor O_NOFOLLOW: there the names are checked with lstat first
_BY_FD = os.open in os.supports_dir_fd and bool(_NOFOLLOW and _DIRECTORY)


class StateFileRefused(BridgeError):
    """Something other than the bridge's own plain file (or folder) sits where it keeps one."""

    exit_code = EXIT_USAGE

    def __init__(self, path: Path, problem: str, *, folder: bool = False) -> None:
        self.path = path
        what = "its state folder" if folder else "one of its own files"
        hint = (
            f"remove {path} (what it points to was not touched) and run the command again"
            if not folder
            else f"remove the link {path} (the folder it points to was not touched); if that "
            f"folder is this vault's own state, move it to {path} instead of linking it"
        )
        super().__init__(
            f"{path} {problem}, where the bridge keeps {what}: refused, so that nothing "
            "outside the vault is written",
            hint,
        )


def describe(path: Path, st: os.stat_result) -> str | None:
    """Why `st` (an lstat) is not a file the bridge may use as its own; None when it is."""
    if stat.S_ISLNK(st.st_mode):
        try:
            return f"is a symbolic link (to {os.readlink(path)})"
        except OSError:
            return "is a symbolic link"
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file (a folder, FIFO or device)"
    if st.st_nlink > 1:
        return f"has {st.st_nlink} hard links (the same file is also reachable elsewhere)"
    return None


class StateFolder:
    """`<vault>/.zotero-bridge`, opened once without following a link; files relative to it.

    `create`: make the folder when it is missing (a read-only command passes False and gets
    `FileNotFoundError` instead). Use as a context manager, or call `close()`.
    """

    def __init__(self, vault: Path, *, create: bool = True) -> None:
        self.vault = vault
        self.path = vault / STATE_DIRNAME
        self.fd: int | None = None
        if not _BY_FD:  # pragma: no cover - Windows
            self._open_by_path(create)
            return
        vault_fd = os.open(vault, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        try:
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(STATE_DIRNAME, dir_fd=vault_fd)  # never follows a link
            try:
                self.fd = os.open(
                    STATE_DIRNAME, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC, dir_fd=vault_fd
                )
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(STATE_DIRNAME, dir_fd=vault_fd, follow_symlinks=False)
                problem = describe(self.path, st) or "is not a folder"
                raise StateFileRefused(self.path, problem, folder=True) from None
            self.vault_stat = os.fstat(vault_fd)
            self.stat = os.fstat(self.fd)
        finally:
            os.close(vault_fd)

    def _open_by_path(self, create: bool) -> None:  # pragma: no cover - Windows
        if create and not os.path.lexists(self.path):
            self.path.mkdir()
        st = os.lstat(self.path)
        if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
            raise StateFileRefused(
                self.path, describe(self.path, st) or "is not a folder", folder=True
            )
        self.vault_stat = os.stat(self.vault)
        self.stat = st

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> StateFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def lstat(self, name: str) -> os.stat_result | None:
        """The entry `name` as it is (a link is not followed); None when there is none."""
        try:
            if self.fd is None:  # pragma: no cover - Windows
                return os.lstat(self.path / name)
            return os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return None

    def check(self, name: str) -> os.stat_result | None:
        """`name` is missing (None) or the bridge's own plain file; anything else is refused.

        For a file that some other API opens by path (sqlite3), where no descriptor of ours
        can be handed over."""
        st = self.lstat(name)
        if st is not None:
            problem = describe(self.path / name, st)
            if problem:
                raise StateFileRefused(self.path / name, problem)
        return st

    def open(self, name: str, flags: int, mode: int = 0o644) -> int:
        """`os.open` of `name` in this folder, never through a link; refuses what is not a
        plain file of its own (checked on the descriptor, so nothing can be swapped in)."""
        path = self.path / name
        if self.fd is None:  # pragma: no cover - Windows
            self.check(name)
            fd = os.open(path, flags, mode)
        else:
            try:
                fd = os.open(name, flags | _NOFOLLOW | _CLOEXEC | _NONBLOCK, mode, dir_fd=self.fd)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                st = self.lstat(name)
                problem = (describe(path, st) if st else None) or "is a symbolic link"
                raise StateFileRefused(path, problem) from None
        st = os.fstat(fd)
        problem = describe(path, st)
        if problem:
            os.close(fd)
            raise StateFileRefused(path, problem)
        return fd

    def read_small(self, name: str, limit: int = 4096) -> bytes | None:
        """The first `limit` bytes of a small file of ours (None when it does not exist)."""
        try:
            fd = self.open(name, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            # os.read(fd, n) reserves n bytes first: ask for what the file holds, not `limit`
            want = min(limit, os.fstat(fd).st_size)
            chunks: list[bytes] = []
            while want > 0 and (chunk := os.read(fd, want)):
                chunks.append(chunk)
                want -= len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def write_small(self, name: str, data: bytes) -> None:
        """Write a small file of ours in place (it is rewritten whole; no link is followed)."""
        fd = self.open(name, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, data)
        finally:
            os.close(fd)

    def write_atomic(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """Replace the file `name` whole: a temp file of ours beside it (created with `mode`,
        never through a link), fsynced, then renamed over it. A reader sees the old file or
        the new one, never half of one; a link planted as `name` is replaced, not followed."""
        tmp = f".{name}.{secrets.token_hex(6)}.tmp"
        fd = self.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(fd, mode)  # the umask may have cut it
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            self.remove(tmp)
            raise
        os.close(fd)
        try:
            if self.fd is None:  # pragma: no cover - Windows
                os.replace(self.path / tmp, self.path / name)
            else:
                os.replace(tmp, name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            self.remove(tmp)
            raise

    def remove(self, name: str) -> bool:
        """Delete the entry `name` (a link itself, never what it points to); False if absent."""
        try:
            if self.fd is None:  # pragma: no cover - Windows
                os.unlink(self.path / name)
            else:
                os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            return False
        return True
