"""The planner: what to do with one note, decided from facts it is given.

In: what Zotero wants the note to contain (`RenderedNote`), what the state DB says the bridge
last left there (`NoteState`), and what was seen of the note on disk and on the clock (a
`Sighting`). Out: the `Action` for the note — or, while a fact is missing, a `Look` naming the
one fact it needs next: a note carrying its `zotero_key` elsewhere (`FIND`), the note's text
with its etag just after the read and the time then (`READ`), the text the bridge last wrote
or saw of it (`BEFORE`), when a file with an mtime ahead of the clock was first seen
(`FIRST_SEEN`), or the merge base the state DB keeps for it (`BASE`). The driver
(`bridge.plan`) gathers that fact and asks again, so a note is read only when the decision
needs its text, and the same facts always give the same action.

Nothing here reads a file, the clock or the state DB, or imports a module that does
(tests/test_planner_pure.py walks the whole import tree): every rule is a function of its
arguments, tested on the in-memory vault (`bridge.vault.memory`) as on the disk. The rules for
a note being saved are `bridge.vault.settle`; the merge itself is `bridge.vault.merge`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Protocol

from bridge.actions import Action, ActionKind
from bridge.digests import text_hash
from bridge.errors import NoteError, TripwireError
from bridge.model import Item
from bridge.notestate import NoteState, compress_text
from bridge.vault.etag import etag_settled
from bridge.vault.merge import StatusChange, merge_note, new_note_text
from bridge.vault.rendered import RenderedNote
from bridge.vault.settle import (
    CUT_MID_LINE,
    in_flight,
    mtime_ahead,
    needs_before,
    remedy,
    settles_at,
    settling,
)

# what a `Look` asks the driver for (each is gathered once per note)
FIND = "find"  # the note is not at its path: `moved_to` (a note with its key), `moved_etag`
READ = "read"  # `text` (or why it is `unreadable`), `etag_after` the read, `now_ns` then
BEFORE = "before"  # `before`: the text the bridge last wrote or saw (None: not kept)
FIRST_SEEN = "first-seen"  # `first_seen_ns`: when this process first saw the file's etag
BASE = "base"  # the note's merge base, left in the state DB until needed (`NoteState.loader`)


class Rules(Protocol):
    """The settings a decision depends on (`bridge.plan.PlanContext` has them)."""

    force: bool  # past the tripwire
    now_ns: int  # when the sync began: an etag older than this by `RECENT_NS` is trusted alone
    settle_ns: int  # a note changed less than this ago is merged once it is quiet


@dataclass(frozen=True)
class Look:
    """The next fact the planner needs about the note at `path` (with `etag`)."""

    what: str
    path: str
    etag: str | None = None


@dataclass(frozen=True)
class Sighting:
    """What was seen of one note, as plain data: gathered by the driver, each part when a
    `Look` asked for it (`looked` says which were)."""

    path: str
    etag: str | None  # the file at `path`; None: there is none
    looked: frozenset[str] = field(default_factory=frozenset)
    moved_to: str | None = None
    moved_etag: str | None = None
    text: str | None = None
    unreadable: str = ""
    etag_after: str | None = None
    now_ns: int = 0
    before: str | None = None
    first_seen_ns: int | None = None

    def having(self, what: str, **facts: object) -> Sighting:
        """This sighting with the facts a `Look` for `what` asked for."""
        return replace(self, looked=self.looked | {what}, **facts)

    @cached_property
    def text_hash(self) -> str | None:
        return None if self.text is None else text_hash(self.text)


def check_tripwire(
    all_keys: Collection[str] | None, notes: Sequence[NoteState], force: bool
) -> None:
    """Refuse a library (every item key it has: `all_keys`) that suddenly lost most of the
    papers the vault has notes for (`notes`: every note in the state DB)."""
    live = [n for n in notes if n.kind == "paper" and not n.zotero_deleted]
    if force or not live:
        return
    if all_keys is not None:
        missing = sum(1 for n in live if n.note_id not in all_keys)
        if len(all_keys) == 0 or missing > len(live) / 2:
            raise TripwireError(
                f"the source returned {len(all_keys)} items but the vault has"
                f" {len(live)} paper notes: {missing} would be marked deleted-in-zotero",
                "check --zotero-dir / the source settings; if the library really shrank,"
                " run again with --force",
            )


def nothing_new(item: Item, path: str | None, etag: str | None) -> bool:
    """Whether an item the state DB has no note for gets none: one in Zotero's trash (it got
    no `path`: a trashed item gets no note at its first sync), or a standalone file without
    annotations whose note is not on disk (`etag` of `path`). One whose note is on disk is
    planned as ever."""
    if path is None:
        return True
    bare_file = item.item_type == "attachment" and not item.annotations
    return bare_file and etag is None


def plan_note(
    desired: RenderedNote,
    note: NoteState | None,
    seen: Sighting,
    rules: Rules,
    *,
    trashed: bool = False,
) -> Action | Look:
    """Create, merge into, or leave alone one note (paper or method) seen at `seen.path`."""
    note_id = desired.note_id
    if note is not None and note.user_deleted:
        back = _came_back(desired, seen)
        if isinstance(back, Look):
            return back
        if not back:
            return Action(
                ActionKind.UNCHANGED,
                note_id,
                note.path,
                reason="deleted by the user; not recreated",
            )
    where = _locate(note, seen, paper=desired.kind == "paper")
    if not isinstance(where, tuple):
        return where
    path, etag = where
    status = _status_change(trashed, note)
    if desired.extra_base.get("reading_hint") and _base_missing(note, seen):
        return Look(BASE, path)
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
    )
    if fast and note is not None:
        if etag_settled(etag, rules.now_ns):
            return Action(ActionKind.UNCHANGED, note_id, path, state=note)
        if READ not in seen.looked:
            return Look(READ, path, etag)
        if note.content_hash is not None and seen.text_hash == note.content_hash:
            return Action(ActionKind.UNCHANGED, note_id, path, state=note)
    return _merge(note_id, path, etag, desired, note, status, seen, rules)


def plan_erased(note: NoteState, seen: Sighting, rules: Rules) -> Action | Look:
    """A paper note whose item was erased from Zotero (gone from the key set): mark it,
    never delete it."""
    where = _locate(note, seen, paper=True)
    if not isinstance(where, tuple):
        return where
    path, etag = where
    assert etag is not None
    mark = StatusChange(mark_deleted=True)
    return _merge(note.note_id, path, etag, None, note, mark, seen, rules)


def plan_copy(
    note_id: str,
    source: str,
    dest: str,
    source_size: int,
    source_mtime_ns: int,
    dest_etag: str | None,
) -> Action | None:
    """An annotation image to copy into the vault: missing there, or older than Zotero's."""
    if dest_etag is not None:
        mtime_ns, size = (int(x) for x in dest_etag.split(";")[:2])
        if size == source_size and mtime_ns >= source_mtime_ns:
            return None
    return Action(ActionKind.COPY, note_id, dest, source_path=source)


