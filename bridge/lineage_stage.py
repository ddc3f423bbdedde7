"""The methods stage of a sync, lineage side: the method graph from the paper notes AND the
method notes, method notes planned, paper notes' Lineage regions made to show their own
properties, the lineage canvases, and problems said once.

`bridge/sync.py` calls `plan_lineage` once per rebuild; everything lineage-specific lives here
and in `lineage.py`, `lineage_notes.py`, `lineage_canvas.py`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from bridge.actions import Action, ActionKind
from bridge.config import Config
from bridge.errors import NoteError
from bridge.lineage import METHOD_SUFFIX, MethodGraph, MethodNoteInfo, PaperInfo, method_names
from bridge.lineage_notes import (
    MethodNotes,
    read_method_notes,
    remember_facts,
    remember_method_notes,
)  # fmt: skip
from bridge.plan import PlanContext, plan_methods, plan_note
from bridge.state import State
from bridge.vault.fs import Vault
from bridge.vault.inflight import frontmatter_complete
from bridge.vault.names import method_stem, sanitize
from bridge.vault.notefile import parse_note, region_texts
from bridge.vault.render import RenderedNote, link

if TYPE_CHECKING:
    from bridge.apply import SyncResult


def build_graph(
    config: Config, papers: list[PaperInfo], notes: list[MethodNoteInfo]
) -> MethodGraph:
    """The method graph with every method's note name (`Method.stem`)."""
    graph = MethodGraph.build(papers, notes, config.lineage_aliases)
    assign_stems(graph, papers, notes)
    return graph


def assign_stems(graph: MethodGraph, papers: list[PaperInfo], notes: list[MethodNoteInfo]) -> None:
    """A method's note name: its note's name as it is now (renamed notes included); a new
    note is named after the method, with ` (method)` when a paper note has that name — a
    paper note and a method note never share one, so `[[X]]` is never ambiguous."""
    paper_stems = {p.stem.casefold() for p in papers}
    # a note's own method first: a note named after what is now an alias keeps its name
    current = {n.key: n for n in notes if n.key in graph.methods}
    for note in notes:
        current.setdefault(graph.aliases.resolve(note.key).casefold(), note)
    for key, method in graph.methods.items():
        note = current.get(key)
        stem = note.stem if note else method_stem(method.name)
        if note is None and stem.casefold() in paper_stems:
            stem += METHOD_SUFFIX
        method.stem, method.path = stem, note.path if note else ""


def link_names(graph: MethodGraph) -> dict[str, str]:
    """Method name or alias (casefolded) → its note's name, where that differs from what
    the name alone gives (`method_stem`): what links to methods in paper notes must target."""
    names: dict[str, str] = {}
    for key, method in graph.methods.items():
        if graph.stem(key) != method_stem(method.name):
            names[key] = graph.stem(key)
    for alias, name in graph.aliases.items():
        method = graph.get(name)
        if method is not None and graph.stem(method.key) != method_stem(alias):
            names[alias] = graph.stem(method.key)
    return names


def method_links(state: State) -> dict[str, str]:
    return state.marks.method_links


def lineage_inputs(config: Config, state: State, vault: Vault) -> str:
    """What method notes are rendered from besides the papers' facts: the method notes' own
    facts and the configured aliases (part of the sync's lineage digest)."""
    notes = read_method_notes(vault, state, config.methods_folder, _settle_ns(config))
    remember_facts(state, notes)  # the next sync reads only the notes changed since
    aliases = sorted(config.lineage_aliases.items())
    return json.dumps([notes.digest(config.lineage_aliases), aliases])


def plan_lineage(
    config: Config,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    papers: list[PaperInfo],
    changed: set[str],
    result: SyncResult,
    *,
    write: bool,
) -> tuple[list[Action], MethodGraph]:
    """The method notes' actions, then the paper notes whose Lineage region is behind their
    own properties (`changed`: the paper notes written by this sync or edited). `write`
    (not a dry run): moved method notes are recorded where they are now, and the lineage
    canvases are written."""
    notes = read_method_notes(vault, state, config.methods_folder, _settle_ns(config))
    graph = build_graph(config, papers, notes.infos)
    say_once(state, result, notes.problems + graph.problems)
    if write:
        state.marks.lineage_problems = graph.problems
    known = _known_notes(state, notes, write=write)
    actions = plan_methods(graph, known, vault, ctx, config.methods_folder, config.mermaid_depth)
    _defer_saving(notes, actions, result)
    edges = _paper_edges(graph, papers)
    looked = _looked_at(state)
    fresh = {
        p.note_id: p
        for p in papers
        if p.note_id in changed or looked.get(p.note_id) != edges.get(p.note_id)
    }
    pending: set[str] = set()
    actions += paper_lineage_actions(graph, state, vault, ctx, fresh, pending)
    # a note being saved is looked at again (its edges are not recorded as checked)
    checked = {k: v for k, v in edges.items() if k not in pending}
    checked.update({k: looked[k] for k in pending if k in looked})
    if write and looked != checked:
        state.marks.paper_edges = checked
    links = link_names(graph)
    if write and links != method_links(state):
        state.marks.method_links = links
    ctx.renderer.method_links = links
    if write:
        from bridge.lineage_canvas import write_canvases  # noqa: PLC0415 - only when writing

        write_canvases(
            graph, vault, state, result, planned=actions, methods_folder=config.methods_folder
        )
    return actions, graph


def _settle_ns(config: Config) -> int:
    return int(config.settle_seconds * 1e9)


