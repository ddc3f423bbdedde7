"""Ask the index: ranked notes, each with the passages that matched and where they live.

Passages are ranked by BM25 (`SearchIndex.match`); a note ranks by its best passage plus a
fifth of its next two (a note that says it in several places beats one that says it once).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bridge.search import tokens
from bridge.search.store import Hit, SearchIndex
from bridge.vault import neutralise

SNIPPET = 280  # characters of a passage shown around its first matching word
_KEY = re.compile(r"^[23456789a-z]{8}$")


@dataclass(frozen=True)
class Filters:
    """What `zob search` may restrict results to (None / False: no restriction)."""

    methods: bool = False
    papers: bool = False
    reading_pass: str | None = None
    status: str | None = None
    tag: str | None = None
    since: str | None = None  # ISO date: papers added to Zotero (notes modified) since

    def sql(self) -> tuple[str, list] | None:
        """An SQL condition on `docs` and its parameters (None when nothing is filtered)."""
        conditions: list[str] = []
        params: list[Any] = []
        kinds = [k for k, on in (("method", self.methods), ("paper", self.papers)) if on]
        if kinds:
            conditions.append(f"kind IN ({','.join('?' * len(kinds))})")
            params.extend(kinds)
        if self.reading_pass is not None:
            conditions.append("pass = ?")
            params.append(str(self.reading_pass))
        if self.status:
            conditions.append("lower(status) = lower(?)")
            params.append(self.status)
        if self.tag:
            conditions.append(
                "EXISTS (SELECT 1 FROM json_each(docs.tags) WHERE lower(value) = lower(?)"
                " OR lower(value) LIKE lower(?) || '/%')"
            )
            params.extend([self.tag.lstrip("#")] * 2)
        if self.since:
            conditions.append("added >= ?")
            params.append(self.since)
        return (" AND ".join(conditions), params) if conditions else None


@dataclass
class NoteResult:
    doc: dict
    score: float
    passages: list[Hit]


def search(
    index: SearchIndex,
    query: str,
    filters: Filters | None = None,
    *,
    limit: int = 10,
    per_note: int = 3,
    embedder: Any = None,
) -> list[NoteResult]:
    """The `limit` best notes for `query`, each with up to `per_note` matching passages;
    with an `embedder` (the [semantic] extra), BM25's and the embedding's passages fused."""
    words = tokens.query_terms(query)
    condition = (filters or Filters()).sql()
    hits = index.match(words, max(200, limit * 40), condition)
    if embedder is not None:
        from bridge.search import semantic

        hits = semantic.fuse([hits, semantic.semantic_hits(index, embedder, query, condition)])
    return rank_notes(index, hits, limit, per_note)


def rank_notes(index: SearchIndex, hits: list[Hit], limit: int, per_note: int) -> list[NoteResult]:
    grouped: dict[int, list[Hit]] = {}
    for hit in hits:  # best first, as BM25 ranked them
        grouped.setdefault(hit.doc_id, []).append(hit)
    scored = sorted(
        grouped.items(),
        key=lambda item: -(item[1][0].score + 0.2 * sum(h.score for h in item[1][1:3])),
    )[:limit]
    docs = index.docs(doc_id for doc_id, _ in scored)
    shown = index.with_texts([hit for _, group in scored for hit in group[:per_note]])
    texts = {hit.passage_id: hit for hit in shown}
    scored = [(doc_id, [texts.get(h.passage_id, h) for h in group]) for doc_id, group in scored]
    return [
        NoteResult(docs[doc_id], round(group[0].score + 0.2 * sum(h.score for h in group[1:3]), 3),
                   group[:per_note])
        for doc_id, group in scored
        if doc_id in docs
    ]  # fmt: skip


def note_link(doc: dict, block: str | None = None) -> str:
    """An Obsidian link to the note (and to one of its blocks)."""
    target = doc["path"].removesuffix(".md")
    return f"[[{target}#^{block}]]" if block else f"[[{target}]]"


def pdf_link(doc: dict, hit: Hit) -> str | None:
    """`zotero://open-pdf` at the passage's page (and annotation, for a highlight)."""
    if not doc.get("pdf_key"):
        return None
    link = f"zotero://open-pdf/library/items/{doc['pdf_key']}"
    query = []
    if hit.page:
        query.append(f"page={hit.page}")
    if hit.kind == "highlight" and hit.block and _KEY.match(hit.block):
        query.append(f"annotation={hit.block.upper()}")
    return link + ("?" + "&".join(query) if query else "")


def snippet(text: str, words: list[str], width: int = SNIPPET) -> str:
    """The part of `text` around its first word of the query, about `width` characters."""
    if len(text) <= width:
        return text
    folded = text.casefold()
    found = [folded.find(w) for w in words if len(w) > 1]
    first = min((f for f in found if f >= 0), default=0)
    start = max(0, min(first - width // 3, len(text) - width))
    if start:
        space = text.find(" ", start)
        start = space + 1 if 0 <= space < start + 20 else start
    piece = text[start : start + width].strip()
    return ("… " if start else "") + piece + (" …" if start + width < len(text) else "")


def result_json(result: NoteResult, query: str) -> dict[str, Any]:
    """One note and its passages as `zob search --json` prints them."""
    doc, words = result.doc, tokens.query_terms(query)
    return {
        "note": doc["path"],
        "link": note_link(doc),
        "kind": doc["kind"],
        "title": doc["title"],
        "citekey": doc["citekey"] or None,
        "year": doc["year"],
        "pass": doc["pass"] or None,
        "status": doc["status"] or None,
        "score": result.score,
        "zotero": f"zotero://select/library/items/{doc['zotero_key']}"
        if doc["zotero_key"]
        else None,
        "passages": [passage_json(doc, hit, words) for hit in result.passages],
    }


def shown_text(hit: Hit) -> str:
    """A passage's text as printed: the PDF's full text is Zotero's third-party text, so it
    passes the neutraliser (nothing in it runs if pasted into a note, no control characters
    reach the terminal); the vault's own passages are the notes' text as they are."""
    return neutralise.inline(hit.text) if hit.kind == "fulltext" else hit.text


def passage_json(doc: dict, hit: Hit, words: list[str]) -> dict[str, Any]:
    return {
        "kind": hit.kind,
        "text": snippet(shown_text(hit), words),
        "section": hit.section or None,
        "block": hit.block,
        "link": note_link(doc, hit.block),
        "page": hit.page,
        "pdf": pdf_link(doc, hit) if hit.kind in ("highlight", "fulltext") else None,
        "score": round(hit.score, 3),
    }