def _came_back(desired: RenderedNote, seen: Sighting) -> bool | Look:
    """A note the user deleted may come back (undo, git checkout, a sync service)."""
    if seen.etag is not None:
        return True
    if desired.kind != "paper":
        return False
    if FIND not in seen.looked:
        return Look(FIND, seen.path)
    return seen.moved_to is not None


def _locate(
    note: NoteState | None, seen: Sighting, *, paper: bool
) -> tuple[str, str | None] | Action | Look:
    """Where the note is, with its etag (None: nowhere, so it is to be created); a note the
    bridge made that is gone (and, for a paper, carries its key nowhere) is user-deleted."""
    if seen.etag is not None or note is None:
        return seen.path, seen.etag
    if paper:
        if FIND not in seen.looked:
            return Look(FIND, seen.path)
        if seen.moved_to is not None:
            return seen.moved_to, seen.moved_etag
    return Action(ActionKind.USER_DELETED, note.note_id, seen.path, state=note)


def _base_missing(note: NoteState | None, seen: Sighting) -> bool:
    """The note's merge base is still in the state DB (and was not asked for yet)."""
    return note is not None and not note.base_loaded and BASE not in seen.looked


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
    desired: RenderedNote | None,
    note: NoteState | None,
    status: StatusChange,
    seen: Sighting,
    rules: Rules,
) -> Action | Look:
    if READ not in seen.looked:
        return Look(READ, path, etag)
    text = seen.text
    if text is None:
        return Action(ActionKind.SKIP, note_id, path, reason=seen.unreadable)
    held = _being_saved(note_id, path, etag, seen, note, rules)
    if held is not None:
        return held
    if _base_missing(note, seen):
        return Look(BASE, path)
    try:
        result = merge_note(path, text, desired, note.base if note else None, status)
    except NoteError as exc:
        return Action(ActionKind.SKIP, note_id, path, reason=exc.message)
    kind_of_note = desired.kind if desired is not None else (note.kind if note else "paper")
    state = NoteState(
        note_id, kind_of_note, path,
        _base(desired, note, result.base_regions) if desired is not None
        else (note.base if note else {}),
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
        expected_etag=etag, expected_hash=seen.text_hash, state=state, conflicts=result.conflicts,
        open_conflicts=result.open_conflicts, properties=result.properties,
        deleted=status.mark_deleted, seen_z=seen_z,
    )  # fmt: skip


