"""Citation keys the bridge makes up for items that have none (for naming new notes).

A real library mixes items with a citation key (Zotero 7's `citationKey` field, Better
BibTeX's database, a `Citation Key:` line in Extra — read by the sources) and items without
one. So that every new note is named the same way, an item without a key gets one generated
in Better BibTeX's default style: the first author's last name in lower case, the first
significant word of the title, the year — `he` + `Deep` + `2016` → `heDeep2016` — folded to
ASCII (`Müller` → `muller`, `李` → `li`) by `anyascii`. The pattern is the config's
`[citekeys] pattern`; an empty pattern names notes `Author Year - Title` as before.

The generated key only names a new note (a clash gets `a`, `b`… as Better BibTeX does, see
`bridge.vault.names.NameRegistry.claim_suffixed`); it is never written as the `citekey`
property, which holds only a key Zotero knows, so nobody cites a key their library lacks.
"""

from __future__ import annotations

import re
import string

from anyascii import anyascii

from bridge.model import Item

DEFAULT_PATTERN = "{auth}{Title}{year}"
FIELDS = ("auth", "Auth", "title", "Title", "shorttitle", "year")

# Words Better BibTeX skips when it picks a title's "significant" words (its English list).
_SKIP_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "nor",
        "for",
        "so",
        "yet",
        "of",
        "on",
        "in",
        "at",
        "to",
        "by",
        "with",
        "from",
        "into",
        "onto",
        "upon",
        "about",
        "as",
        "via",
        "per",
        "vs",
        "versus",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "this",
        "that",
        "these",
        "those",
        "its",
        "their",
        "our",
        "some",
        "any",
    ]
)
_WORD = re.compile(r"[A-Za-z0-9]+")
_KEY_CHARS = re.compile(r"[A-Za-z0-9_-]+")
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def check_pattern(pattern: str) -> str | None:
    """What is wrong with `pattern` (None: nothing)."""
    try:
        names = [name for _, name, spec, conv in string.Formatter().parse(pattern) if name]
    except ValueError as exc:
        return f"citekeys.pattern {pattern!r} is not a pattern ({exc})"
    unknown = sorted(set(names) - set(FIELDS))
    if unknown:
        return (
            f"citekeys.pattern {pattern!r} uses unknown field(s) {', '.join(unknown)};"
            f" known: {', '.join('{' + f + '}' for f in FIELDS)}"
        )
    return None


def _ascii_words(text: str) -> list[str]:
    """The words of `text` in ASCII; each CJK character is a word of its own (`统计` →
    `Tong Ji`), as a name's or title's characters are not run together."""
    spaced = _CJK.sub(lambda m: f" {m.group()} ", text or "")
    return _WORD.findall(anyascii(spaced))


def _title_words(item: Item) -> list[str]:
    words = _ascii_words(item.title)
    significant = [w for w in words if w.lower() not in _SKIP_WORDS]
    return significant or words


def generated_key(item: Item, pattern: str = DEFAULT_PATTERN) -> str:
    """The key `pattern` gives `item` ("" when the item has neither creator nor title)."""
    if not pattern or not (item.creators or item.title.strip()):
        return ""
    last = item.creators[0].last_name if item.creators else ""
    names = _ascii_words(last)
    # a CJK name's family name is its first character: 李航 → li, not lihang
    auth = names[0] if names and _CJK.match(last.strip()) else "".join(names)
    words = _title_words(item)
    first = words[0] if words else ""
    values = {
        "auth": auth.lower(),
        "Auth": auth[:1].upper() + auth[1:].lower(),
        "title": first.lower(),
        "Title": first[:1].upper() + first[1:].lower(),
        "shorttitle": "".join(w[:1].upper() + w[1:].lower() for w in words[:3]),
        "year": str(item.year or ""),
    }
    try:
        key = pattern.format(**values)
    except (KeyError, ValueError, IndexError):
        return ""
    return "".join(_KEY_CHARS.findall(key))
