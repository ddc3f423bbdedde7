"""Read-only questions about a vault: a method's lineage, a note's backlinks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.config import Config, require_vault
from bridge.errors import BridgeError
from bridge.lineage import Method, MethodGraph, PaperInfo
from bridge.lineage_notes import read_method_notes
from bridge.lineage_stage import build_graph
from bridge.session import reading, state_exists
from bridge.vault.fs import Vault
from bridge.vault.links import LinkIndex
from bridge.vault.papers import collect_papers


class NotFoundError(BridgeError):
    pass


def method_graph(config: Config) -> MethodGraph:
    return graph_and_notes(config)[0]


def graph_and_notes(config: Config) -> tuple[MethodGraph, dict[str, str], Vault]:
    """The method graph, each method note's path by method key, and the vault."""
    vault_root = require_vault(config)
    if not state_exists(vault_root):
        raise NotFoundError(f"{vault_root} has not been synced yet", hint="run `zob sync` first")
    with reading(config, root=vault_root) as session:
        vault = session.vault
        papers, _ = collect_papers(vault, session.state, write_cache=False)
        notes = read_method_notes(vault, session.state, config.methods_folder)
    graph = build_graph(config, papers, notes.infos)
    paths = {k: f"{config.methods_folder}/{graph.stem(k)}.md" for k in graph.methods}
    for info in notes.infos:
        key = graph.aliases.resolve(info.key).casefold()
        paths[key] = info.path
    return graph, paths, vault


def _paper_json(paper: PaperInfo) -> dict[str, Any]:
    return {
        "note": paper.path,
        "title": paper.title,
        "year": paper.year,
        "venue": paper.venue,
        "pass": paper.reading_pass,
        "status": paper.status,
    }


def lineage(config: Config, name: str, depth: int) -> dict[str, Any]:
    """The method, who proposed it, what it extends (up), and what extends it (down)."""
    graph = method_graph(config)
    method = known_method(graph, name)
    return {
        "method": method.name,
        "proposed_in": [_paper_json(p) for p in method.proposed_in],
        "extends": _tree(graph, method.name, depth, up=True),
        "extended_by": [_paper_json(p) for p in method.extended_by],
        "descendants": _tree(graph, method.name, depth, up=False),
        "problems": [p for p in graph.problems if method.name in p],
    }


def known_method(graph: MethodGraph, name: str) -> Method:
    """The method NAME (or an alias of it, any case), or NotFoundError listing some."""
    method = graph.get(name)
    if method is None:
        known = ", ".join(sorted(m.name for m in graph.methods.values())[:20])
        raise NotFoundError(
            f"no method named {name!r} in this vault",
            hint=f"known methods: {known}"
            if known
            else "tag papers with proposes:X / extends:Y in Zotero, then sync",
        )
    return method


def _tree(
    graph: MethodGraph, name: str, depth: int, *, up: bool, seen: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    method = graph.methods[name.casefold()]
    if depth <= 0:
        return []
    nodes = []
    for key in sorted(method.parents if up else method.children):
        if key in seen or key == name.casefold():
            continue  # a cycle: stop rather than loop
        other = graph.methods[key]
        child, parent = (method, other) if up else (other, method)
        nodes.append(
            {
                "method": other.name,
                "note": graph.stem(key),
                "papers": [p.path for p in other.proposed_in],
                # the papers that made this step; none: declared in the method note
                "via": [p.path for p in child.steps.get(parent.key, [])],
                "children": _tree(
                    graph, other.name, depth - 1, up=up, seen=seen | {name.casefold()}
                ),
            }
        )
    return nodes


def backlinks(config: Config, note: str) -> list[str]:
    """Vault paths of every note linking to NOTE (a name like `NMS` or a vault path)."""
    vault_root = require_vault(config)
    index = LinkIndex.build(vault_root)
    target = _find_note(index, vault_root, note)
    return sorted(index.backlinks(target))


def _find_note(index: LinkIndex, vault_root: Path, note: str) -> str:
    candidate = note.removeprefix("./")
    if (vault_root / candidate).is_file():
        return Path(candidate).as_posix()
    if (vault_root / f"{candidate}.md").is_file():
        return f"{Path(candidate).as_posix()}.md"
    resolved = index.resolve(candidate.removesuffix(".md"), "")
    if resolved is None:
        raise NotFoundError(
            f"no note named {note!r} in {vault_root}",
            hint="give the note's name (as in [[Name]]) or its path in the vault",
        )
    return resolved
