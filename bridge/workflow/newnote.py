"""`zob new`: one paper's note on demand, or a new method note from the method template.

A paper note is made by the normal planner, given a snapshot holding only that item (and no
key set, so nothing else can be judged erased): the note is created — or refreshed when it
exists — exactly as a sync would, filters or not. The item is then *pinned* in the state DB,
so later syncs keep it up to date even when it lies outside `[filters]`. A note the user had
deleted is recreated: asking for it by name is asking for it back.

A method note is rendered by `Renderer.method` (the same template a sync uses) and recorded
with the base a sync would render for it, so later syncs merge into it: `--extends X` lands in
the `extends` property and region as the user's own addition, and stays.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from bridge.actions import ActionKind
from bridge.apply import SyncResult, apply
from bridge.config import Config, require_vault
from bridge.errors import BridgeError, ConfigError
from bridge.lineage import Method, MethodGraph
from bridge.lineage_notes import read_method_notes
from bridge.lineage_stage import build_graph, plan_lineage
from bridge.model import Item
from bridge.plan import plan, when_quiet
from bridge.session import Session, writing
from bridge.sources import Source
from bridge.stamps import iso, text_hash
from bridge.state import NoteState
from bridge.sync import open_source
from bridge.vault.fs import Vault
from bridge.vault.merge import new_note_text
from bridge.vault.names import method_stem
from bridge.vault.papers import collect_papers
from bridge.workflow.hooks import update_reading_workflow
from bridge.workflow.matching import Match, best_match, find_items
from bridge.workflow.progress import annotation_rows

Chooser = Callable[[list[Match]], Match | None]
MAX_CHOICES = 10


class NoMatchError(BridgeError):
    """Nothing in the library matches the query."""


class AmbiguousQueryError(BridgeError):
    """Several items match equally well; `candidates` lists them, best first."""

    def __init__(self, query: str, candidates: list[Match]) -> None:
        self.candidates = candidates
        listing = "\n".join(f"  {m.describe()}" for m in candidates[:MAX_CHOICES])
        more = len(candidates) - MAX_CHOICES
        tail = f"\n  … and {more} more" if more > 0 else ""
        super().__init__(
            f"{query!r} matches {len(candidates)} items:\n{listing}{tail}",
            "give the citation key or more title words, or pass --first to take the best",
        )


@dataclass
class NewNote:
    path: str  # vault-relative
    action: str  # create | update | touch | unchanged | exists | skip
    note_id: str
    uri: str
    match: Match | None = None
    result: SyncResult = field(default_factory=SyncResult)


def obsidian_uri(vault_root: Path, path: str) -> str:
    """`obsidian://open?vault=…&file=…`: the vault folder's name, the path without `.md`,
    both percent-encoded as encodeURIComponent does (spaces %20, `/` %2F, UTF-8)."""
    file = path[:-3] if path.endswith(".md") else path
    return f"obsidian://open?vault={quote(vault_root.name, safe='')}&file={quote(file, safe='')}"


def choose_item(
    matches: list[Match], query: str, *, first: bool = False, choose: Chooser | None = None
) -> Match:
    """The one item meant: the clear best, `--first`'s pick, or the person's choice."""
    if not matches:
        raise NoMatchError(
            f"nothing in the library matches {query!r}",
            "try a citation key, a Zotero item key, or other words of the title",
        )
    picked = matches[0] if first else best_match(matches, query)
    if picked is None and choose is not None:
        picked = choose(matches[:MAX_CHOICES])
    if picked is None:
        raise AmbiguousQueryError(query, matches)
    return picked


def new_paper_note(
    config: Config,
    query: str,
    *,
    first: bool = False,
    choose: Chooser | None = None,
    source: Source | None = None,
    now: datetime | None = None,
) -> NewNote:
    """Create or refresh the note of the item QUERY names; pin the item into later syncs.

    Zotero is read before the sync lock is taken; the vault and the state DB after."""
    require_vault(config)  # its message first: no source is opened for a missing vault
    source = source or open_source(config)
    snapshot = source.read(since=None)
    try:
        found = find_items(snapshot.items, query)
    finally:
        snapshot.close()
    match = choose_item(found, query, first=first, choose=choose)
    key = match.item.key
    focused = replace(snapshot, items=(match.item,), all_keys=None)
    result = SyncResult(warnings=list(snapshot.warnings))
    with writing(config) as session:
        state, vault = session.state, session.vault
        notes = state.notes()
        _forget_if_gone(notes, key, vault)
        # no sweep of stale temp files here: outside the sync lock, a `.zob-*.tmp` may be the
        # user's own note mid-swap (`Vault.replace`); syncs sweep them under the lock
        actions = when_quiet(lambda: plan(focused, notes, vault, session.plan_context))
        if not actions:  # the planner makes nothing new for it (`planner.nothing_new`)
            raise _no_new_note(match.item)
        apply(actions, vault, state, result)
        with state.transaction():
            state.pin(key, iso(now))
        _refresh_methods(session, result)
        result.actions = actions + result.actions
        update_reading_workflow(session, result, annotation_rows(focused.items), now=now)
    action = actions[0]
    return NewNote(action.path, action.kind, key, obsidian_uri(session.vault_root, action.path),
                   match, result)  # fmt: skip


def _no_new_note(item: Item) -> ConfigError:
    if item.trashed:
        return ConfigError(
            f"item {item.key} is in Zotero's trash: it gets no new note",
            "restore it in Zotero (Trash → Restore to Library), then run this again",
        )
    return ConfigError(
        f"item {item.key} is a standalone file with no highlights: it gets no note yet",
        "highlight or annotate something in it in Zotero, then run this again",
    )


def _forget_if_gone(notes: dict[str, NoteState], key: str, vault: Vault) -> None:
    """A note deleted by the user (now or earlier) is made again: drop what blocks that."""
    note = notes.get(key)
    if note is None:
        return
    if note.user_deleted or (vault.etag(note.path) is None and not vault.find_zotero_key(key)):
        del notes[key]


def _refresh_methods(session: Session, result: SyncResult) -> None:
    """The new paper may propose or extend methods: method notes follow, as after a sync."""
    config, state, vault = session.config, session.state, session.vault
    papers, problems = collect_papers(vault, state, write_cache=True)
    result.warnings.extend(problems)
    actions, _ = plan_lineage(
        config, state, vault, session.plan_context, papers, set(), result, write=True
    )
    apply(actions, vault, state, result)
    result.actions = actions


# --- method notes ----------------------------------------------------------------------------


def new_method_note(
    config: Config, name: str, extends: Iterable[str] = (), *, now: datetime | None = None
) -> NewNote:
    """Create `Methods/NAME.md` from the method template (never overwrites a note)."""
    name = " ".join(name.split())
    parents = [" ".join(p.split()) for p in extends if p.strip()]
    parents = [p for p in dict.fromkeys(parents) if p.casefold() != name.casefold()]
    if not name or not method_stem(name) or method_stem(name) == "Unnamed method":
        raise ConfigError(f"{name!r} cannot be a method name", "give the method's name")
    note_id = f"method:{name.casefold()}"
    result = SyncResult()
    with writing(config) as session:
        state, vault, renderer = session.state, session.vault, session.renderer
        known = state.notes().get(note_id)
        path = known.path if known else f"{config.methods_folder}/{method_stem(name)}.md"
        uri = obsidian_uri(session.vault_root, path)
        if vault.etag(path) is not None:
            return NewNote(path, "exists", note_id, uri, result=result)
        papers, _ = collect_papers(vault, state, write_cache=False)
        notes = read_method_notes(vault, state, config.methods_folder)
        graph = build_graph(config, papers, notes.infos)
        depth = config.mermaid_depth
        # the merge base: exactly what `plan_methods` will render for this note at a sync
        in_graph = graph.get(name)
        base = renderer.method(in_graph or Method(Path(path).stem), graph, depth)
        wanted = _with_parents(graph, name, parents)
        desired = renderer.method(wanted.methods[name.casefold()], wanted, depth)
        text = new_note_text(desired)
        etag = vault.create(path, text)
        vault.sync_dirs()
        note = NoteState(
            note_id, "method", path, {"properties": base.properties, "regions": base.regions},
            base.render_hash, etag, content_hash=text_hash(text),
        )  # fmt: skip
        with state.transaction():
            state.put_note(note)
            state.add_note_events([(note_id, "method", path, ActionKind.CREATE, iso(now))])
        result.created = 1
        result.warnings += [
            f"no method named {p!r} is known yet: [[{method_stem(p)}]] stays unresolved until"
            " a paper proposes it or you create it (`zob new --method`)"
            for p in parents
            if graph.get(p) is None and state.notes().get(f"method:{p.casefold()}") is None
        ]
        # the methods it extends show it now, in their lists, diagrams and canvases
        _refresh_methods(session, result)
    return NewNote(path, ActionKind.CREATE, note_id, uri, result=result)


def _with_parents(graph: MethodGraph, name: str, parents: list[str]) -> MethodGraph:
    """A copy of `graph` in which NAME exists and extends `parents`."""
    methods = dict(graph.methods)
    key = name.casefold()
    node = methods.get(key) or Method(name)
    methods[key] = replace(node, parents=set(node.parents) | {p.casefold() for p in parents})
    for parent in parents:
        other = methods.get(parent.casefold()) or Method(parent)
        methods[parent.casefold()] = replace(other, children=set(other.children) | {key})
    return MethodGraph(methods=methods, problems=list(graph.problems))
