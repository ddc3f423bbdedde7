"""The planner: desired notes (from the snapshot) vs the state DB vs the vault → actions.

It only reads: nothing here writes a file or the state DB, so `zob sync --dry-run` is just
"plan and print", and the planner is tested against an in-memory vault.
"""

from __future__ import annotations

import os
import time
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Protocol

from bridge.actions import Action, ActionKind
from bridge.actions import NoteKind as NoteKind  # re-exported, as is Receipt: callers may
from bridge.actions import Receipt as Receipt  # import the action types from the planner
from bridge.citekeys import DEFAULT_PATTERN
from bridge.errors import NoteError, TripwireError
from bridge.lineage import Method, MethodGraph, item_edges
from bridge.model import Item, LibrarySnapshot
from bridge.stamps import text_hash
from bridge.state import NoteState, compress_text
from bridge.vault.fs import etag_settled
from bridge.vault.inflight import CUT_MID_LINE, in_flight, remedy, settles_at, settling
from bridge.vault.merge import StatusChange, merge_note, new_note_text
from bridge.vault.names import NameRegistry, method_stem, note_stem
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
    papers_folder: str
    renderer: Renderer
    force: bool = False
    now_ns: int = field(default_factory=time.time_ns)
    # a note the user changed less than this ago is merged once it is quiet (`inflight`)
    settle_ns: int = DEFAULT_SETTLE_NS
    # note id → its text as the bridge last wrote or saw it (`State.seen_text`), if kept
    seen: Callable[[str], str | None] | None = None
    # a command writing a note or two waits for one being saved (`when_quiet`); a sync does
    # not (it defers, then syncs again or leaves it to `zob watch`)
    wait_for_saves: bool = True
    # how new notes of items without a citation key are named (`bridge.citekeys`)
    citekey_pattern: str = DEFAULT_PATTERN

    def settled(self, etag: str) -> bool:
        """See `etag_settled`: recently touched files are checked by content."""
        return etag_settled(etag, self.now_ns)


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
    heads = getattr(snapshot.items, "heads", None)  # a stream's lighter pass (no children)
    paths, methods = _library_names(
        heads() if heads else snapshot.items, notes, vault, ctx, lazy=keys_unchanged
    )
    names = LinkNames(papers=_Stems(paths), methods=methods)

    def actions() -> Iterator[Action]:
        for item in snapshot.items:
            if on_item is not None:
                on_item(item)
            note = notes.get(item.key)
            if note is None and _nothing_new(item, paths, vault):
                continue
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
    live = [n for n in notes.values() if n.kind == "paper" and not n.zotero_deleted]
    if force or not live:
        return
    if snapshot.all_keys is not None:
        missing = sum(1 for n in live if n.note_id not in snapshot.all_keys)
        if len(snapshot.all_keys) == 0 or missing > len(live) / 2:
            raise TripwireError(
                f"the source returned {len(snapshot.all_keys)} items but the vault has"
                f" {len(live)} paper notes: {missing} would be marked deleted-in-zotero",
                "check --zotero-dir / the source settings; if the library really shrank,"
                " run again with --force",
            )


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
                methods.setdefault(name.casefold(), method_stem(name))
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
    """An item that gets no new note: one already in Zotero's trash (it has no path), or a
    standalone file without annotations. One whose note is on disk is planned as ever."""
    if item.key not in paths:
        return True
    bare_file = item.item_type == "attachment" and not item.annotations
    return bare_file and vault.etag(paths[item.key]) is None


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
    """Create, merge into, or leave alone one note (paper or method)."""
    note_id = desired.note_id
    if note is not None and note.user_deleted and not _came_back(desired, note, path, vault):
        return Action(
            ActionKind.UNCHANGED, note_id, note.path, reason="deleted by the user; not recreated"
        )
    etag = vault.etag(path)
    if etag is None and note is not None:
        moved = vault.find_zotero_key(note_id, note.etag) if desired.kind == "paper" else None
        if moved is None:
            return Action(ActionKind.USER_DELETED, note_id, path, state=note)
        path, etag = moved, vault.etag(moved)
    status = _status_change(trashed, note)
    if desired.extra_base.get("reading_hint") and not (note and note.base.get("reading_hint")):
        status = replace(status, hint_reading=True)
    if etag is None:
        return _create(desired, path, trashed)
    fast = (
        note is not None
        and note.etag == etag
        and note.render_hash == desired.render_hash
        and note.path == path
        and status == StatusChange()
        and (ctx.settled(etag) or _same_content(vault, path, note))
    )
    if fast:
        return Action(ActionKind.UNCHANGED, note_id, path, state=note)
    return _merge(note_id, path, etag, vault, desired, note, status, ctx)


