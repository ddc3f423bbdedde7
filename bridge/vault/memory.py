"""The vault in memory: the disk `Vault`'s interface and contract, without a disk.

Like vdirsyncer's `storage/memory.py`: a dict of files stands in for the folder, and it keeps
the same promises as `bridge.vault.fs.Vault` — etags that change with every write, `create`
that never clobbers, `replace` only over the file the merge read (the same etag and bytes),
and the same refusals (a read-only note or folder, a link, a file that is not a regular one,
text that is not UTF-8, a path out of the vault). tests/test_vault_contract.py runs one set of
tests over both, so planner tests on this one (tests/test_planner_memory.py) say something
about the disk.

The user's side — an editor saving, a file manager moving or deleting — is `put`, `move`,
`remove`, `put_link`, `put_special` and `set_writable`. Each write stamps the file with
`clock()` (the real time unless given) and an etag `mtime_ns;size;inode`; a save in place
keeps the inode, as an editor's does, and a bridge write makes a new one, as the disk's swap.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from bridge.digests import digest, text_hash
from bridge.errors import NoteChangedError, NoteError
from bridge.vault.etag import etag_settled
from bridge.vault.guard import is_zotero_data_dir
from bridge.vault.keyindex import ZOTERO_KEY, KeyIndex, frontmatter_head
from bridge.vault.swap import changed

SKIP_DIRS = {".obsidian", ".zotero-bridge", ".trash", ".git"}
FILE, LINK, SPECIAL = "file", "link", "special"  # a special file: a FIFO, a device


@dataclass
class _Entry:
    data: bytes  # a link's: its target, vault-relative ("../x" leads out)
    mtime_ns: int
    inode: int
    kind: str = FILE
    writable: bool = True

    @property
    def etag(self) -> str:
        return f"{self.mtime_ns};{len(self.data)};{self.inode}"


class MemoryVault(KeyIndex):
    """A vault held in a dict: path → file, and the folders that exist (with their mode)."""

    def __init__(
        self, root: str = "/memory-vault", *, clock: Callable[[], int] | None = None
    ) -> None:
        KeyIndex.__init__(self)
        self.root = PurePosixPath(root)
        self._clock = clock or time.time_ns
        self._files: dict[str, _Entry] = {}
        self._folders: dict[str, bool] = {"": True}  # folder → writable
        self._inodes = itertools.count(1000)

    # --- the user's side ---------------------------------------------------------------------

    def put(self, rel: str, data: bytes | str, *, mtime_ns: int | None = None) -> str:
        """The user (an editor) writes the file: in place when it exists (same inode)."""
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        self._make_folders(rel.rpartition("/")[0])
        old = self._files.get(rel)
        inode = old.inode if old is not None and old.kind == FILE else next(self._inodes)
        writable = old.writable if old is not None else True
        when = self._clock() if mtime_ns is None else mtime_ns
        self._files[rel] = _Entry(raw, when, inode, FILE, writable)
        return self._files[rel].etag

    def put_link(self, rel: str, target: str) -> None:
        """A symbolic link at `rel` to the vault-relative `target` (a file or a folder)."""
        self._make_folders(rel.rpartition("/")[0])
        self._files[rel] = _Entry(target.encode(), self._clock(), next(self._inodes), LINK)

    def put_special(self, rel: str) -> None:
        """A file that is not a regular one (a FIFO named `x.md`)."""
        self._make_folders(rel.rpartition("/")[0])
        self._files[rel] = _Entry(b"", self._clock(), next(self._inodes), SPECIAL)

    def move(self, src: str, dst: str) -> None:
        """Rename a file (the inode goes with it)."""
        self._make_folders(dst.rpartition("/")[0])
        self._files[dst] = self._files.pop(src)

    def remove(self, rel: str) -> None:
        del self._files[rel]

    def set_writable(self, rel: str, writable: bool) -> None:
        """A note's (or, for a folder, the folder's) read-only bit."""
        if rel in self._files:
            self._files[rel].writable = writable
        else:
            self._folders[rel] = writable

    def data(self, rel: str) -> bytes:
        return self._files[rel].data

    # --- paths -------------------------------------------------------------------------------

    def abs(self, rel: str) -> PurePosixPath:
        """`rel` inside the vault; refuses anything that leaves it (`..`, a link out)."""
        self._inside(rel, rel)
        entry = self._files.get(rel)
        if entry is not None and entry.kind == LINK:
            self._inside(rel, entry.data.decode())
        return self.root / rel

    def rel(self, path: PurePosixPath) -> str:
        return path.relative_to(self.root).as_posix()

    def _inside(self, rel: str, path: str) -> None:
        if path.startswith("/") or ".." in path.split("/"):
            raise NoteError(
                rel,
                "this path leads outside the vault (a symlink?)",
                "the bridge never writes outside the vault; fix the link",
            )

    # --- reading -----------------------------------------------------------------------------

    def etag(self, rel: str) -> str | None:
        """The file's own etag (a link's, not its target's), reached through folder links."""
        at = self._through(rel)
        entry = self._files.get(at) if at is not None else None
        return entry.etag if entry is not None else None

    def _through(self, rel: str) -> str | None:
        """`rel` with the links among its folders followed, as the kernel does on the way to
        a file (not the last part); None when one leads out of the vault or loops."""
        *folders, name = rel.split("/")
        at = ""
        for part in folders:
            at = f"{at}/{part}" if at else part
            for _ in range(40):
                entry = self._files.get(at)
                if entry is None or entry.kind != LINK:
                    break
                at = entry.data.decode()
                if at.startswith("/") or ".." in at.split("/"):
                    return None
            else:
                return None
        return f"{at}/{name}" if at else name

    def etag_or_none(self, rel: str) -> str | None:
        return self.etag(rel)

    def etags(self, rels: list[str]) -> list[str | None]:
        return [self.etag(rel) for rel in rels]

    def unchanged_since(self, rel: str, etag: str | None, content_hash: str | None) -> bool:
        """As `Vault.unchanged_since`: the same etag and, when recent, the same content."""
        if etag is None or self.etag(rel) != etag:
            return False
        if etag_settled(etag, self._clock()):
            return True
        try:
            return text_hash(self.read(rel)) == content_hash
        except NoteError:
            return False

    def read(self, rel: str) -> str:
        """The note's text; links are followed (a link to a link too, as the kernel does)
        only inside the vault."""
        entry = self._followed(rel, refuse=True)
        if entry is None:
            raise NoteError(rel, "cannot read the note (No such file or directory)")
        if entry.kind != FILE:
            raise NoteError(rel, "this is not a regular file; it was left untouched")
        try:
            return entry.data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError(rel, "the note is not UTF-8 text; it was left untouched") from exc

    def markdown_files(self) -> Iterator[str]:
        """Every note (vault-relative), skipping dot-folders and Zotero's data folder."""
        for rel in list(self._files):
            head, _, name = rel.rpartition("/")
            if not name.endswith(".md") or name.startswith(".") or self._skipped(head):
                continue
            if self._files[rel].kind == LINK and self._is_folder(self._files[rel].data.decode()):
                continue
            yield rel

    def stems(self) -> set[str]:
        return {PurePosixPath(p).stem for p in self.markdown_files()}

    def _skipped(self, head: str, *, dot_folders: bool = True) -> bool:
        """Not walked: a folder in `SKIP_DIRS`, a dot-folder (`dot_folders`), Zotero's."""
        parts = head.split("/") if head else []
        if any(p in SKIP_DIRS or (dot_folders and p.startswith(".")) for p in parts):
            return True
        return any(
            is_zotero_data_dir(self._names_in("/".join(parts[: i + 1]))) for i in range(len(parts))
        )

    def _names_in(self, head: str) -> list[str]:
        """The names of the files right in the folder `head`."""
        prefix = f"{head}/"
        return [r[len(prefix) :] for r in self._files if r.rpartition("/")[0] == head]

    def _is_folder(self, head: str) -> bool:
        return head in self._folders or any(r.startswith(f"{head}/") for r in self._files)

    def _now_ns(self) -> int:
        return self._clock()

    def _followed(self, rel: str, *, refuse: bool = False) -> _Entry | None:
        """The file at `rel` with its links followed, as `open` does (at most 40 links, as
        Linux: more is a loop, refused as the disk vault refuses one); `refuse`: a link out
        of the vault or a loop raises NoteError, else it gives None."""
        at: str | None = rel
        for _ in range(40):
            at = self._through(at)
            entry = self._files.get(at) if at is not None else None
            if entry is None or entry.kind != LINK:
                return entry
            at = entry.data.decode()
            if refuse:
                self._inside(rel, at)
            elif at.startswith("/") or ".." in at.split("/"):
                return None
        if refuse:
            raise NoteError(
                rel,
                "this path is a symbolic link that leads back to itself (a link loop)",
                "replace the link with the note itself",
            )
        return None

    def _read_head(self, rel: str) -> str | None:
        entry = self._followed(rel)
        if entry is None or entry.kind != FILE:
            return None
        return entry.data.decode("utf-8", "replace")

    # --- writing -----------------------------------------------------------------------------

    def create(self, rel: str, text: str) -> str:
        """Write a new note; never overwrites. Returns the new etag."""
        head = rel.rpartition("/")[0]
        self._folder(head, create=True)
        if not self._folders[head]:
            raise _read_only_folder(rel)
        if rel in self._files or self._is_folder(rel):
            raise NoteChangedError(
                rel, "a file with this name appeared during the sync", "run the sync again"
            )
        return self._write(rel, text.encode("utf-8", "surrogatepass"), writable=True)

    def replace(
        self, rel: str, text: str, expected_etag: str | None, expected_hash: str | None = None
    ) -> str:
        """Replace a note only if it is still the file the merge read (etag and bytes)."""
        head = rel.rpartition("/")[0]
        try:
            self._folder(head, create=False)
        except FileNotFoundError as exc:
            raise changed(rel) from exc
        entry = self._files.get(rel)
        if entry is None:
            raise changed(rel)
        if entry.kind == LINK:
            raise NoteError(
                rel,
                "the note is a symbolic link; it was left untouched",
                "replace the link with the note itself",
            )
        if entry.kind != FILE:
            raise NoteError(rel, "this is not a regular file; it was left untouched")
        if entry.etag != expected_etag:
            raise changed(rel)
        if expected_hash is not None and digest(entry.data) != expected_hash:
            raise changed(rel)
        if not entry.writable:
            raise NoteError(
                rel,
                "the note is read-only; it was left untouched",
                "make it writable to receive Zotero's changes",
            )
        if not self._folders[head]:
            raise _read_only_folder(rel)
        return self._write(rel, text.encode("utf-8", "surrogatepass"), writable=True)

    def write_file_bytes(self, rel: str, data: bytes) -> None:
        """Copy a binary file (annotation images) into the vault, atomically."""
        self._folder(rel.rpartition("/")[0], create=True)
        self._write(rel, data, writable=True)

    def sync_dirs(self) -> None:
        """Nothing to make durable in memory."""

    def close(self) -> None:
        """Nothing to close."""

    def remove_stale_temps(self) -> tuple[int, list[str]]:
        """As `Vault.remove_stale_temps`: temps holding a note go to `.zotero-bridge/recovered`."""
        removed, recovered = 0, []
        for rel in list(self._files):
            head, _, name = rel.rpartition("/")
            if not (name.startswith(".zob-") and name.endswith(".tmp")):
                continue
            if self._skipped(head, dot_folders=False):
                continue
            if ZOTERO_KEY.search(frontmatter_head(self._read_head(rel) or "")):
                kept = f"{time.strftime('%Y%m%d-%H%M%S')}-{rel.replace('/', '__')}.md.recovered"
                self.move(rel, f".zotero-bridge/recovered/{kept}")
                recovered.append(f".zotero-bridge/recovered/{kept}")
            else:
                self.remove(rel)
                removed += 1
        return removed, recovered

    def _write(self, rel: str, data: bytes, *, writable: bool) -> str:
        """The bridge's write: a new file (new inode) in the name's place, atomically."""
        self._files[rel] = _Entry(data, self._clock(), next(self._inodes), FILE, writable)
        return self._files[rel].etag

    def _folder(self, head: str, *, create: bool) -> None:
        """Check (and make, with `create`) each folder of `head`, never through a link or a
        file in a folder's place; FileNotFoundError when it is missing and not made."""
        parts = head.split("/") if head else []
        for i, name in enumerate(parts):
            folder = "/".join(parts[: i + 1])
            if name in ("", ".", ".."):
                raise NoteError(head, "this folder name is not allowed in the vault")
            if folder in self._files:
                raise NoteError(
                    head,
                    "this folder is a symbolic link (or not a folder); the bridge never writes"
                    " through links, which can lead outside the vault",
                    "replace the link with a real folder inside the vault",
                )
            if folder not in self._folders:
                if not create:
                    raise FileNotFoundError(folder)
                self._folders[folder] = True

    def _make_folders(self, head: str) -> None:
        parts = head.split("/") if head else []
        for i in range(len(parts)):
            self._folders.setdefault("/".join(parts[: i + 1]), True)


def _read_only_folder(rel: str) -> NoteError:
    return NoteError(
        rel,
        "its folder is read-only; the note was left untouched",
        "make the folder writable to receive Zotero's changes",
    )
