"""The vault on disk: cheap etags, atomic writes, and never a byte outside the vault.

Every write happens relative to a handle on its folder, opened one path component at a time
without following links (`O_NOFOLLOW | O_DIRECTORY`), so neither a link where a note or folder
should be nor a folder swapped for a link during a sync can lead a write outside the vault.

Writes go to a hidden temp file in the same folder. A new note is then linked into place
(`os.link`: a file that appeared meanwhile is never clobbered). An existing note is replaced by
`replace`, which closes the window between its last check and the rename (the user's editor
saves in place — truncate, then write — at any moment; docs/RELIABILITY.md):

1. the note is opened (no links followed) and must still be the file the merge read: the same
   etag and the same bytes;
2. the merged text goes to a temp file, fsynced: the user's words live there;
3. temp and note are swapped atomically, and the swap undone if anything wrote to the note
   after step 1 (`bridge.vault.swap`, which has the steps and the fallback where the kernel or
   file system cannot swap).

New notes skip the per-file fsync; folders are fsynced once per batch.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
import time
import weakref
from collections.abc import Iterator
from pathlib import Path

from bridge.errors import NoteChangedError, NoteError
from bridge.stamps import digest, text_hash
from bridge.vault.etag import RECENT_NS, etag_of
from bridge.vault.etag import etag_settled as _etag_settled
from bridge.vault.guard import is_zotero_data_dir
from bridge.vault.keyindex import ZOTERO_KEY, KeyIndex, frontmatter_head
from bridge.vault.swap import changed, read_all, rename_noreplace, swap_in

__all__ = ["RECENT_NS", "SKIP_DIRS", "Vault", "etag_of", "etag_settled"]

SKIP_DIRS = {".obsidian", ".zotero-bridge", ".trash", ".git"}


def etag_settled(etag: str, now_ns: int | None = None) -> bool:
    """`bridge.vault.etag.etag_settled`, at this moment unless `now_ns` is given."""
    return _etag_settled(etag, now_ns if now_ns is not None else time.time_ns())


# `stat` relative to an open folder (POSIX; not Windows)
_DIR_FD = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


def _utf8(rel: str) -> bool:
    """Whether a file name is text (Obsidian makes no other). One that is not — bytes from
    elsewhere on Linux — cannot be recorded in the state DB, so the vault walk skips it."""
    if rel.isascii():
        return True
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Vault(KeyIndex):
    """File access confined to one vault folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)  # plain strings: etag() runs once per note per sync
        self._folders: dict[str, Path] = {}
        self._fds: dict[str, int] = {}  # folder → handle (`_folder`), closed with the Vault
        self._finalizer = weakref.finalize(self, _close_all, self._fds)
        self._dirty: set[str] = set()  # folders written to since the last `sync_dirs`
        KeyIndex.__init__(self)

    # --- paths ---------------------------------------------------------------------------

    def abs(self, rel: str) -> Path:
        """Absolute path of a vault-relative path; refuses anything that leaves the vault.

        Folders are resolved once per sync (a 10,000-note sync would otherwise resolve every
        path component 10,000 times); the note itself is checked when it is a link."""
        head, _, name = rel.rpartition("/")
        folder = self._folders.get(head)
        if folder is None:
            folder = _resolve(rel, self.root / head) if head else self.root
            self._check_inside(rel, folder)
            self._folders[head] = folder
        path = folder / name
        if os.path.islink(path):
            path = _resolve(rel, path)
            self._check_inside(rel, path)
        return path

    def _check_inside(self, rel: str, path: Path) -> None:
        if path != self.root and self.root not in path.parents:
            raise NoteError(
                rel,
                "this path leads outside the vault (a symlink?)",
                "the bridge never writes outside the vault; fix the link",
            )

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # --- reading -------------------------------------------------------------------------

    def etag(self, rel: str) -> str | None:
        try:
            stat = os.stat(f"{self._root}/{rel}", follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:  # a folder on the way is a link loop: no file there, as `etags`
            if exc.errno == errno.ELOOP:
                return None
            raise
        return etag_of(stat)

    def etag_or_none(self, rel: str) -> str | None:
        """`etag`, None also when the file cannot be reached now (a folder without search
        permission, a dropped mount): for notes the bridge only guesses about."""
        try:
            return self.etag(rel)
        except OSError:
            return None

    def etags(self, rels: list[str]) -> list[str | None]:
        """`etag` of many files, each `stat` made relative to its open folder (the kernel
        walks the vault's path once per folder, not once per note: ~20 % fewer `stat` costs)."""
        if not _DIR_FD:  # Windows
            return [self.etag(rel) for rel in rels]
        folders: dict[str, int | None] = {}
        result: list[str | None] = []
        try:
            for rel in rels:
                head, _, name = rel.rpartition("/")
                fd = folders.get(head, -1)
                if fd == -1:
                    try:
                        fd = os.open(f"{self._root}/{head}", os.O_RDONLY | os.O_DIRECTORY)
                    except OSError:
                        fd = None  # no such folder (or not one): every note in it is gone
                    folders[head] = fd
                if fd is None:
                    result.append(None)
                    continue
                try:
                    stat = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except (FileNotFoundError, NotADirectoryError):
                    result.append(None)
                    continue
                result.append(etag_of(stat))
        finally:
            for fd in folders.values():
                if fd is not None:
                    os.close(fd)
        return result

    def unchanged_since(self, rel: str, etag: str | None, content_hash: str | None) -> bool:
        """Whether the file is still the one the bridge last wrote or saw: the same etag and,
        when that etag is too recent to trust alone (`etag_settled`), the same content."""
        if etag is None or self.etag(rel) != etag:
            return False
        if etag_settled(etag):
            return True
        try:
            text = self.read(rel)
        except NoteError:
            return False
        return text_hash(text) == content_hash

    def read(self, rel: str) -> str:
        """The note's text. Only a regular file is read (a FIFO or device named `x.md` would
        block or never end); a link is followed only when it stays inside the vault."""
        if os.path.islink(f"{self._root}/{rel}"):
            self.abs(rel)  # refuses a link that leads outside
        try:
            fd = os.open(f"{self._root}/{rel}", os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
        except OSError as exc:
            raise NoteError(rel, f"cannot read the note ({exc.strerror or exc})") from exc
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise NoteError(rel, "this is not a regular file; it was left untouched")
            data = read_all(fd)
        except OSError as exc:
            raise NoteError(rel, f"cannot read the note ({exc.strerror or exc})") from exc
        finally:
            os.close(fd)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(rel, "the note is not UTF-8 text; it was left untouched") from exc

    def markdown_files(self) -> Iterator[str]:
        """Every note in the vault (vault-relative), skipping dot-folders like .obsidian."""
        root = self._root
        for dirpath, dirnames, filenames in os.walk(root):
            head = dirpath[len(root) + 1 :].replace(os.sep, "/")
            if head and is_zotero_data_dir(filenames):  # Zotero's own folder: never the vault's
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            prefix = f"{head}/" if head else ""
            for name in filenames:
                if name.endswith(".md") and not name.startswith(".") and _utf8(prefix + name):
                    yield prefix + name

    def stems(self) -> set[str]:
        return {Path(p).stem for p in self.markdown_files()}

    def _now_ns(self) -> int:
        return time.time_ns()

    def _read_head(self, rel: str) -> str | None:
        """The note's first bytes, to the end of its frontmatter if it has one (bounded);
        None when it cannot be read."""
        try:
            fd = os.open(f"{self._root}/{rel}", os.O_RDONLY | _O_NONBLOCK | _O_CLOEXEC)
        except OSError:
            return None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO named x.md would block
                os.close(fd)
                return None
            with open(fd, encoding="utf-8", errors="replace") as handle:
                head = handle.read(65536)
                # papers with hundreds of authors push zotero_key far down: read to the end
                # of the frontmatter (bounded); a note without one is not read on
                fronted = head.lstrip("\ufeff").startswith("---")
                while fronted and "\n---" not in head[3:] and len(head) < 4_000_000:
                    more = handle.read(262144)
                    if not more:
                        break
                    head += more
        except OSError:
            return None
        return head

    # --- writing -------------------------------------------------------------------------

    def _folder(self, head: str, *, create: bool) -> int:
        """A handle on the vault folder `head` ("" for the vault itself), opened one component
        at a time without following links, and kept for this Vault's life: a folder swapped
        for a link later cannot redirect a write made through it."""
        fd = self._fds.get(head)
        if fd is not None:
            if not head:
                if not _same_file(os.stat(self._root), os.fstat(fd)):
                    raise NoteError(
                        self._root,
                        "the vault folder was moved or replaced during the sync",
                        "nothing was written elsewhere; run the sync again",
                    )
                return fd
            if self._still_there(head, fd):
                return fd
            self._forget_folder(head)  # moved or swapped since: open it again, or refuse
        if not head:
            fd = os.open(self._root, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
            self._fds[""] = fd
            return fd
        parent_head, _, name = head.rpartition("/")
        if name in ("", ".", ".."):
            raise NoteError(head, "this folder name is not allowed in the vault")
        parent = self._folder(parent_head, create=create)
        flags = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
        try:
            fd = os.open(name, flags, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=parent)
            try:
                fd = os.open(name, flags, dir_fd=parent)
            except OSError as exc:
                raise _not_a_folder(head, exc) from exc
        except OSError as exc:
            raise _not_a_folder(head, exc) from exc
        self._fds[head] = fd
        return fd

    def _still_there(self, head: str, fd: int) -> bool:
        """The kept handle is still the folder at `head` in the vault (a folder moved out of
        the vault mid-sync, a link left in its place, must not take the writes with it)."""
        parent_head, _, name = head.rpartition("/")
        try:
            parent = self._folder(parent_head, create=False)
            there = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except OSError:
            return False
        return stat.S_ISDIR(there.st_mode) and _same_file(there, os.fstat(fd))

    def _forget_folder(self, head: str) -> None:
        for cached in [h for h in self._fds if h == head or h.startswith(head + "/")]:
            with contextlib.suppress(OSError):
                os.close(self._fds.pop(cached))

    def close(self) -> None:
        """Close the folder handles (also done when the Vault is collected)."""
        _close_all(self._fds)

    def create(self, rel: str, text: str) -> str:
        """Write a new note; never overwrites. Returns the new etag."""
        if not _DIR_FD:
            return self._create_by_path(rel, text)
        head, _, name = rel.rpartition("/")
        folder = self._folder(head, create=True)
        _writable_folder(rel, folder)
        tmp, etag = self._write_temp(folder, text.encode("utf-8", "surrogatepass"), fsync=False)
        try:
            os.link(tmp, name, src_dir_fd=folder, dst_dir_fd=folder, follow_symlinks=False)
        except FileExistsError as exc:
            raise NoteChangedError(
                rel, "a file with this name appeared during the sync", "run the sync again"
            ) from exc
        except OSError:  # file systems without hard links: rename, never over a file
            if not rename_noreplace(folder, tmp, name):
                raise NoteChangedError(
                    rel, "a file with this name appeared during the sync", "run the sync again"
                ) from None
            tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp, dir_fd=folder)
        self._dirty.add(head)
        return etag

    def replace(
        self, rel: str, text: str, expected_etag: str | None, expected_hash: str | None = None
    ) -> str:
        """Atomically replace a note, only if it is still the file the merge read, and never
        over a save that lands meanwhile (the module's docstring has the steps).

        The etag alone can miss a same-size save within one coarse mtime tick (FAT, SMB,
        cloud mounts), so the bytes are compared too."""
        if not _DIR_FD:
            return self._replace_by_path(rel, text, expected_etag, expected_hash)
        head, _, name = rel.rpartition("/")
        try:
            folder = self._folder(head, create=False)
            note = os.open(name, _READ_NOTE, dir_fd=folder)
        except FileNotFoundError as exc:
            raise changed(rel) from exc
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _link_error(rel) from exc
            raise
        try:
            before = self._check_unchanged(rel, folder, name, note, expected_etag, expected_hash)
            _writable_folder(rel, folder)
            held = os.fstat(note)
            tmp, etag = self._write_temp(
                folder, text.encode("utf-8", "surrogatepass"), fsync=True,
                mode=held.st_mode & 0o7777, owner=(held.st_uid, held.st_gid),
            )  # fmt: skip
            swap_in(rel, folder, tmp, name, note, before)
        finally:
            os.close(note)
        self._dirty.add(head)
        return etag

    def _check_unchanged(
        self,
        rel: str,
        folder: int,
        name: str,
        note: int,
        expected_etag: str | None,
        expected_hash: str | None,
    ) -> bytes:
        """The note's bytes, if it is still the file the merge read and may be written."""
        stat_now = os.fstat(note)
        if not stat.S_ISREG(stat_now.st_mode):
            raise NoteError(rel, "this is not a regular file; it was left untouched")
        if etag_of(stat_now) != expected_etag:
            raise changed(rel)
        before = read_all(note)
        if expected_hash is not None and digest(before) != expected_hash:
            raise changed(rel)
        # the user's read-only bit is a wish, also when we run as root (os.access says yes)
        mode = stat_now.st_mode
        if not mode & stat.S_IWUSR or not os.access(name, os.W_OK, dir_fd=folder):
            raise NoteError(
                rel,
                "the note is read-only; it was left untouched",
                "make it writable to receive Zotero's changes",
            )
        return before

    def _write_temp(
        self,
        folder: int,
        data: bytes,
        *,
        fsync: bool,
        mode: int | None = None,
        owner: tuple[int, int] | None = None,
    ) -> tuple[str, str]:
        """A hidden temp file in `folder` holding `data`; its name and its etag. `owner`:
        the replaced note's (a bridge run as root must not take the user's note from them:
        their editor could no longer save it)."""
        # short and independent of the note's name: a 250-byte name must stay writable
        tmp = f".zob-{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC
        fd = os.open(tmp, flags, mode if mode is not None else 0o644, dir_fd=folder)
        try:
            if mode is not None:
                os.fchmod(fd, mode)  # the umask must not take the user's bits away
            if owner is not None and owner != (os.geteuid(), os.getegid()):
                with contextlib.suppress(OSError):  # only root may give a file away
                    os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if fsync:
                os.fsync(fd)
            etag = etag_of(os.fstat(fd))
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
        os.close(fd)
        return tmp, etag

    def sync_dirs(self) -> None:
        """fsync every folder written to in this batch (makes the renames durable)."""
        for head in self._dirty:
            fd = self._fds.get(head)
            if fd is None:
                continue
            with contextlib.suppress(OSError):
                os.fsync(fd)
        self._dirty.clear()

    def write_file_bytes(self, rel: str, data: bytes) -> None:
        """Copy a binary file (annotation images) into the vault, atomically."""
        if not _DIR_FD:
            path = self.abs(rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp_path = path.parent / f".zob-{secrets.token_hex(6)}.tmp"
            tmp_path.write_bytes(data)
            os.replace(tmp_path, path)
            return
        head, _, name = rel.rpartition("/")
        folder = self._folder(head, create=True)
        tmp, _ = self._write_temp(folder, data, fsync=False)
        try:
            os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=folder)
            raise
        self._dirty.add(head)

    def remove_stale_temps(self) -> tuple[int, list[str]]:
        """Clear the hidden temp files a killed sync left (`.zob-xxxx.tmp`): how many were
        deleted, and where those that hold a note went.

        A write killed between its swap (or its rename aside) and its last step leaves the
        user's own note under such a name, so a temp that holds a note (frontmatter with a
        `zotero_key`) is never deleted: it is moved to `.zotero-bridge/recovered/`."""
        removed, recovered = 0, []
        for dirpath, dirnames, filenames in os.walk(self.root):
            if dirpath != self._root and is_zotero_data_dir(filenames):
                dirnames[:] = []
                continue
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                if not (name.startswith(".zob-") and name.endswith(".tmp")):
                    continue
                path = os.path.join(dirpath, name)
                rel = path[len(self._root) + 1 :]
                head = self._read_head(rel) or ""
                with contextlib.suppress(OSError):
                    if ZOTERO_KEY.search(frontmatter_head(head)):
                        recovered.append(self._recover(path, rel))
                    else:
                        os.unlink(path)
                        removed += 1
        return removed, recovered

    def _recover(self, path: str, rel: str) -> str:
        """Move a temp file holding a note into `.zotero-bridge/recovered/` (never a link)."""
        state_dir = os.path.join(self._root, ".zotero-bridge")
        if not stat.S_ISDIR(os.lstat(state_dir).st_mode):
            raise OSError(errno.ENOTDIR, "not a folder", state_dir)
        folder = os.path.join(state_dir, "recovered")
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, 0o700)
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            raise OSError(errno.ENOTDIR, "not a folder", folder)
        # not `.md`: a second note with the same zotero_key would be a duplicate in the vault
        kept = f"{time.strftime('%Y%m%d-%H%M%S')}-{rel.replace('/', '__')}.md.recovered"
        os.rename(path, os.path.join(folder, kept))
        return f".zotero-bridge/recovered/{kept}"

    # --- without folder handles (Windows) --------------------------------------------------

    def _create_by_path(self, rel: str, text: str) -> str:
        path = self.abs(rel)
        if not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.pop(rel.rpartition("/")[0], None)
            path = self.abs(rel)  # the folder may be a symlink created just now: check again
        tmp = self._write_temp_path(path, text)
        try:
            if path.exists():
                raise NoteChangedError(
                    rel, "a file with this name appeared during the sync", "run the sync again"
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return etag_of(os.stat(path))

    def _replace_by_path(
        self, rel: str, text: str, expected_etag: str | None, expected_hash: str | None
    ) -> str:
        path = self.abs(rel)
        if os.path.islink(self.root / rel):
            raise _link_error(rel)
        if self.etag(rel) != expected_etag:
            raise changed(rel)
        if expected_hash is not None and digest(path.read_bytes()) != expected_hash:
            raise changed(rel)
        if not os.stat(path).st_mode & stat.S_IWUSR:
            raise NoteError(
                rel,
                "the note is read-only; it was left untouched",
                "make it writable to receive Zotero's changes",
            )
        tmp = self._write_temp_path(path, text)
        try:
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return etag_of(os.stat(path))

    def _write_temp_path(self, path: Path, text: str) -> str:
        tmp = f"{path.parent}{os.sep}.zob-{secrets.token_hex(6)}.tmp"
        with open(tmp, "wb") as handle:
            handle.write(text.encode("utf-8", "surrogatepass"))
            handle.flush()
            os.fsync(handle.fileno())
        return tmp


_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_READ_NOTE = os.O_RDONLY | _O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _O_CLOEXEC


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _writable_folder(rel: str, folder: int) -> None:
    """The user's read-only bit on the folder is a wish, also when we run as root."""
    if not os.fstat(folder).st_mode & stat.S_IWUSR:
        raise NoteError(
            rel,
            "its folder is read-only; the note was left untouched",
            "make the folder writable to receive Zotero's changes",
        )


def _close_all(fds: dict[str, int]) -> None:
    for fd in fds.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    fds.clear()


def _resolve(rel: str, path: Path) -> Path:
    """`path` with its links resolved; a link loop is refused with a reason (Python raises
    RuntimeError for one before 3.13, OSError after), never raised out of a sync."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:
        loop = not isinstance(exc, OSError) or exc.errno == errno.ELOOP
        why = "leads back to itself (a link loop)" if loop else f"cannot be followed ({exc})"
        raise NoteError(
            rel, f"this path is a symbolic link that {why}", "replace the link with the note itself"
        ) from exc


def _link_error(rel: str) -> NoteError:
    return NoteError(
        rel,
        "the note is a symbolic link; it was left untouched",
        "replace the link with the note itself",
    )


def _not_a_folder(head: str, exc: OSError) -> NoteError:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return NoteError(
            head,
            "this folder is a symbolic link (or not a folder); the bridge never writes through"
            " links, which can lead outside the vault",
            "replace the link with a real folder inside the vault",
        )
    return NoteError(head, f"cannot open this folder ({exc.strerror or exc})")
