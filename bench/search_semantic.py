"""The [semantic] extra, measured: recall@5 on the labelled query set of tests/test_search.py
(the sample library's vault plus a user's own notes) for BM25 alone, the embedding alone and
the two fused by reciprocal rank; and how many passages per second the model embeds here.

    pip install 'zotero-obsidian-bridge[semantic]'
    python bench/search_semantic.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]


def demo_vault(root: Path) -> Path:
    from bridge.config import Config
    from bridge.sync import sync
    from tests.test_search import USER_NOTES

    vault = root / "vault"
    vault.mkdir()
    sync(Config(vault=vault, source="sample"))
    for rel, text in USER_NOTES.items():
        (vault / rel).parent.mkdir(exist_ok=True)
        (vault / rel).write_text(text, encoding="utf-8")
    return vault


def recall(index, embedder, mode: str) -> tuple[float, list]:  # noqa: ANN001
    from bridge.search import semantic
    from bridge.search.engine import rank_notes
    from bridge.search.tokens import query_terms
    from tests.test_search import LABELLED

    found = wanted = 0
    missed = []
    for query, expected in LABELLED:
        lexical = index.match(query_terms(query), 400)
        meaning = semantic.semantic_hits(index, embedder, query, None) if mode != "bm25" else []
        hits = {"bm25": lexical, "semantic": meaning,
                "fused": semantic.fuse([lexical, meaning])}[mode]  # fmt: skip
        top = [r.doc["path"] for r in rank_notes(index, hits, 5, 1)]
        found += sum(note in top for note in expected)
        wanted += len(expected)
        missed += [(query, note) for note in expected if note not in top]
    return found / wanted, missed


def rate(embedder, texts: list[str]) -> float:  # noqa: ANN001
    started = time.perf_counter()
    embedder.encode(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from search_library import Words

    from bridge.search import semantic
    from bridge.search.indexer import refresh
    from bridge.search.store import SearchIndex

    if not semantic.available():
        raise SystemExit("the [semantic] extra is not installed")
    result: dict = {"torch_threads": None}
    with tempfile.TemporaryDirectory() as tmp:
        vault = demo_vault(Path(tmp))
        started = time.perf_counter()
        embedder = semantic.Embedder()
        result["model_load_s"] = time.perf_counter() - started
        import torch

        result["torch_threads"] = torch.get_num_threads()
        with SearchIndex(vault) as index:
            refresh(index, None)
            started = time.perf_counter()
            count = semantic.ensure_vectors(index, embedder)
            result["vault_passages"] = count
            result["vault_passages_per_s"] = count / (time.perf_counter() - started)
            for mode in ("bm25", "semantic", "fused"):
                result[f"recall@5_{mode}"], result[f"missed_{mode}"] = recall(index, embedder, mode)
    import random

    words = Words(random.Random(5))
    for name, sentences in (("highlight", 1), ("paragraph", 5), ("pdf_passage", 12)):
        texts = [words.paragraph(sentences) for _ in range(256)]
        result[f"{name}_chars"] = sum(map(len, texts)) // len(texts)
        result[f"{name}_per_s"] = rate(embedder, texts)
    result["load_avg"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result, indent=2, ensure_ascii=False))
        return
    for key, value in result.items():
        print(f"{key:24s} {value:.3f}" if isinstance(value, float) else f"{key:24s} {value}")


if __name__ == "__main__":
    main()
