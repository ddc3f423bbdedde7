"""The vault on disk: cheap etags, atomic writes, and never a byte outside the vault.

Writes go to a hidden temp file in the same folder, then `os.replace` (or `os.link` for a new
note, so a file that appeared meanwhile is never clobbered). Replacing a note fsyncs the temp
file first — the user's words live there; new notes skip it and the folder is fsynced once per
batch. Before replacing, the file's etag must still be the one seen at scan time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import stat
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from bridge.errors import NoteChangedError, NoteError
from bridge.state import text_hash

SKIP_DIRS = {".obsidian", ".zotero-bridge", ".trash", ".git"}
_ZOTERO_KEY = re.compile(r"^zotero_key:\s*['\"]?([23456789A-Z]{8})['\"]?\s*$", re.MULTILINE)


RECENT_NS = 2_000_000_000


def etag_settled(etag: str, now_ns: int | None = None) -> bool:
    """True when a file's mtime is old enough that its etag can be trusted alone.

    File systems stamp mtimes with a coarse clock (a few ms): two writes of the same size
    within one tick share an etag. Recently touched files are therefore checked by content.
    """
    try:
        mtime_ns = int(etag.split(";", 1)[0])
    except ValueError:
        return False
    return (now_ns if now_ns is not None else time.time_ns()) - mtime_ns > RECENT_NS


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


def _frontmatter(head: str) -> str:
    """The frontmatter at the start of a note's first bytes ("" if none)."""
    if not head.lstrip("\ufeff").startswith("---"):
        return ""
    end = head.find("\n---", 3)
    return head[: end if end != -1 else len(head)]


def etag_of(stat: os.stat_result) -> str:
    return f"{stat.st_mtime_ns};{stat.st_size};{stat.st_ino}"


