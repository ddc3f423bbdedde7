"""A canvas per lineage: `Lineage/<root method>.canvas` in Obsidian's open JSON Canvas format.

Each method is a file node of its note, inside a group (labelled with the method's name)
that also holds the file nodes of the papers proposing it; edges run from a method to the
methods extending it, labelled "extends". Methods stand in columns by the year they were
proposed, left to right; groups in a column are stacked, so no two nodes overlap.

A canvas is a managed file with its own hash (state meta `lineage_canvases`): it is
rewritten only when the lineage it shows changes and only while it is as the bridge wrote
it. A canvas the user moved nodes in, or deleted, is never touched again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bridge.actions import Action, ActionKind, Receipt
from bridge.errors import NoteError
from bridge.lineage import MethodGraph
from bridge.stamps import digest, text_hash
from bridge.state import State
from bridge.vault import neutralise
from bridge.vault.fs import Vault

if TYPE_CHECKING:
    from bridge.apply import SyncResult

CANVAS_FOLDER = "Lineage"
DELETED = "deleted"  # …or this: the user deleted it, it is not made again

METHOD_W, METHOD_H = 320, 100
PAPER_W, PAPER_H = 320, 80
PAD, LABEL = 20, 30  # inside a group: padding, and room for its label
COLUMN_GAP, ROW_GAP = 160, 60
GROUP_W = METHOD_W + 2 * PAD


def lineages(graph: MethodGraph) -> list[list[str]]:
    """The method graph's lineages: its connected parts with at least one extends edge,
    each in chronological order (the first is the part's root, its canvas's name)."""
    seen: set[str] = set()
    parts: list[list[str]] = []
    for key in sorted(graph.methods, key=graph.order):
        method = graph.methods[key]
        if key in seen or not (method.parents or method.children):
            continue
        part = graph.component(key)
        seen.update(part)
        roots = [k for k in part if not graph.methods[k].parents] or part
        parts.append(sorted(part, key=lambda k: (k not in roots, graph.order(k))))
    return parts


def canvas_path(graph: MethodGraph, part: list[str]) -> str:
    return f"{CANVAS_FOLDER}/{graph.stem(part[0])}.canvas"


def build_canvas(graph: MethodGraph, part: list[str], paths: dict[str, str]) -> dict[str, Any]:
    """The JSON Canvas of one lineage. `paths`: method key → its note's vault path (a
    method without one, its note deleted by the user, is a text node)."""
    columns: dict[int, list[str]] = {}
    years = sorted({graph.methods[k].year or 9999 for k in part})
    for key in sorted(part, key=graph.order):
        columns.setdefault(years.index(graph.methods[key].year or 9999), []).append(key)
    nodes: list[dict[str, Any]] = []
    for column, keys in sorted(columns.items()):
        x, y = column * (GROUP_W + COLUMN_GAP), 0
        for key in keys:
            y = _method_group(graph, key, paths.get(key), x, y, nodes) + ROW_GAP
    edges = []
    for key in part:
        for child in sorted(graph.methods[key].children, key=graph.order):
            edges.append({
                "id": _id("edge", key, child), "fromNode": _id("method", key), "fromSide": "right",
                "toNode": _id("method", child), "toSide": "left", "toEnd": "arrow",
                "label": "extends",
            })  # fmt: skip
    return {"nodes": nodes, "edges": edges}


def _method_group(
    graph: MethodGraph, key: str, path: str | None, x: int, y: int, nodes: list[dict[str, Any]]
) -> int:
    """The group of one method at (x, y): its note, then its papers. Returns its bottom."""
    method = graph.methods[key]
    papers = method.proposed_in
    height = LABEL + METHOD_H + len(papers) * (PAPER_H + PAD) + 2 * PAD
    nodes.append({
        "id": _id("group", key), "type": "group", "x": x, "y": y, "width": GROUP_W,
        "height": height, "label": neutralise.inline(method.name),
    })  # fmt: skip
    inner_x, inner_y = x + PAD, y + LABEL + PAD
    shown = (
        {"type": "file", "file": path}
        if path
        else {"type": "text", "text": neutralise.inline(method.name)}
    )
    nodes.append({
        "id": _id("method", key), **shown, "x": inner_x, "y": inner_y,
        "width": METHOD_W, "height": METHOD_H, "color": "6",
    })  # fmt: skip
    inner_y += METHOD_H + PAD
    for paper in papers:
        nodes.append({
            "id": _id("paper", key, paper.note_id), "type": "file", "file": paper.path,
            "x": inner_x, "y": inner_y, "width": PAPER_W, "height": PAPER_H,
        })  # fmt: skip
        inner_y += PAPER_H + PAD
    return y + height


def _id(*parts: str) -> str:
    """A stable node id (16 hex digits), so a regenerated canvas differs only where the
    lineage did."""
    return digest("\0".join(parts).encode("utf-8", "surrogatepass"))[:16]


def canvas_text(canvas: dict[str, Any]) -> str:
    return json.dumps(canvas, ensure_ascii=False, indent="\t") + "\n"


def write_canvases(
    graph: MethodGraph,
    vault: Vault,
    state: State,
    result: SyncResult,
    *,
    planned: Sequence[Action | Receipt] = (),
    methods_folder: str = "Methods",
) -> list[str]:
    """Write each lineage's canvas when it changed and the user has not edited it. Returns
    the paths written. `planned`: the method notes' actions (where each note will be)."""
    where = {a.note_id: a.path for a in planned if not _gone(a)}
    gone = {a.note_id for a in planned if _gone(a)}
    managed = _managed(state)
    written: list[str] = []
    for part in lineages(graph):
        paths = {
            k: where.get(f"method:{k}", f"{methods_folder}/{graph.stem(k)}.md")
            for k in part
            if f"method:{k}" not in gone
        }
        path = canvas_path(graph, part)
        text = canvas_text(build_canvas(graph, part, paths))
        try:
            if _write_one(vault, path, text, managed):
                written.append(path)
        except (NoteError, OSError) as exc:
            result.warnings.append(f"{path}: the lineage canvas was not written ({exc})")
    state.marks.canvases = managed  # written when it changed
    return written


def _gone(action: Action | Receipt) -> bool:
    """A method note the user deleted (it is not made again): shown as text, not a file."""
    return action.kind == ActionKind.USER_DELETED or (
        action.kind == ActionKind.UNCHANGED and action.reason.startswith("deleted by the user")
    )


def _managed(state: State) -> dict[str, str]:
    return state.marks.canvases


def _write_one(vault: Vault, path: str, text: str, managed: dict[str, str]) -> bool:
    """Create or update one canvas, only while it is the bridge's as it last wrote it."""
    known = managed.get(path)
    etag = vault.etag_or_none(path)
    if etag is None:
        if known is not None:  # written once, gone now: the user deleted it
            managed[path] = DELETED
            return False
        vault.create(path, text)
    else:
        if known in (None, DELETED):
            return False  # the user's own canvas (or one made again by hand): not ours
        current = vault.read(path)
        if text_hash(current) != known:
            return False  # the user edited it: it is theirs now
        if current == text:
            return False
        vault.replace(path, text, etag, known)
    managed[path] = text_hash(text)
    return True
