"""`zob related NOTE`: the papers closest to a note, and why.

The note's own passages (its text, highlights and full text) give its most telling terms:
frequent in the note, rare in the vault (tf × idf, idf from the index). Those terms are the
query; each note found comes with the terms it shares and the passage that matched best.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bridge.errors import BridgeError
from bridge.search import engine, tokens
from bridge.search.store import SearchIndex

QUERY_TERMS = 16  # the note's telling terms that make the query
CANDIDATES = 60  # its most frequent terms looked up for their idf


class NoteNotIndexedError(BridgeError):
    pass


@dataclass
class Related:
    doc: dict
    score: float
    shared: list[str]
    passage: dict[str, Any]


def _like(text: str) -> str:
    """`text` as a literal inside a LIKE pattern (`ESCAPE '\\'`): a `%` or `_` typed by the user
    is a character of the name, not a wildcard that matches any note."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def note_candidates(index: SearchIndex, note: str) -> list[dict]:
    """Every note `note` may name (its vault path, its name as in [[Name]] or its citekey),
    the likeliest first: the exact path, then papers, then shorter paths."""
    wanted = note.removeprefix("./").removesuffix(".md").strip("[]")
    doc = index.doc_by_path(f"{wanted}.md")
    if doc is not None:
        return [doc]
    rows = index.db.execute(
        "SELECT id FROM docs WHERE citekey = ? COLLATE NOCASE OR path = ? COLLATE NOCASE"
        " OR path LIKE ? ESCAPE '\\' ORDER BY kind != 'paper', length(path), path LIMIT 20",
        (wanted, f"{wanted}.md", f"%/{_like(wanted)}.md"),
    ).fetchall()
    docs = index.docs(row[0] for row in rows)
    return [docs[row[0]] for row in rows if row[0] in docs]


def find_note(index: SearchIndex, note: str) -> dict:
    """A note named by its vault path, its name (as in [[Name]]) or its citekey."""
    found = note_candidates(index, note)
    if not found:
        raise NoteNotIndexedError(
            f"no note named {note!r} in the search index",
            hint="give its name as in [[Name]], its path in the vault or its citekey "
            "(run `zob sync` if it is new)",
        )
    return found[0]


def telling_terms(index: SearchIndex, doc_id: int) -> list[str]:
    """The note's terms that best tell it apart from the rest of the vault."""
    counts: Counter[str] = Counter()
    for hit in index.passages_of(doc_id):
        counts.update(t for t in tokens.terms(hit.text) if t not in tokens.STOPWORDS)
    candidates = [t for t, _ in counts.most_common(CANDIDATES) if len(t) > 1 and not t.isdigit()]
    total = max(index.counts()["notes"], 1) * 8  # passages, roughly; only the order matters
    df = index.frequencies(candidates)
    weight = {t: counts[t] * math.log(1 + total / (1 + df[t])) for t in candidates}
    return sorted(weight, key=lambda t: -weight[t])[:QUERY_TERMS]


def related(
    index: SearchIndex, note: str, *, limit: int = 10, papers_only: bool = True
) -> tuple[dict, list[Related]]:
    """The note, and the `limit` notes closest to it (papers only, unless told otherwise)."""
    doc = find_note(index, note)
    words = telling_terms(index, doc["id"])
    condition = "id != ?" + (" AND kind = 'paper'" if papers_only else "")
    hits = index.match(words, 400, (condition, [doc["id"]]))
    found = []
    for result in engine.rank_notes(index, hits, limit, 1):
        best = result.passages[0]
        shared = _shared(words, index, result.doc["id"])
        found.append(
            Related(result.doc, result.score, shared,
                    engine.passage_json(result.doc, best, words))
        )  # fmt: skip
    return doc, found


def _shared(words: list[str], index: SearchIndex, doc_id: int) -> list[str]:
    """The query's terms found in the other note (a word and its inflections alike)."""
    theirs = {t for hit in index.passages_of(doc_id) for t in tokens.terms(hit.text)}
    stems = {t[:5] for t in theirs if len(t) > 5}
    return [w for w in words if w in theirs or (len(w) > 5 and w[:5] in stems)]


def related_json(doc: dict, found: list[Related]) -> dict[str, Any]:
    return {
        "note": doc["path"],
        "related": [
            {
                "note": r.doc["path"], "link": engine.note_link(r.doc), "title": r.doc["title"],
                "citekey": r.doc["citekey"] or None, "year": r.doc["year"], "score": r.score,
                "shared_terms": r.shared, "passage": r.passage,
            }
            for r in found
        ],
    }  # fmt: skip
