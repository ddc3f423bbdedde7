"""Finding the item a person means: citation key, Zotero key, or words of the title, the
authors' names and the year.

Keys must match exactly (case ignored). Other words match fuzzily with the standard library's
`difflib`: each query word scores its best match among the title's words and the authors'
names (1.0 for the same word or, from three letters on, a prefix; 0.9 for a part of a longer
word, which is how CJK titles match; else difflib's ratio, so `resdual` still finds
`residual`) — or 1.0 when it is the item's year — and an item's score is the mean over the
query's words. Items scoring at least `THRESHOLD` are candidates, ranked: the whole title
first, then by score, then titles that start with the query, then titles the query covers
more of (`deep` ranks *Deep Learning* above *Deep Residual Learning for Image Recognition*
and above *Batch Normalization: … Deep Network Training …*). The best one is the answer when
no other candidate comes within `MARGIN` of it, or when its whole title is the query.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bridge.model import Item

THRESHOLD = 0.75
MARGIN = 0.1
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Match:
    item: Item
    score: float
    by: str  # "citation key" | "Zotero key" | "title"
    rank: tuple[Any, ...] = field(default=(), compare=False)  # sort key, best first

    def describe(self) -> str:
        """`citekey — Title (year)`, as a choice list shows it."""
        label = self.item.citation_key or self.item.key
        year = f" ({self.item.year})" if self.item.year else ""
        return f"{label} — {self.item.title or 'Untitled'}{year}"


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def word_score(word: str, title_words: list[str]) -> float:
    """A short Latin word (`he`, `of`) counts only whole: inside or near other words it
    is noise (`he` in `the`), while two CJK characters are a word of their own."""
    best = 0.0
    short = len(word) < 3 and word.isascii()
    for other in title_words:
        if word == other or (len(word) >= 3 and other.startswith(word)):
            return 1.0
        if short:
            continue
        if len(word) >= 2 and word in other:
            best = max(best, 0.9)
        else:
            best = max(best, difflib.SequenceMatcher(None, word, other).ratio())
    return best


def item_match(query: str, item: Item) -> Match:
    """How well `query`'s words match `item`'s title, authors and year, with its rank."""
    query_words, title_words = words(query), words(item.title)
    names = words(" ".join(f"{c.first_name} {c.last_name}" for c in item.creators))
    year = str(item.year) if item.year else None
    scores = [
        1.0 if word == year else max(word_score(word, title_words), word_score(word, names))
        for word in query_words
    ]
    score = sum(scores) / len(scores) if scores else 0.0
    exact = bool(query_words) and query_words == title_words
    starts = bool(query_words) and title_words[: len(query_words)] == query_words
    covered = sum(1 for w in title_words if w in query_words) / max(len(title_words), 1)
    rank = (not exact, -score, not starts, -covered, item.title.casefold(), item.key)
    return Match(item, score, "title", rank)


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
    scored = [item_match(wanted, item) for item in items if not item.trashed and item.title]
    found = [m for m in scored if m.score >= THRESHOLD]
    return sorted(found, key=lambda m: m.rank)


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
