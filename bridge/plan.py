"""Planning a sync: the pure planner (`bridge.planner`) fed from the vault and the clock.

For each note, the facts the planner asks for are gathered here — the note's etag, its text
when the decision needs it, the time then, a note carrying its key elsewhere — and handed to it
as data (`_decide`); the action it returns goes on to `apply`, which writes. Nothing here
writes a file or the state DB, so `zob sync --dry-run` is just "plan and print". `plan_iter`
reads, decides and yields one note at a time, so a 10,000-item sync never holds all notes.
"""

from __future__ import annotations

import os
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Protocol

from bridge import planner
from bridge.actions import Action, ActionKind
from bridge.actions import NoteKind as NoteKind  # re-exported, as is Receipt: callers may
from bridge.actions import Receipt as Receipt  # import the action types from the planner
from bridge.citekeys import DEFAULT_PATTERN
from bridge.errors import NoteError
from bridge.lineage import Method, MethodGraph, item_edges
from bridge.model import Item, LibrarySnapshot
from bridge.notestate import NoteState
from bridge.planner import BASE, BEFORE, FIND, FIRST_SEEN, READ, Look, Sighting
from bridge.vault.inflight import first_seen
from bridge.vault.names import NameRegistry, note_stem
from bridge.vault.render import LinkNames, RenderedNote, Renderer

DEFAULT_SETTLE_NS = 2_000_000_000


class VaultView(Protocol):
    """What the planner needs to know about the vault (disk or in-memory)."""

    def etag(self, rel: str) -> str | None: ...
    def read(self, rel: str) -> str: ...
    def stems(self) -> set[str]: ...
    def find_zotero_key(self, key: str, etag: str | None = None) -> str | None: ...


@dataclass
class PlanContext:
    """What planning a note needs beside the note; it is the planner's `Rules` too."""

    papers_folder: str
    renderer: Renderer
    force: bool = False
    # when planning began: an etag older than that (by `RECENT_NS`) is trusted without a read
    now_ns: int = field(default_factory=time.time_ns)
    # a note the user changed less than this ago is merged once it is quiet (`vault.settle`)
    settle_ns: int = DEFAULT_SETTLE_NS
    # note id → its text as the bridge last wrote or saw it (`State.seen_text`), if kept
    seen: Callable[[str], str | None] | None = None
    # a command writing a note or two waits for one being saved (`when_quiet`); a sync does
    # not (it defers, then syncs again or leaves it to `zob watch`)
    wait_for_saves: bool = True
    # how new notes of items without a citation key are named (`bridge.citekeys`)
    citekey_pattern: str = DEFAULT_PATTERN


def plan(
    snapshot: LibrarySnapshot, notes: dict[str, NoteState], vault: VaultView, ctx: PlanContext
) -> list[Action]:
    """Every action a sync would take, in a stable order."""
    return list(plan_iter(snapshot, notes, vault, ctx))


def plan_iter(
    snapshot: LibrarySnapshot,
    notes: Mapping[str, NoteState],
    vault: VaultView,
    ctx: PlanContext,
    on_item: Callable[[Item], None] | None = None,
    *,
    keys_unchanged: bool = False,
) -> Iterator[Action]:
    """`plan` one item at a time, so a sync can write each note and let its text go before
    rendering the next (a first sync would otherwise hold every new note's text at once).

    The checks and choices that concern the whole library (the tripwire, every new note's
    name) are made here, before the first action is yielded — so before anything is written.
    Each note is planned from the vault as it is when its turn comes; no note's plan depends
    on another note's file. The items are gone through twice (names, then notes), so a
    source may hand them over as a stream it reads again; `on_item` sees each item once.

    `keys_unchanged`: the caller knows the library holds exactly the item keys it held at the
    last (finished) sync, which passed the tripwire and marked every erased item: neither is
    looked at again, and `notes` (a `NoteIndex`) is only asked about the snapshot's items and
    the notes they link to."""
    if not keys_unchanged:
        _tripwire(snapshot, notes, ctx.force)
    paths, methods = _library_names(  # `heads`: the items' lighter pass (no children)
        snapshot.items.heads(), notes, vault, ctx, lazy=keys_unchanged
    )
    names = LinkNames(papers=_Stems(paths), methods=methods)

    def actions() -> Iterator[Action]:
        for item in snapshot.items:
            if on_item is not None:
                on_item(item)
            note = notes.get(item.key)
            if note is None and _nothing_new(item, paths, vault):
                continue  # `planner.nothing_new`
            yield from _plan_item(item, note, paths[item.key], vault, ctx, names)
            if note is not None and note.loader is not None:
                # its merge base was parsed for this plan: let it go (read again if asked);
                # else a template change holds every note's parsed base to the end of the plan
                note.base_raw = None
        if not keys_unchanged:
            yield from _plan_erased(snapshot, notes, vault, ctx)

    return actions()