class Vault:
    """File access confined to one vault folder."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)  # plain strings: etag() runs once per note per sync
        self._folders: dict[str, Path] = {}
        self._dirty_dirs: set[Path] = set()
        self._key_index: dict[str, list[str]] | None = None
        self._walked: set[str] = set()  # every note the key index's walk read
        self._keyless: dict[str, str | None] = {}  # those without a key → etag (`zotero_keys`)
        self._made_dirs: set[Path] = set()  # folders known to exist (checked once per sync)

    # --- paths ---------------------------------------------------------------------------

    def abs(self, rel: str) -> Path:
        """Absolute path of a vault-relative path; refuses anything that leaves the vault.

        Folders are resolved once per sync (a 10,000-note sync would otherwise resolve every
        path component 10,000 times); the note itself is checked when it is a link."""
        head, _, name = rel.rpartition("/")
        folder = self._folders.get(head)
        if folder is None:
            folder = (self.root / head).resolve() if head else self.root
            self._check_inside(rel, folder)
            self._folders[head] = folder
        path = folder / name
        if os.path.islink(path):
            path = path.resolve()
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
        path = self.abs(rel)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise NoteError(rel, f"cannot read the note ({exc.strerror or exc})") from exc
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(rel, "the note is not UTF-8 text; it was left untouched") from exc

    def markdown_files(self) -> Iterator[str]:
        """Every note in the vault (vault-relative), skipping dot-folders like .obsidian."""
        root = self._root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.startswith(".")]
            head = dirpath[len(root) + 1 :].replace(os.sep, "/")
            prefix = f"{head}/" if head else ""
            for name in filenames:
                if name.endswith(".md") and not name.startswith(".") and _utf8(prefix + name):
                    yield prefix + name

    def stems(self) -> set[str]:
        return {Path(p).stem for p in self.markdown_files()}

    def find_zotero_key(self, key: str, etag: str | None = None) -> str | None:
        """A note carrying `zotero_key: KEY` anywhere in the vault (moved/renamed notes)."""
        if self._key_index is None:
            files = self.markdown_files()
            self._key_index = self.zotero_keys(files, self._keyless, self._walked)
        return self.pick(self._key_index.get(key, []), etag)

    def walked(self) -> set[str]:
        """Every note `find_zotero_key`'s walk read (if it ran)."""
        return set(self._walked)

    def keyless(self) -> dict[str, str | None]:
        """The notes of that walk without a `zotero_key` → their etag (`zotero_keys`)."""
        return dict(self._keyless)

    def zotero_keys(
        self,
        rels: Iterable[str],
        keyless: dict[str, str | None] | None = None,
        walked: set[str] | None = None,
    ) -> dict[str, list[str]]:
        """The notes among `rels` that carry a `zotero_key`, by key (their heads are read).

        `keyless`, when given, receives the notes that were empty when read ("New note" in
        Obsidian: a missing note's text may be pasted in later) with their etag, taken after
        the read (a `stat` of every note would cost a walk ~10 %): "" when the note is not
        empty now or changed within the clock's resolution — it changed after the read, or
        may have: read it again. `walked` receives every name read."""
        found: dict[str, list[str]] = {}
        for rel in rels:
            text = self._read_head(rel)
            if walked is not None:
                walked.add(rel)
            head = _frontmatter(text) if text else ""
            match = _ZOTERO_KEY.search(head) if head else None
            if match:
                found.setdefault(match.group(1), []).append(rel)
            elif keyless is not None and text == "":
                etag = self.etag_or_none(rel)
                if etag is not None:
                    settled = etag.split(";")[1] == "0" and etag_settled(etag)
                    keyless[rel] = etag if settled else ""
        return found

    def pick(self, found: list[str], etag: str | None) -> str | None:
        """Of several notes with one key (the user duplicated a note, then moved the
        original), the one whose inode is `etag`'s — the note the bridge last wrote, as a
        rename keeps the inode — else the first found."""
        if not found:
            return None
        inode = etag.rsplit(";", 1)[-1] if etag else None
        if inode is not None and len(found) > 1:
            for rel in found:
                current = self.etag(rel)
                if current is not None and current.rsplit(";", 1)[-1] == inode:
                    return rel
        return found[0]

    def _read_head(self, rel: str) -> str | None:
        """The note's first bytes, to the end of its frontmatter if it has one (bounded);
        None when it cannot be read."""
        try:
            with open(self.root / rel, encoding="utf-8", errors="replace") as handle:
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

    def create(self, rel: str, text: str) -> str:
        """Write a new note; never overwrites. Returns the new etag."""
        path = self.abs(rel)
        if path.parent not in self._made_dirs and not path.parent.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            self._folders.pop(rel.rpartition("/")[0], None)
            path = self.abs(rel)  # the folder may be a symlink created just now: check again
        self._made_dirs.add(path.parent)
        tmp = self._write_temp(path, text, fsync=False)
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            raise NoteChangedError(
                rel, "a file with this name appeared during the sync", "run the sync again"
            ) from exc
        except OSError:
            if path.exists():
                raise NoteChangedError(
                    rel, "a file with this name appeared during the sync", "run the sync again"
                ) from None
            os.replace(tmp, path)  # file systems without hard links
            tmp = None
        finally:
            if tmp is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        self._dirty_dirs.add(path.parent)
        return etag_of(os.stat(path))

    def replace(
        self, rel: str, text: str, expected_etag: str | None, expected_hash: str | None = None
    ) -> str:
        """Atomically replace a note, only if it is still the file that was scanned.

        The etag alone can miss a same-size save within one coarse mtime tick (FAT, SMB,
        cloud mounts), so the content read at scan time is compared too."""
        path = self.abs(rel)
        if os.path.islink(self.root / rel):
            raise NoteError(
                rel,
                "the note is a symbolic link; it was left untouched",
                "replace the link with the note itself",
            )
        if self.etag(rel) != expected_etag:
            raise NoteChangedError(
                rel,
                "the note changed while the bridge was syncing it",
                "nothing was lost; run the sync again",
            )
        if expected_hash is not None and self._hash(rel) != expected_hash:
            raise NoteChangedError(
                rel,
                "the note changed while the bridge was syncing it",
                "nothing was lost; run the sync again",
            )
        mode = os.stat(path).st_mode & 0o7777
        # the user's read-only bit is a wish, also when we run as root (os.access says yes)
        if not mode & stat.S_IWUSR or not os.access(path, os.W_OK):
            raise NoteError(
                rel,
                "the note is read-only; it was left untouched",
                "make it writable to receive Zotero's changes",
            )
        tmp = self._write_temp(path, text, fsync=True, mode=mode)
        try:
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._dirty_dirs.add(path.parent)
        return etag_of(os.stat(path))

    def _hash(self, rel: str) -> str | None:
        try:
            # same digest as state.text_hash of the decoded text (UTF-8 round-trips)
            return hashlib.blake2b((self.root / rel).read_bytes(), digest_size=16).hexdigest()
        except OSError:
            return None

    def _write_temp(self, path: Path, text: str, *, fsync: bool, mode: int | None = None) -> str:
        # short and independent of the note's name: a 250-byte name must stay writable
        tmp = f"{path.parent}{os.sep}.zob-{secrets.token_hex(6)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode if mode is not None else 0o644)
        try:
            data = memoryview(text.encode("utf-8", "surrogatepass"))
            while data:
                data = data[os.write(fd, data) :]
            if fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        os.close(fd)
        return tmp

    def sync_dirs(self) -> None:
        """fsync every folder written to in this batch (makes the renames durable)."""
        for folder in self._dirty_dirs:
            try:
                fd = os.open(folder, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            except OSError:
                pass
            finally:
                os.close(fd)
        self._dirty_dirs.clear()

    def write_file_bytes(self, rel: str, data: bytes) -> None:
        """Copy a binary file (annotation images) into the vault, atomically."""
        path = self.abs(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f".zob-{secrets.token_hex(6)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, path)
        self._dirty_dirs.add(path.parent)

    def remove_stale_temps(self) -> int:
        """Delete temp files left by a crashed sync (hidden `.zob-xxxx.tmp`)."""
        removed = 0
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            for name in filenames:
                if name.startswith(".zob-") and name.endswith(".tmp"):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(dirpath, name))
                        removed += 1
        return removed
