"""What a sync does to one note: the planner's `Action`, and the `Receipt` a sync keeps of it.

At the bottom of the package (it imports nothing of the bridge at run time), so the planner,
the executor and the workflows share these types without importing one another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bridge.state import NoteState


class ActionKind(StrEnum):
    """What an action does. A `StrEnum`: it compares equal to, and is stored as, its text."""

    CREATE = "create"  # a new note
    UPDATE = "update"  # the note's text changes (merged with the user's edits)
    TOUCH = "touch"  # the user edited the note; only the state DB learns its new text
    UNCHANGED = "unchanged"
    SKIP = "skip"  # not carried out (`reason` says why); tried again at the next sync
    USER_DELETED = "user-deleted"  # the user deleted the note: it is not recreated
    # the note is being saved: merged once it settles (`bridge.vault.inflight`)
    DEFER = "defer"
    COPY = "copy"  # a file copied to `path` (`source_path`)


# the note is new, or its text changed (written by the sync, or edited by the user)
NOTE_CHANGED = frozenset({ActionKind.CREATE, ActionKind.UPDATE, ActionKind.TOUCH})


@dataclass
class Action:
    """One step of a sync: what `apply` does to one note (`ActionKind`)."""

    kind: ActionKind
    note_id: str
    path: str
    text: str | None = None
    expected_etag: str | None = None
    state: NoteState | None = None
    conflicts: list[str] = field(default_factory=list)
    open_conflicts: set[str] = field(default_factory=set)
    reason: str = ""
    deleted: bool = False  # the item is trashed/erased in Zotero (newly marked)
    source_path: str = ""  # kind "copy": the file to copy to `path`
    expected_hash: str | None = None  # kind "update": hash of the text the merge read
    properties: dict | None = None  # the note's properties after this action (if known)
    # a failed action is tried again at the next sync (the cursor stays): not when the item
    # itself cannot be rendered, which only a fix in Zotero (read anyway) or the bridge cures
    retry: bool = True
    seen_z: bytes | None = None  # kind "touch": the note's text as read, zlib (`seen_text`)
    settles_at: float = 0.0  # kind "defer": when the note counts as quiet (epoch seconds)

    def describe(self) -> str:
        return _describe(self.kind, self.path, self.conflicts, self.reason)

    def receipt(self) -> Receipt:
        """What a sync keeps of this action once it is carried out (`Receipt`)."""
        state = None if self.state is None else NoteKind.of(self.state.kind)
        conflicts = tuple(self.conflicts)
        return Receipt(
            self.kind, self.note_id, self.path, state, self.deleted, conflicts, self.reason,
            self.retry,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class NoteKind:
    """A receipt's stand-in for the note's state: only its kind (`paper`, `method`…)."""

    kind: str

    @staticmethod
    def of(kind: str) -> NoteKind:
        found = _NOTE_KINDS.get(kind)
        if found is None:
            found = _NOTE_KINDS[kind] = NoteKind(kind)
        return found


_NOTE_KINDS: dict[str, NoteKind] = {}


@dataclass(frozen=True, slots=True)
class Receipt:
    """An action as a sync remembers it after `apply` (`SyncResult.actions`): enough to count,
    log (`record_note_events`) and describe it. Its text, merge base, properties and hashes
    are in the vault and the state DB by then, so a large first sync does not keep them all
    in memory. `state` holds only the note's kind."""

    kind: ActionKind
    note_id: str
    path: str
    state: NoteKind | None = None
    deleted: bool = False
    conflicts: tuple[str, ...] = ()
    reason: str = ""
    retry: bool = True

    def describe(self) -> str:
        return _describe(self.kind, self.path, self.conflicts, self.reason)


def _describe(kind: str, path: str, conflicts: Sequence[str], reason: str) -> str:
    extra = f" — conflicts: {', '.join(conflicts)}" if conflicts else ""
    why = f" — {reason}" if reason else ""
    return f"{kind:12} {path}{extra}{why}"