def when_quiet(plan_once: Callable[[], list[Action]], rounds: int = 4) -> list[Action]:
    """`plan_once()`, planned again after waiting while it defers notes being saved (each
    wait until the last of them settles), at most `rounds` times: for commands that write a
    note or two (`zob new`, `zob queue`, `zob report`) and would rather wait than report."""
    actions = plan_once()
    for _ in range(rounds):
        waiting = [a.settles_at for a in actions if a.kind == ActionKind.DEFER]
        if not waiting:
            break
        time.sleep(min(max(max(waiting) - time.time(), 0.0) + 0.05, 60.0))
        actions = plan_once()
    return actions


def _tripwire(snapshot: LibrarySnapshot, notes: Mapping[str, NoteState], force: bool) -> None:
    """`planner.check_tripwire` on every note the state DB has (read here, not there)."""
    planner.check_tripwire(snapshot.all_keys, list(notes.values()), force)


def _library_names(
    items: Iterable[Item],
    notes: Mapping[str, NoteState],
    vault: VaultView,
    ctx: PlanContext,
    *,
    lazy: bool = False,
) -> tuple[Mapping[str, str], dict[str, str]]:
    """Every paper's note path (`_assign_paths`) and every method's link name, in one pass."""
    methods: dict[str, str] = {}
    renderer = ctx.renderer

    def noting_methods(items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            edges = item_edges(item, renderer.proposes_prefix, renderer.extends_prefix)
            for name in (*edges.proposes, *edges.extends):
                methods.setdefault(name.casefold(), renderer.method_link(name))
            yield item

    paths = _assign_paths(
        noting_methods(items), notes, vault, ctx.papers_folder, lazy=lazy,
        pattern=ctx.citekey_pattern,
    )  # fmt: skip
    return paths, methods


def _assign_paths(
    items: Iterable[Item],
    notes: Mapping[str, NoteState],
    vault: VaultView,
    folder: str,
    *,
    lazy: bool = False,
    pattern: str = DEFAULT_PATTERN,
) -> MutableMapping[str, str]:
    """Existing notes keep their path (a changed citation key never renames a note); new
    ones get a fresh name unique ignoring case, claimed in (date added, key) order so the
    `a`/`b` of clashing generated keys do not depend on the order a source lists items in.
    An item in Zotero's trash with no note gets no name (and no note, `_nothing_new`).

    The vault is walked for taken names only when a new note needs one (not on most syncs).
    `lazy`: existing notes' paths are looked up as they are asked for."""
    paths: MutableMapping[str, str]
    if lazy:
        paths = ChainMap({}, _PaperPaths(notes))
    else:
        paths = {key: note.path for key, note in notes.items() if note.kind == "paper"}
    wanted: list[tuple[str, str, str, bool]] = []  # (date added, key, stem, generated)
    for item in items:
        if item.key in paths:
            continue
        found = vault.find_zotero_key(item.key)
        if found:
            paths[item.key] = found
        elif not item.trashed:
            wanted.append((item.date_added, item.key, *note_stem(item, pattern)))
    if wanted:
        registry = NameRegistry(vault.stems() | {_stem(n.path) for n in notes.values()})
        for _, key, stem, generated in sorted(wanted):
            claimed = registry.claim_suffixed(stem) if generated else registry.claim(stem, key)
            paths[key] = f"{folder}/{claimed}.md"
    return paths


def _nothing_new(item: Item, paths: Mapping[str, str], vault: VaultView) -> bool:
    """`planner.nothing_new` for an item with no note in the state DB, its path (none for
    an item in Zotero's trash, `_assign_paths`) looked at on disk."""
    path = paths.get(item.key)
    return planner.nothing_new(item, path, vault.etag(path) if path is not None else None)


class _PaperPaths(Mapping[str, str]):
    """Zotero key → the path of its paper note, looked up in the notes when asked for."""

    def __init__(self, notes: Mapping[str, NoteState]) -> None:
        self.notes = notes

    def __getitem__(self, key: str) -> str:
        note = self.notes.get(key)
        if note is None or note.kind != "paper":
            raise KeyError(key)
        return note.path

    def __iter__(self) -> Iterator[str]:
        return (key for key, note in self.notes.items() if note.kind == "paper")

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _stem(path: str) -> str:
    return path.rsplit("/", 1)[-1].removesuffix(".md")


class _Stems(Mapping[str, str]):
    """Zotero key → note stem, computed on lookup from the key → path map (most keys are
    never looked up: only related items need a link)."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self.paths = paths

    def __getitem__(self, key: str) -> str:
        return _stem(self.paths[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _plan_item(
    item: Item,
    note: NoteState | None,
    path: str,
    vault: VaultView,
    ctx: PlanContext,
    names: LinkNames,
) -> list[Action]:
    try:
        desired = ctx.renderer.paper(item, names)
        action = plan_note(desired, note, path, vault, ctx, trashed=item.trashed)
    except NoteError as exc:
        return [Action(ActionKind.SKIP, item.key, path, reason=exc.message)]
    except (ValueError, UnicodeError, RecursionError) as exc:  # one odd item never stops a sync
        return [
            Action(
                ActionKind.SKIP,
                item.key,
                path,
                reason=f"{path}: could not render item {item.key} ({exc}); report it",
                retry=False,
            )
        ]
    no_note = action.kind in (ActionKind.USER_DELETED, ActionKind.SKIP)
    if no_note or (note is not None and note.user_deleted):
        return [action]
    return [action, *plan_copies(desired, vault)]


def plan_note(
    desired: RenderedNote,
    note: NoteState | None,
    path: str,
    vault: VaultView,
    ctx: PlanContext,
    *,
    trashed: bool = False,
) -> Action:
    """Create, merge into, or leave alone one note (paper or method): `planner.plan_note`."""
    return _decide(
        lambda seen: planner.plan_note(desired, note, seen, ctx, trashed=trashed),
        Sighting(path, vault.etag(path)), desired.note_id, note, vault, ctx,
    )  # fmt: skip


def _decide(
    planned: Callable[[Sighting], Action | Look],
    seen: Sighting,
    note_id: str,
    note: NoteState | None,
    vault: VaultView,
    ctx: PlanContext,
) -> Action:
    """Ask the planner, gathering each fact it asks for (`Look`) until it has decided."""
    while True:
        step = planned(seen)
        if isinstance(step, Action):
            return step
        if step.what in seen.looked:  # each fact is gathered once: a second ask is a bug
            raise AssertionError(f"the planner asked twice for {step}")
        seen = _look(step, seen, note_id, note, vault, ctx)


def _look(
    look: Look, seen: Sighting, note_id: str, note: NoteState | None, vault: VaultView,
    ctx: PlanContext,
) -> Sighting:  # fmt: skip
    """`seen` with the fact `look` asks for, read from the vault, the clock or the state DB."""
    if look.what == FIND:
        moved = vault.find_zotero_key(note_id, note.etag if note is not None else None)
        moved_etag = vault.etag(moved) if moved is not None else None
        return seen.having(FIND, moved_to=moved, moved_etag=moved_etag)
    if look.what == READ:
        try:
            text = vault.read(look.path)
        except NoteError as exc:
            return seen.having(READ, text=None, unreadable=exc.message)
        after = vault.etag(look.path)  # a save that began during the read moved it on
        return seen.having(READ, text=text, etag_after=after, now_ns=time.time_ns())
    if look.what == BEFORE:
        before = ctx.seen(note_id) if ctx.seen is not None else None
        return seen.having(BEFORE, before=before)
    if look.what == FIRST_SEEN:
        assert look.etag is not None
        return seen.having(FIRST_SEEN, first_seen_ns=first_seen(look.path, look.etag, seen.now_ns))
    if look.what == BASE:
        assert note is not None
        note.base  # noqa: B018 - fetched from the state DB now, kept on the note
        return seen.having(BASE)
    raise AssertionError(f"the planner asked for {look.what!r}")


def _plan_erased(
    snapshot: LibrarySnapshot, notes: Mapping[str, NoteState], vault: VaultView, ctx: PlanContext
) -> list[Action]:
    """Items erased from Zotero (gone from the key set): mark their notes, never delete."""
    if snapshot.all_keys is None:
        return []
    actions = []
    for note in notes.values():
        if note.kind != "paper" or note.note_id in snapshot.all_keys:
            continue
        if note.zotero_deleted or note.user_deleted:
            continue
        actions.append(
            _decide(
                lambda seen, note=note: planner.plan_erased(note, seen, ctx),
                Sighting(note.path, vault.etag(note.path)),
                note.note_id,
                note,
                vault,
                ctx,
            )
        )
    return actions


def plan_copies(desired: RenderedNote, vault: VaultView) -> list[Action]:
    """Annotation images to copy into the vault: missing there, or older than Zotero's."""
    actions = []
    for source, dest in desired.copies:
        try:
            src = os.stat(source)
        except OSError:
            continue
        action = planner.plan_copy(
            desired.note_id, source, dest, src.st_size, src.st_mtime_ns, vault.etag(dest)
        )
        if action is not None:
            actions.append(action)
    return actions


def plan_methods(
    graph: MethodGraph,
    notes: dict[str, NoteState],
    vault: VaultView,
    ctx: PlanContext,
    methods_folder: str,
    depth: int,
) -> list[Action]:
    """Method notes: one per method in the graph; a method nobody mentions any more keeps its
    note, with its managed lists emptied (the user's sections stay)."""
    actions: list[Action] = []
    seen: set[str] = set()
    for key in sorted(graph.methods):
        method = graph.methods[key]
        desired = ctx.renderer.method(method, graph, depth)
        seen.add(desired.note_id)
        note = notes.get(desired.note_id)
        path = note.path if note else method.path or f"{methods_folder}/{graph.stem(key)}.md"
        actions.append(plan_note(desired, note, path, vault, ctx))
    for note_id, note in sorted(notes.items()):
        if note.kind != "method" or note_id in seen or note.user_deleted:
            continue
        key, stem = note_id.removeprefix("method:"), PurePosixPath(note.path).stem
        orphan = Method(stem if stem.casefold() == key else key, stem=stem)
        desired = ctx.renderer.method(orphan, graph, depth)
        actions.append(plan_note(desired, note, note.path, vault, ctx))
    return actions