def _being_saved(
    note_id: str, path: str, etag: str, seen: Sighting, note: NoteState | None, rules: Rules
) -> Action | Look | None:
    """A `defer` (or `skip`) action when the text read must not be merged into now: the
    note is being saved, or was left cut short (`bridge.vault.settle`). None: merge it."""
    text = seen.text
    assert text is not None
    if note is not None and note.content_hash == seen.text_hash:
        return None  # as the bridge left it: no edit of the user's to misread
    after = seen.etag_after
    if after != etag:  # it changed while it was read
        return _defer(note_id, path, "it changed while it was read", after or etag, seen, rules)
    last_size = _size(note.etag) if note is not None else None
    if note is not None and needs_before(text, last_size) and BEFORE not in seen.looked:
        return Look(BEFORE, path)
    why = in_flight(text, last_size, seen.before if note is not None else None)
    if mtime_ahead(etag, seen.now_ns) and FIRST_SEEN not in seen.looked:
        return Look(FIRST_SEEN, path, etag)
    if settling(etag, rules.settle_ns, seen.now_ns, seen.first_seen_ns):
        return _defer(note_id, path, why or "it was saved moments ago", etag, seen, rules)
    if why is None or why == CUT_MID_LINE:
        return None
    return Action(
        ActionKind.SKIP, note_id, path,
        reason=f"{path}: {why}, so it looks like a save that did not finish; it was left"
        f" alone. {remedy(why, note_id)}",
    )  # fmt: skip


def _defer(note_id: str, path: str, why: str, etag: str, seen: Sighting, rules: Rules) -> Action:
    return Action(
        ActionKind.DEFER, note_id, path,
        reason=f"{path}: being saved ({why}); merged once it settles",
        settles_at=settles_at(etag, rules.settle_ns, seen.now_ns),
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


def _base(
    desired: RenderedNote, note: NoteState | None = None, regions: dict[str, str] | None = None
) -> dict | str:
    """The merge base to remember; `regions`: those rendered from the merged note (the
    header, `MergeResult.base_regions`) in place of Zotero's."""
    hint = note is not None and note.base.get("reading_hint")  # given once per note, ever
    if not desired.extra_base and not hint and not regions:
        return desired.core_json  # the same JSON the render hash was made from
    base = {
        "properties": desired.properties,
        "regions": {**desired.regions, **(regions or {})},
        **desired.extra_base,
    }
    if hint:
        base["reading_hint"] = True
    return base
