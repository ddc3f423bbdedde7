"""Note file names: safe on every OS Obsidian runs on, and unique ignoring case.

Obsidian resolves `[[Name]]` by file name, case-insensitively, so two notes whose names differ
only in case would make links ambiguous; macOS and Windows file systems would even merge them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from bridge.citekeys import DEFAULT_PATTERN, generated_key
from bridge.model import Item

# Forbidden by the note contract: breaks links (# ^ [ ] | %) or file systems (* " \ / < > : ?).
# A backtick too: a name is link text in bodies, and backticks there would make a code span
# around it, which Dataview runs when it starts with `$=` (see bridge/vault/neutralise.py).
_FORBIDDEN = re.compile(r'[*"\\/<>:|?#^\[\]%`]')
_SPACES = re.compile(r"\s+")
_WINDOWS_RESERVED = {
    "con", "prn", "aux", "nul",
    *(f"com{i}" for i in range(1, 10)),
    *(f"lpt{i}" for i in range(1, 10)),
}  # fmt: skip
MAX_NAME_BYTES = 120
_SHORT_TITLE_WORDS = 8


def sanitize(text: str, max_bytes: int = MAX_NAME_BYTES) -> str:
    """Turn any text into a safe file stem (no extension); may return "" for hopeless input."""
    text = unicodedata.normalize("NFC", text)
    # Lone surrogates (from invalid UTF-8 in a database) cannot be written as a file name.
    text = text.encode("utf-8", "replace").decode("utf-8")
    # Control and format characters (C0/C1 controls, RTL overrides) make names lie or break.
    if not text.isprintable():  # printable text has none: skip the per-character walk
        text = "".join(" " if unicodedata.category(c) in ("Cc", "Cf") else c for c in text)
    text = _FORBIDDEN.sub(" ", text)
    text = _SPACES.sub(" ", text).strip()
    text = _truncate_bytes(text, max_bytes)
    text = text.lstrip(". ").rstrip(". ")
    if text.split(".")[0].lower() in _WINDOWS_RESERVED:
        text = f"_{text}"
    return text


def _truncate_bytes(text: str, max_bytes: int) -> str:
    """Cut at a character boundary so the UTF-8 name fits; prefer a word boundary."""
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    cut = encoded[:max_bytes].decode("utf-8", "ignore")
    word_cut = cut.rsplit(" ", 1)[0]
    return word_cut if len(word_cut) >= len(cut) // 2 else cut


def short_title(title: str) -> str:
    """The first words of a title, up to a colon: `Deep Residual Learning for Image Recognition`."""
    head = re.split(r"[:?!.]\s", title, maxsplit=1)[0]
    words = head.split()
    return " ".join(words[:_SHORT_TITLE_WORDS])


def paper_stem(item: Item) -> str:
    """The wanted (not yet de-duplicated) file stem of a paper note."""
    if item.citation_key:
        stem = sanitize(item.citation_key)
        if stem:
            return stem
    author = sanitize(item.creators[0].last_name, 40) if item.creators else ""
    head = " ".join(p for p in (author, str(item.year or "")) if p)
    title = sanitize(short_title(item.title)) or "Untitled"
    stem = sanitize(f"{head} - {title}" if head else title)
    return stem or f"Zotero {item.key}"


def note_stem(item: Item, pattern: str = DEFAULT_PATTERN) -> tuple[str, bool]:
    """The wanted stem of a new note, and whether it is a generated citation key (a clash
    then takes `a`, `b`… as Better BibTeX does, `NameRegistry.claim_suffixed`).

    Zotero's citation key first; a standalone file by its title or file name; an item with
    no title by its key (`Untitled KEY`); else the key `pattern` generates
    (`bridge.citekeys`), or `Author Year - Title` when the pattern is empty."""
    if item.citation_key:
        stem = sanitize(item.citation_key)
        if stem:
            return stem, False
    if item.item_type == "attachment":
        return file_stem(item), False
    if not item.title.strip():
        return f"Untitled {item.key}", False
    key = sanitize(generated_key(item, pattern))
    if key:
        return key, True
    return paper_stem(item), False


def file_stem(item: Item) -> str:
    """A standalone file's note: its title in Zotero, else its file name, without `.pdf`."""
    path = item.attachments[0].path if item.attachments else ""
    for text in (item.title, path.rsplit("/", 1)[-1].removeprefix("storage:")):
        stem = sanitize(re.sub(r"\.(pdf|epub|html?)$", "", text.strip(), flags=re.IGNORECASE))
        if stem:
            return stem
    return f"Zotero {item.key}"


def method_stem(name: str) -> str:
    """A method note's stem is the method's own name, made safe."""
    return sanitize(name) or "Unnamed method"


class NameRegistry:
    """Hands out file stems unique ignoring case within one folder-independent namespace.

    Obsidian resolves links by base name across the whole vault, so uniqueness is vault-wide.
    """

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._taken: set[str] = {_fold(t) for t in taken}

    def claim(self, stem: str, discriminator: str = "") -> str:
        """Return `stem`, or `stem (discriminator)`, or `stem 2`, … — the first one free."""
        candidates = [stem]
        if discriminator:
            candidates.append(f"{stem} ({discriminator})")
        for candidate in candidates:
            if _fold(candidate) not in self._taken:
                return self._take(candidate)
        n = 2
        while _fold(f"{stem} {n}") in self._taken:
            n += 1
        return self._take(f"{stem} {n}")

    def claim_suffixed(self, stem: str) -> str:
        """Return `stem`, or `stema`, `stemb`, … `stemz`, `stemaa`… — the first one free
        (Better BibTeX's way with clashing keys)."""
        n = 0
        while True:
            candidate = stem + _letters(n)
            if _fold(candidate) not in self._taken:
                return self._take(candidate)
            n += 1

    def add(self, stem: str) -> None:
        self._taken.add(_fold(stem))

    def __contains__(self, stem: str) -> bool:
        return _fold(stem) in self._taken

    def _take(self, stem: str) -> str:
        self._taken.add(_fold(stem))
        return stem


def _letters(n: int) -> str:
    """0 → "", 1 → "a", 26 → "z", 27 → "aa": the suffixes of `claim_suffixed`."""
    out = ""
    while n > 0:
        n, rest = divmod(n - 1, 26)
        out = chr(ord("a") + rest) + out
    return out


def _fold(stem: str) -> str:
    """Names equal for a file system: case-insensitive (macOS, Windows) and normalisation-
    insensitive (macOS stores NFD, Linux what it is given)."""
    return unicodedata.normalize("NFC", stem).casefold()
