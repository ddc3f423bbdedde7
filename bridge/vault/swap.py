"""Putting a note's new text in its place without losing a save that lands meanwhile.

`Vault.replace` (`bridge.vault.fs`) checks the note, writes the merged text to a temp file in
the same folder, then calls `swap_in`:

3. temp and note are swapped atomically (`renameat2(RENAME_EXCHANGE)`), so the user's file is
   still there, under the temp name, held open since the check;
4. if it is still the same file with the same bytes, it is deleted: done. If anything wrote to
   it, or replaced it, after the check, the swap is undone (`_put_back`) — the user's file is
   back in place with whatever they saved, and any write still coming from their editor lands
   in it — and the note is tried again once it settles.

Where the kernel or file system cannot swap, the user's file keeps a second name during the
replace (a hard link, or the file itself renamed aside) and is renamed back the same way
(`_replace_keeping_a_link`). Everything here works on names relative to an open folder handle.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import sys
from typing import Any

from bridge.errors import NoteChangedError
from bridge.vault.etag import etag_of


def swap_in(rel: str, folder: int, tmp: str, name: str, note: int, before: bytes) -> None:
    """Put `tmp` in `name`'s place unless the note (open as `note`, holding `before`) was
    written or replaced meanwhile; then the user's file stays and NoteChangedError says so.
    `tmp` is gone afterwards, or kept visible when it may hold the user's words."""
    written = os.stat(tmp, dir_fd=folder, follow_symlinks=False)
    ours = (written.st_ino, etag_of(written))
    try:
        swapped = _exchange(folder, tmp, name)
    except BaseException:
        _unlink_if(folder, tmp, ours)
        raise
    if not swapped:
        _replace_keeping_a_link(rel, folder, tmp, name, note, before, ours)
        return
    displaced = os.stat(tmp, dir_fd=folder, follow_symlinks=False)
    if displaced.st_ino == os.fstat(note).st_ino and read_all(note) == before:
        os.unlink(tmp, dir_fd=folder)
        return
    # saved (in place or by a rename) after the check: the user's file goes back
    _put_back(rel, folder, tmp, name, ours)
    raise _saved_meanwhile(rel)


def _put_back(rel: str, folder: int, kept: str, name: str, ours: tuple[int, str]) -> None:
    """The user's file (now named `kept`) goes back to `name`, which holds the bridge's
    text — unless `name` changed again meanwhile (renamed by the user, saved over, saved
    into in place): then nothing of theirs is overwritten or deleted, and their earlier
    file stays visible beside the note."""
    try:
        if _exchange(folder, kept, name):
            if _untouched(folder, kept, ours):
                os.unlink(kept, dir_fd=folder)
                return
            _exchange(folder, kept, name)  # `name` had changed: undo
        elif _untouched(folder, name, ours):  # no swap here: replace the bridge's text
            os.replace(kept, name, src_dir_fd=folder, dst_dir_fd=folder)
            return
    except FileNotFoundError:  # the note was renamed meanwhile: its name is free
        if rename_noreplace(folder, kept, name):
            return
    except OSError:
        pass
    raise _kept_beside(rel, folder, kept, name, "saved (and changed again)", "that save")


