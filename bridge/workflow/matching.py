"""Finding the item a person means: citation key, Zotero key, or a few words of the title.

Keys must match exactly (case ignored). Title words match fuzzily with the standard library's
`difflib`: each query word scores its best match among the title's words (1.0 for the same word
or, from three letters on, a prefix; 0.9 for a part of a longer word, which is how CJK titles
match; else difflib's ratio, so `resdual` still finds `residual`), and a title's score is the
mean over the query's words. Titles scoring at least `THRESHOLD` are candidates; the best one
is the answer when no other candidate comes within `MARGIN` of it, or when its whole title is
the query.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bridge.model import Item

THRESHOLD = 0.75
MARGIN = 0.1
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Match:
    item: Item
    score: float
    by: str  # "citation key" | "Zotero key" | "title"

    def describe(self) -> str:
        """`citekey — Title (year)`, as a choice list shows it."""
        label = self.item.citation_key or self.item.key
        year = f" ({self.item.year})" if self.item.year else ""
        return f"{label} — {self.item.title or 'Untitled'}{year}"


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def word_score(word: str, title_words: list[str]) -> float:
    best = 0.0
    for other in title_words:
        if word == other or (len(word) >= 3 and other.startswith(word)):
            return 1.0
        if len(word) >= 2 and word in other:
            best = max(best, 0.9)
        else:
            best = max(best, difflib.SequenceMatcher(None, word, other).ratio())
    return best


def title_score(query: str, title: str) -> float:
    query_words, title_words = words(query), words(title)
    if not query_words or not title_words:
        return 0.0
    return sum(word_score(w, title_words) for w in query_words) / len(query_words)


def find_items(items: Iterable[Item], query: str) -> list[Match]:
    """Every plausible match, best first (one exact key match ends the search)."""
    items = list(items)
    wanted = query.strip()
    folded = wanted.casefold()
    by_citekey = [i for i in items if i.citation_key and i.citation_key.casefold() == folded]
    if by_citekey:
        return [Match(i, 1.0, "citation key") for i in by_citekey]
    by_key = [i for i in items if i.key == wanted.upper()]
    if by_key:
        return [Match(i, 1.0, "Zotero key") for i in by_key]
    scored = [
        Match(item, title_score(wanted, item.title), "title")
        for item in items
        if not item.trashed and item.title
    ]
    found = [m for m in scored if m.score >= THRESHOLD]
    return sorted(found, key=lambda m: (-m.score, m.item.title.casefold(), m.item.key))


def best_match(matches: list[Match], query: str) -> Match | None:
    """The one match meant, or None when several are equally plausible."""
    if not matches:
        return None
    if len(matches) == 1:
        return matches[0]
    whole = [m for m in matches if words(m.item.title) == words(query)]
    if len(whole) == 1:
        return whole[0]
    if matches[0].by == "title" and matches[0].score - matches[1].score >= MARGIN:
        return matches[0]
    return None
