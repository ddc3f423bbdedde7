"""The lineage of one note, for the plugin's side panel (`GET /lineage?path=…`).

For a method note: the papers that propose and extend it, and its ancestors and descendants
up to `mermaid_depth` generations, each with its method note's path and the papers behind it.
For a paper note: the methods it proposes and extends, each with its note's path. Read from
the paper notes as they are now (the facts cache, re-read where a note changed), as
`zob lineage` does; nothing is written.
"""

from __future__ import annotations

from typing import Any

from bridge.config import Config, require_vault
from bridge.lineage import MethodGraph, PaperInfo
from bridge.session import reading, state_exists
from bridge.vault.papers import collect_papers

METHOD_PREFIX = "method:"


def _paper(paper: PaperInfo) -> dict[str, Any]:
    return {"path": paper.path, "title": paper.title, "year": paper.year,
            "pass": paper.reading_pass, "status": paper.status}  # fmt: skip


def _method(graph: MethodGraph, key: str, paths: dict[str, str], depth: int) -> dict[str, Any]:
    method = graph.methods[key]
    return {
        "name": method.name,
        "path": paths.get(key),
        "depth": depth,
        "proposed_in": [_paper(p) for p in method.proposed_in],
    }


def _generations(
    graph: MethodGraph, key: str, paths: dict[str, str], depth: int, *, up: bool
) -> list[dict[str, Any]]:
    """Breadth first, each method once, nearest generation first."""
    found: list[dict[str, Any]] = []
    frontier, seen = [key], {key}
    for generation in range(1, depth + 1):
        following: list[str] = []
        for node in frontier:
            method = graph.methods[node]
            for other in sorted(method.parents if up else method.children):
                if other in seen or other not in graph.methods:
                    continue
                seen.add(other)
                following.append(other)
                found.append(_method(graph, other, paths, generation))
        frontier = following
    return found


def note_lineage(config: Config, path: str) -> dict[str, Any]:
    vault_root = require_vault(config)
    if not state_exists(vault_root):
        return {"kind": "none", "path": path}
    with reading(config, root=vault_root) as session:
        state = session.state
        methods = state.live_notes("method")
        paths = {note_id[len(METHOD_PREFIX) :]: note_path for note_id, note_path, _, _ in methods}
        row = next(
            (
                (note_id, kind)
                for kind, rows in (("paper", state.live_notes("paper")), ("method", methods))
                for note_id, note_path, _, _ in rows
                if note_path == path
            ),
            None,
        )
        papers, _ = collect_papers(session.vault, state, write_cache=False)
    if row is None:
        return {"kind": "none", "path": path}
    graph = MethodGraph.build(papers)
    note_id, kind = row
    depth = config.mermaid_depth
    if kind == "method":
        key = note_id[len(METHOD_PREFIX) :]
        method = graph.methods.get(key)
        if method is None:
            return {"kind": "method", "path": path, "name": key, "proposed_in": [],
                    "extended_by": [], "ancestors": [], "descendants": []}  # fmt: skip
        return {
            "kind": "method", "path": path, "name": method.name,
            "proposed_in": [_paper(p) for p in method.proposed_in],
            "extended_by": [_paper(p) for p in method.extended_by],
            "ancestors": _generations(graph, key, paths, depth, up=True),
            "descendants": _generations(graph, key, paths, depth, up=False),
        }  # fmt: skip
    paper = next((p for p in papers if p.note_id == note_id), None)
    if paper is None:
        return {"kind": "paper", "path": path, "proposes": [], "extends": []}

    def named(names: tuple[str, ...]) -> list[dict[str, Any]]:
        return [
            _method(graph, n.casefold(), paths, 1)
            if n.casefold() in graph.methods
            else {"name": n, "path": None, "depth": 1, "proposed_in": []}
            for n in names
        ]

    return {"kind": "paper", "path": path, "title": paper.title,
            "proposes": named(paper.proposes), "extends": named(paper.extends)}  # fmt: skip