def _replace_keeping_a_link(
    rel: str, folder: int, tmp: str, name: str, note: int, before: bytes, ours: tuple[int, str]
) -> None:
    """Without an atomic swap (macOS before 10.12, NFS, SMB, many FUSE mounts): the
    user's file keeps a second name during the replace — a hard link, or, where there are
    none (FAT, exFAT), the file itself renamed aside — so that it can be put back whole,
    with any write their editor has yet to make landing in it."""
    keep = f".zob-{secrets.token_hex(6)}.tmp"
    try:
        os.link(name, keep, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        linked = True
    except OSError:
        linked = False
    try:
        if not linked:
            os.rename(name, keep, src_dir_fd=folder, dst_dir_fd=folder)
        if os.stat(keep, dir_fd=folder, follow_symlinks=False).st_ino != os.fstat(note).st_ino:
            # another file took the name before ours could: it goes back, untouched
            _restore_aside(rel, folder, keep, name, linked)
            raise changed(rel)
        if linked:
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        elif not rename_noreplace(folder, tmp, name):  # the editor made the note anew
            _restore_aside(rel, folder, keep, name, linked)
            raise changed(rel)
    except BaseException:
        _unlink_if(folder, tmp, ours)
        raise
    if read_all(note) == before:
        os.unlink(keep, dir_fd=folder)
        return
    _put_back(rel, folder, keep, name, ours)
    raise _saved_meanwhile(rel)


def _restore_aside(rel: str, folder: int, keep: str, name: str, linked: bool) -> None:
    """Undo `_replace_keeping_a_link`'s second name before the replace happened."""
    if linked:
        os.unlink(keep, dir_fd=folder)
    elif not rename_noreplace(folder, keep, name):
        raise _kept_beside(rel, folder, keep, name, "replaced", "the earlier file")


# --- renames with flags ----------------------------------------------------------------------


def _load_rename2() -> tuple[Any, int, int] | None:
    """The C rename with flags, and its flags to swap two names and to never replace one:
    Linux's `renameat2` (3.15+, glibc 2.28+) or macOS's `renameatx_np` (10.12+); None
    elsewhere. Python's `os` has no binding, and the one PyPI wrapper (`renameat2`, last
    released 2022, Linux only) adds nothing over these lines."""
    if sys.platform.startswith("linux"):
        symbol, swap, noreplace = "renameat2", 2, 1  # RENAME_EXCHANGE, RENAME_NOREPLACE
    elif sys.platform == "darwin":
        symbol, swap, noreplace = "renameatx_np", 2, 4  # RENAME_SWAP, RENAME_EXCL
    else:
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), symbol)
    except (OSError, AttributeError):
        return None
    path, fd = ctypes.c_char_p, ctypes.c_int
    function.argtypes = [fd, path, fd, path, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function, swap, noreplace


_RENAME2 = _load_rename2()
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP}


def _rename2(folder: int, src: str, dst: str, *, swap: bool) -> bool:
    """Rename within one folder, swapping the two names (`swap`) or never over an existing
    file; False when this kernel or file system cannot."""
    if _RENAME2 is None:
        return False
    function, swap_flag, noreplace_flag = _RENAME2
    flags = swap_flag if swap else noreplace_flag
    if function(folder, os.fsencode(src), folder, os.fsencode(dst), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), dst)


def _exchange(folder: int, a: str, b: str) -> bool:
    """Swap two names in `folder` atomically; False when that cannot be done here."""
    return _rename2(folder, a, b, swap=True)


def rename_noreplace(folder: int, src: str, dst: str) -> bool:
    """Rename, never over an existing file; False when `dst` exists."""
    try:
        if _rename2(folder, src, dst, swap=False):
            return True
    except FileExistsError:
        return False
    try:  # no RENAME_NOREPLACE: check, then rename (a small window, only without hard links)
        os.stat(dst, dir_fd=folder, follow_symlinks=False)
        return False
    except FileNotFoundError:
        os.rename(src, dst, src_dir_fd=folder, dst_dir_fd=folder)
        return True


# --- small helpers ---------------------------------------------------------------------------


def _untouched(folder: int, name: str, ours: tuple[int, str]) -> bool:
    """`name` is still the bridge's file as written (inode and etag)."""
    try:
        there = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    return (there.st_ino, etag_of(there)) == ours


def _kept_beside(
    rel: str, folder: int, kept: str, name: str, what: str, which: str
) -> NoteChangedError:
    """Give the user's file `kept` a visible name beside the note, and say so."""
    visible = f"{name}.zob-kept-{secrets.token_hex(3)}"
    os.rename(kept, visible, src_dir_fd=folder, dst_dir_fd=folder)
    return NoteChangedError(
        rel,
        f"the note was {what} while the bridge wrote it; {which} is kept beside it as {visible}",
        "compare the two and keep what you need; nothing was deleted",
    )


def _unlink_if(folder: int, name: str, ours: tuple[int, str]) -> None:
    """Remove `name` if it is still the bridge's own temp file."""
    with contextlib.suppress(OSError):
        if os.stat(name, dir_fd=folder, follow_symlinks=False).st_ino == ours[0]:
            os.unlink(name, dir_fd=folder)


def read_all(fd: int) -> bytes:
    """Every byte of the open file `fd`, from its start."""
    chunks = []
    offset = 0
    while True:
        chunk = os.pread(fd, 1 << 20, offset)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        offset += len(chunk)


def changed(rel: str) -> NoteChangedError:
    return NoteChangedError(
        rel,
        "the note changed while the bridge was syncing it",
        "nothing was lost; it is merged once it settles",
    )


def _saved_meanwhile(rel: str) -> NoteChangedError:
    return NoteChangedError(
        rel,
        "the note was saved while the bridge wrote it; the save was kept",
        "nothing was lost; it is merged once it settles",
    )