def _defer_saving(notes: MethodNotes, actions: list[Action], result: SyncResult) -> None:
    """A note made by hand being saved (its facts not read yet): waited for like any note
    being saved, so `zob sync` and the daemon read it once it settles."""
    planned = {a.path for a in actions}
    for path, when in sorted(notes.saving.items()):
        if path not in planned:
            result.defer(path, "", f"{path}: being saved; read once it settles", when)


def _paper_edges(graph: MethodGraph, papers: list[PaperInfo]) -> dict[str, str]:
    """Paper note id → the notes its edges link to, for the papers with any."""
    return {
        p.note_id: json.dumps(
            [[_stem(graph, n) for n in p.proposes], [_stem(graph, n) for n in p.extends]],
            ensure_ascii=False,
        )
        for p in papers
        if p.proposes or p.extends
    }


def _looked_at(state: State) -> dict[str, str]:
    """The edges each paper note's Lineage region was last checked against."""
    return state.marks.paper_edges


def _known_notes(state: State, notes: MethodNotes, *, write: bool) -> dict:
    """The method notes in the state DB, at the path each is found at now."""
    if write:
        with state.transaction():
            remember_method_notes(state, notes)
        return state.notes("method")
    known = state.notes("method")
    for note_id, path in notes.moved.items():
        if note_id in known:
            known[note_id] = replace(known[note_id], path=path)
    return known


def say_once(state: State, result: SyncResult, problems: list[str]) -> None:
    """Warn about the problems not warned about at the last rebuild: a problem that stays
    is listed by `zob status`, not repeated at every sync."""
    before = set(state.marks.lineage_problems)
    result.warnings.extend(p for p in dict.fromkeys(problems) if p not in before)


def open_problems(state: State) -> list[str]:
    """The lineage problems found at the last rebuild (for `zob status`)."""
    return state.marks.lineage_problems


# --- a paper note's Lineage region follows its own properties --------------------------------


def paper_lineage_actions(
    graph: MethodGraph,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    fresh: dict[str, PaperInfo],
    pending: set[str] | None = None,
) -> list[Action]:
    """Paper notes read again this sync (edited, or written) whose Lineage region does not
    show their own `proposes` / `extends` / `related` properties (the user added
    `extends: ['[[Kalman Filter]]']` in Obsidian): the region is brought in line, merged
    like any other change (a note being saved is waited for, never written over; its id
    goes into `pending`, as does a note that cannot be read now).

    The merge base keeps the region Zotero's edges give: the next render from Zotero then
    equals the base and leaves the note's region as it is (no write back and forth)."""
    actions: list[Action] = []
    for note_id, paper in sorted(fresh.items()):
        note = state.note(note_id)
        if note is None or note.kind != "paper" or note.user_deleted:
            continue
        regions = note.base.get("regions", {})
        if "lineage" not in regions:
            continue
        if not (paper.proposes or paper.extends) and not regions["lineage"].strip():
            continue  # nine papers in ten: no lineage, and none shown
        found = _wanted_region(graph, vault, ctx, paper)
        properties = note.base.get("properties", {})
        relinked = _relinked(graph, properties)
        if found is None:
            if pending is not None:
                pending.add(note_id)  # cannot be read now: being saved, broken
            continue
        if found[0] == found[1] and relinked == properties:
            continue  # as it should be
        desired = RenderedNote(
            note_id, "paper", properties=relinked, regions={**regions, "lineage": found[0]}
        )
        action = plan_note(desired, note, paper.path, vault, ctx)
        if action.kind in (ActionKind.UNCHANGED, ActionKind.USER_DELETED):
            continue
        if action.kind in (ActionKind.DEFER, ActionKind.SKIP) and pending is not None:
            pending.add(note_id)
        if action.state is not None:  # the merge base stays what Zotero renders
            zotero = RenderedNote(note_id, "paper", properties=relinked, regions=regions)
            base = {**note.base, "properties": relinked, "regions": regions}
            state_row = replace(action.state, base_raw=base, render_hash=zotero.render_hash)
            action = replace(action, state=state_row)
        actions.append(action)
    return actions


def _relinked(graph: MethodGraph, properties: dict) -> dict:
    """The bridge's `proposes` / `extends` links, to the method notes' names as they are
    now (as `Renderer.method_link` gives them at the paper's next render)."""
    relinked = dict(properties)
    for key in ("proposes", "extends"):
        if isinstance(properties.get(key), list):
            relinked[key] = [link(_stem(graph, n)) for n in method_names(properties[key])]
    return relinked


def _wanted_region(
    graph: MethodGraph, vault: Vault, ctx: PlanContext, paper: PaperInfo
) -> tuple[str, str] | None:
    """The Lineage region the note's properties call for, and the one it has (both "" when
    the user removed the region); None when the note cannot be read now (being saved,
    broken)."""
    try:
        text = vault.read(paper.path)
        if not frontmatter_complete(text):
            return None
        note = parse_note(paper.path, text)
        current = region_texts(paper.path, note.body).get("lineage")
    except NoteError:
        return None
    if current is None:
        return "", ""  # the user removed the region: respect that
    related = note.properties.get("related")
    links = {
        "proposes": [link(_stem(graph, n)) for n in paper.proposes],
        "extends": [link(_stem(graph, n)) for n in paper.extends],
        "related": [link(s) for n in method_names(related) if (s := sanitize(n))],
    }
    return ctx.renderer.paper_lineage(links), current


def _stem(graph: MethodGraph, name: str) -> str:
    method = graph.get(name)
    return graph.stem(method.key) if method is not None else method_stem(name)
