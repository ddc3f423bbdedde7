"""Finding notes by the `zotero_key` in their frontmatter: moved and renamed notes.

Shared by the disk vault (`bridge.vault.fs.Vault`) and the in-memory one
(`bridge.vault.memory.MemoryVault`): both give the note heads, etags and the time; this reads
the keys out of them, so both find a moved note the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from bridge.vault.etag import etag_settled

ZOTERO_KEY = re.compile(r"^zotero_key:\s*['\"]?([23456789A-Z]{8})['\"]?\s*$", re.MULTILINE)


def frontmatter_head(head: str) -> str:
    """The frontmatter at the start of a note's first bytes ("" if none)."""
    if not head.lstrip("\ufeff").startswith("---"):
        return ""
    end = head.find("\n---", 3)
    return head[: end if end != -1 else len(head)]


class KeyIndex:
    """The key lookups of a vault; it needs `markdown_files`, `etag`, `etag_or_none`,
    `_read_head` (a note's first bytes to the end of its frontmatter, None when unreadable)
    and `_now_ns` (the time, to tell a settled etag) from the class it is mixed into."""

    def __init__(self) -> None:
        self._key_index: dict[str, list[str]] | None = None
        self._walked: set[str] = set()  # every note the key index's walk read
        self._keyless: dict[str, str | None] = {}  # those without a key → etag (`zotero_keys`)

    def markdown_files(self) -> Iterator[str]:
        raise NotImplementedError

    def etag(self, rel: str) -> str | None:
        raise NotImplementedError

    def etag_or_none(self, rel: str) -> str | None:
        raise NotImplementedError

    def _read_head(self, rel: str) -> str | None:
        raise NotImplementedError

    def _now_ns(self) -> int:
        raise NotImplementedError

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
            head = frontmatter_head(text) if text else ""
            match = ZOTERO_KEY.search(head) if head else None
            if match:
                found.setdefault(match.group(1), []).append(rel)
            elif keyless is not None and text == "":
                etag = self.etag_or_none(rel)
                if etag is not None:
                    settled = etag.split(";")[1] == "0" and etag_settled(etag, self._now_ns())
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