def _came_back(desired: RenderedNote, note: NoteState, path: str, vault: VaultView) -> bool:
    """A note the user deleted may come back (undo, git checkout, a sync service)."""
    if vault.etag(path) is not None:
        return True
    return desired.kind == "paper" and vault.find_zotero_key(note.note_id) is not None


def _same_content(vault: VaultView, path: str, note: NoteState) -> bool:
    try:
        return note.content_hash is not None and text_hash(vault.read(path)) == note.content_hash
    except NoteError:
        return False


def _status_change(trashed: bool, note: NoteState | None) -> StatusChange:
    if trashed and (note is None or not note.zotero_deleted):
        return StatusChange(mark_deleted=True)
    if not trashed and note is not None and note.zotero_deleted:
        return StatusChange(restore_to=note.prev_status or '"to-read"')
    return StatusChange()


def _create(desired: RenderedNote, path: str, trashed: bool) -> Action:
    text = new_note_text(desired)
    properties = {**desired.properties, **desired.initial_properties}
    if trashed:
        result = merge_note(path, text, None, None, StatusChange(mark_deleted=True))
        text, properties = result.text, result.properties
    state = NoteState(
        desired.note_id, desired.kind, path, _base(desired), desired.render_hash, None,
        zotero_deleted=trashed, content_hash=text_hash(text),
    )  # fmt: skip
    return Action(
        ActionKind.CREATE,
        desired.note_id,
        path,
        text=text,
        state=state,
        deleted=trashed,
        properties=properties,
    )


def _merge(
    note_id: str,
    path: str,
    etag: str,
    vault: VaultView,
    desired: RenderedNote | None,
    note: NoteState | None,
    status: StatusChange,
    ctx: PlanContext,
) -> Action:
    try:
        text = vault.read(path)
    except NoteError as exc:
        return Action(ActionKind.SKIP, note_id, path, reason=exc.message)
    held = _being_saved(note_id, path, etag, text, vault, note, ctx)
    if held is not None:
        return held
    try:
        result = merge_note(path, text, desired, note.base if note else None, status)
    except NoteError as exc:
        return Action(ActionKind.SKIP, note_id, path, reason=exc.message)
    kind_of_note = desired.kind if desired is not None else (note.kind if note else "paper")
    state = NoteState(
        note_id, kind_of_note, path,
        _base(desired, note) if desired is not None else (note.base if note else {}),
        desired.render_hash if desired is not None else (note.render_hash if note else ""),
        etag,
        zotero_deleted=_zotero_deleted(status, note),
        prev_status=result.prev_status if status.mark_deleted else (
            note.prev_status if note and not status.restore_to else None),
        content_hash=text_hash(result.text),
    )  # fmt: skip
    kind = ActionKind.UPDATE if result.text != text else ActionKind.TOUCH
    seen_z = compress_text(text) if kind == ActionKind.TOUCH else None
    return Action(
        kind, note_id, path, text=result.text if kind == ActionKind.UPDATE else None,
        expected_etag=etag, expected_hash=text_hash(text), state=state, conflicts=result.conflicts,
        open_conflicts=result.open_conflicts, properties=result.properties,
        deleted=status.mark_deleted, seen_z=seen_z,
    )  # fmt: skip


