"""The executor: carry out planned actions with atomic writes, then record them in the state DB.

Kept small on purpose: every decision was made by the planner. One bad note (changed on disk
since the scan, read-only, a symlink) becomes a skip with a message; the rest goes on. A full
disk stops the sync instead (every later write would fail too): what was written is recorded
if the state DB still can be, and a note whose write failed is as it was (the temp file is
removed, the note never touched).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from bridge.actions import NOTE_CHANGED, Action, ActionKind, Receipt
from bridge.errors import NoSpaceError, NoteChangedError, NoteError, is_no_space
from bridge.lineage import PaperInfo
from bridge.state import State, compress_text
from bridge.vault.fs import Vault

# Notes recorded per state transaction. Each commit rewrites every index page its rows touched,
# and the note ids are random: in a large vault a small batch dirties a new page for nearly every
# row, so fewer, larger commits cost much less (bench/README.md, "Figures behind choices in the
# code"). A batch that a crash cuts short is found again from its notes' zotero_key, as any
# interrupted sync.
STATE_BATCH = 2000
# a note saved while the bridge wrote it is tried again this long after (its save was kept)
SETTLE_AFTER_S = 2.0


@dataclass
class SyncResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    conflicts: int = 0
    skipped: int = 0
    deleted: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    # notes being saved (`bridge.vault.inflight`): path, key, message, settles_at
    deferred: list[dict[str, Any]] = field(default_factory=list)
    actions: list[Action | Receipt] = field(default_factory=list)  # receipts after a sync
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def counts(self) -> dict[str, Any]:
        return {
            "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "conflicts": self.conflicts, "skipped": self.skipped, "deleted": self.deleted,
            "errors": self.errors, "deferred": len(self.deferred),
        }  # fmt: skip

    def count(self, action: Action) -> None:
        if action.kind == ActionKind.CREATE:
            self.created += 1
        elif action.kind == ActionKind.UPDATE:
            self.updated += 1
        elif action.kind in (ActionKind.UNCHANGED, ActionKind.TOUCH, ActionKind.USER_DELETED):
            self.unchanged += 1
        elif action.kind == ActionKind.SKIP:
            self.skip(action.path, action.note_id, action.reason)
        elif action.kind == ActionKind.DEFER:
            self.defer(action.path, action.note_id, action.reason, action.settles_at)
        if action.conflicts:
            self.conflicts += len(action.conflicts)
        if action.deleted and action.kind in NOTE_CHANGED:
            self.deleted += 1

    def skip(self, path: str, key: str, message: str) -> None:
        self.skipped += 1
        self.errors.append({"path": path, "key": key, "message": message})

    def defer(self, path: str, key: str, message: str, settles_at: float) -> None:
        self.deferred.append(
            {"path": path, "key": key, "message": message, "settles_at": settles_at}
        )

    def failed_paths(self) -> set[str]:
        """Notes that did not take this sync's changes: skipped, or deferred while saved."""
        return {e["path"] for e in self.errors} | {d["path"] for d in self.deferred}

    def then(self, later: SyncResult) -> SyncResult:
        """This sync followed by `later`, which merged the notes this one deferred."""
        self.created += later.created
        self.updated += later.updated
        self.conflicts += later.conflicts
        self.deleted += later.deleted
        self.skipped += later.skipped
        self.errors.extend(later.errors)
        self.deferred = later.deferred
        self.warnings.extend(w for w in later.warnings if w not in self.warnings)
        self.actions.extend(later.actions)
        return self

    @property
    def ok(self) -> bool:
        return self.skipped == 0 and not self.errors and not self.deferred


def apply(
    actions: Iterable[Action],
    vault: Vault,
    state: State,
    result: SyncResult,
    progress: Callable[[int], None] | None = None,
) -> SyncResult:
    """Execute `actions` in order; state rows are committed in batches."""
    pending: list[Action] = []
    for action in actions:
        try:
            done = _execute(action, vault, result)
        except NoSpaceError:
            _record_if_possible(pending, vault, state)
            raise
        if done is not None:
            pending.append(done)
        if len(pending) >= STATE_BATCH:
            _record(pending, vault, state)
            pending = []
        if progress:
            progress(1)
    _record(pending, vault, state)
    return result


def _record_if_possible(actions: list[Action], vault: Vault, state: State) -> None:
    """Record the notes already written before a full disk stops the sync; when the state DB
    cannot take them either, the next sync finds them again by zotero_key."""
    with contextlib.suppress(Exception):  # the full disk is what gets reported
        _record(actions, vault, state)


def _execute(action: Action, vault: Vault, result: SyncResult) -> Action | None:
    try:
        if action.kind == ActionKind.CREATE:
            assert action.text is not None and action.state is not None
            action.state.etag = vault.create(action.path, action.text)
            action.seen_z = compress_text(action.text)
            action.text = None  # written: a batch must not hold its notes' text
        elif action.kind == ActionKind.UPDATE:
            assert action.text is not None and action.state is not None
            action.state.etag = vault.replace(
                action.path, action.text, action.expected_etag, action.expected_hash
            )
            action.seen_z = compress_text(action.text)
            action.text = None
        elif action.kind == ActionKind.COPY:
            with open(action.source_path, "rb") as handle:
                vault.write_file_bytes(action.path, handle.read())
            return None
    except NoteChangedError as exc:  # saved in the editor meanwhile: the save was kept
        result.defer(action.path, action.note_id, exc.message, time.time() + SETTLE_AFTER_S)
        return None
    except NoteError as exc:
        result.skip(action.path, action.note_id, exc.message)
        return None
    except OSError as exc:
        if is_no_space(exc):
            raise NoSpaceError.from_os_error(exc, action.path) from exc
        result.skip(action.path, action.note_id, f"cannot write the note: {exc.strerror or exc}")
        return None
    result.count(action)
    return action


def _record(actions: list[Action], vault: Vault, state: State) -> None:
    """Make the batch's renames durable, then record it in one transaction."""
    if not actions:
        return
    vault.sync_dirs()
    facts = []
    seen = []
    with state.transaction():
        for action in actions:
            if action.kind == ActionKind.USER_DELETED:
                state.mark_user_deleted(action.note_id)
                continue
            if action.state is None:
                continue
            if action.kind == ActionKind.UNCHANGED:
                # planning may have parsed its base (the reading hint): let it go now, or a
                # full re-read of a large vault holds every parsed base to the end of the sync
                state.release_base(action.state)
                continue
            action.state.path = action.path
            state.put_note(action.state)
            if action.seen_z is not None:
                seen.append((action.note_id, action.seen_z))
                action.seen_z = None
            state.release_base(action.state)
            if action.properties is not None and action.state.kind == "paper":
                # what method notes need, from the properties just written: no re-read
                info = PaperInfo.from_properties(action.note_id, action.path, action.properties)
                # the etag the action saw or wrote: a later edit must not inherit these facts
                facts.append((action.note_id, action.path, action.state.etag, vars(info)))
                action.properties = None  # recorded: let it go with the text
            state.resolve_conflicts_for(action.note_id, action.open_conflicts)
            for name in action.conflicts:
                state.add_conflict(action.note_id, action.path, name)
        state.put_paper_meta(facts)
        state.put_seen_texts(seen)
