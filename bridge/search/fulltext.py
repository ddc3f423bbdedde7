"""Zotero's full-text cache: the text it extracted from each PDF, read and never written.

Zotero keeps it in `<data dir>/storage/<attachment key>/.zotero-ft-cache` (plain UTF-8).
Text extracted by pdftotext separates pages with a form feed (`\\f`); where the file has one,
each passage carries its 1-based page, otherwise no page is claimed. The file is opened
read-only, non-blocking and only when it is a regular file, like the private copy of the
database (`bridge/sources/sqlite/copy.py`): nothing of Zotero's is ever opened for writing.
No link inside `storage/` is followed (neither an attachment's folder nor its cache): a link
planted there could otherwise put any file the user can read (a key, another app's data)
into the index, and from there into `zob ask`'s request to a model.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from bridge.search.passages import MAX_PASSAGE, Passage

CACHE_NAME = ".zotero-ft-cache"
MAX_BYTES = 32 << 20  # a cache larger than this is read up to here (Zotero caps it lower)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC | _NOFOLLOW
_FOLDER = os.O_RDONLY | _DIRECTORY | _CLOEXEC
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class CacheFile:
    key: str  # the attachment key
    storage: Path  # Zotero's storage folder
    etag: str

    @property
    def path(self) -> Path:
        return self.storage / self.key / CACHE_NAME


def cache_files(zotero_dir: Path, keys: list[str]) -> dict[str, CacheFile]:
    """The caches Zotero has for these attachment keys: one listing of `storage/`, then one
    `stat` (relative to that folder) per attachment that has a folder there."""
    storage = zotero_dir / "storage"
    try:
        fd = os.open(storage, _FOLDER)  # `storage` itself may be a link (moved to a disk)
    except OSError:
        return {}
    found: dict[str, CacheFile] = {}
    try:
        folders: set[str] | None = None
        if len(keys) > 64:  # many: one listing spares a failed stat per PDF-less key
            with os.scandir(fd) as entries:
                folders = {entry.name for entry in entries}
        for key in keys:
            if folders is not None and key not in folders:
                continue
            try:  # neither the key's folder nor its cache may be a link
                folder = os.stat(key, dir_fd=fd, follow_symlinks=False)
                st = os.stat(f"{key}/{CACHE_NAME}", dir_fd=fd, follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(folder.st_mode) and stat.S_ISREG(st.st_mode):
                etag = f"{st.st_mtime_ns};{st.st_size};{st.st_ino}"
                found[key] = CacheFile(key, storage, etag)
    finally:
        os.close(fd)
    return found


def read_cache(cache: CacheFile) -> str | None:
    """The cached text (None when it cannot be read now, or a link stands in the way): opened
    one component at a time below `storage/`, never following a link."""
    try:
        fd = _open_cache(cache)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        left = MAX_BYTES
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def _open_cache(cache: CacheFile) -> int:
    storage = os.open(cache.storage, _FOLDER)
    try:
        folder = os.open(cache.key, _FOLDER | _NOFOLLOW, dir_fd=storage)
    finally:
        os.close(storage)
    try:
        return os.open(CACHE_NAME, _READ, dir_fd=folder)
    finally:
        os.close(folder)


def page_passages(text: str) -> list[Passage]:
    """The text cut at pages (form feeds) and, within a page, into paragraph-sized passages."""
    pages = text.split("\f")
    numbered = len(pages) > 1
    out: list[Passage] = []
    for number, page in enumerate(pages, start=1):
        current = ""
        for paragraph in _PARAGRAPH.split(page):
            words = " ".join(paragraph.split())
            if not words:
                continue
            if current and len(current) + len(words) > MAX_PASSAGE:
                out.append(_passage(current, number if numbered else None))
                current = ""
            current = f"{current} {words}".strip()
            if len(current) > 2 * MAX_PASSAGE:
                current = _cut_long(current, out, number if numbered else None)
        if current:
            out.append(_passage(current, number if numbered else None))
    return out


def _cut_long(current: str, out: list[Passage], page: int | None) -> str:
    """Cut passages off a long run of words (single spaces between them) into `out`; the
    rest. By offset: slicing the rest off again at each cut made a page of text without a
    paragraph break quadratic (a 32 MB cache: a minute under the sync lock)."""
    pos = 0
    while len(current) - pos > 2 * MAX_PASSAGE:
        cut = current.rfind(" ", pos + MAX_PASSAGE, pos + 2 * MAX_PASSAGE)
        cut = cut if cut > 0 else pos + 2 * MAX_PASSAGE
        out.append(_passage(current[pos:cut], page))
        pos = cut + 1 if current[cut : cut + 1] == " " else cut
    return current[pos:]


def _passage(text: str, page: int | None) -> Passage:
    return Passage("fulltext", text, "", None, page)