def _being_saved(
    note_id: str,
    path: str,
    etag: str,
    text: str,
    vault: VaultView,
    note: NoteState | None,
    ctx: PlanContext,
) -> Action | None:
    """A `defer` (or `skip`) action when `text` must not be merged into now: the note is
    being saved, or was left cut short (`bridge.vault.inflight`). None: merge it."""
    if note is not None and note.content_hash == text_hash(text):
        return None  # as the bridge left it: no edit of the user's to misread
    after = vault.etag(path)
    if after != etag:  # it changed while it was read
        return _defer(note_id, path, "it changed while it was read", after or etag, ctx)
    last_size = _size(note.etag) if note is not None else None
    seen = ctx.seen
    why = in_flight(text, last_size, (lambda: seen(note_id)) if seen and note else None)
    if settling(etag, ctx.settle_ns, path):
        return _defer(note_id, path, why or "it was saved moments ago", etag, ctx)
    if why is None or why == CUT_MID_LINE:
        return None
    return Action(
        ActionKind.SKIP, note_id, path,
        reason=f"{path}: {why}, so it looks like a save that did not finish; it was left"
        f" alone. {remedy(why, note_id)}",
    )  # fmt: skip


def _defer(note_id: str, path: str, why: str, etag: str, ctx: PlanContext) -> Action:
    return Action(
        ActionKind.DEFER, note_id, path,
        reason=f"{path}: being saved ({why}); merged once it settles",
        settles_at=settles_at(etag, ctx.settle_ns),
    )  # fmt: skip


def _size(etag: str | None) -> int | None:
    try:
        return int(etag.split(";")[1]) if etag else None
    except (IndexError, ValueError):
        return None


def _zotero_deleted(status: StatusChange, note: NoteState | None) -> bool:
    if status.mark_deleted:
        return True
    if status.restore_to is not None:
        return False
    return bool(note and note.zotero_deleted)


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
        path = note.path
        etag = vault.etag(path)
        if etag is None:
            moved = vault.find_zotero_key(note.note_id, note.etag)
            if moved is None:
                actions.append(Action(ActionKind.USER_DELETED, note.note_id, path, state=note))
                continue
            path, etag = moved, vault.etag(moved)
        assert etag is not None
        actions.append(
            _merge(
                note.note_id, path, etag, vault, None, note, StatusChange(mark_deleted=True), ctx
            )
        )
    return actions


def _base(desired: RenderedNote, note: NoteState | None = None) -> dict | str:
    hint = note is not None and note.base.get("reading_hint")  # given once per note, ever
    if not desired.extra_base and not hint:
        return desired.core_json  # the same JSON the render hash was made from
    base = {"properties": desired.properties, "regions": desired.regions, **desired.extra_base}
    if hint:
        base["reading_hint"] = True
    return base


def plan_copies(desired: RenderedNote, vault: VaultView) -> list[Action]:
    """Annotation images to copy into the vault: missing there, or older than Zotero's."""
    actions = []
    for source, dest in desired.copies:
        try:
            src = os.stat(source)
        except OSError:
            continue
        etag = vault.etag(dest)
        if etag is not None:
            mtime_ns, size = (int(x) for x in etag.split(";")[:2])
            if size == src.st_size and mtime_ns >= src.st_mtime_ns:
                continue
        actions.append(Action(ActionKind.COPY, desired.note_id, dest, source_path=source))
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
        path = note.path if note else f"{methods_folder}/{method_stem(method.name)}.md"
        actions.append(plan_note(desired, note, path, vault, ctx))
    for note_id, note in sorted(notes.items()):
        if note.kind != "method" or note_id in seen or note.user_deleted:
            continue
        orphan = Method(PurePosixPath(note.path).stem)
        desired = replace(ctx.renderer.method(orphan, graph, depth), note_id=note_id)
        actions.append(plan_note(desired, note, note.path, vault, ctx))
    return actions
