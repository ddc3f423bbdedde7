"""The planner on the in-memory vault: the merge and settle rules, with no disk at all.

`MemoryVault` passes the disk vault's contract (tests/test_vault_contract.py), so what holds
here holds for the disk. Every test runs with the file system's entry points taken away
(`offline`): a read or write that slipped past the vault would fail the test. The notes are
planned by `bridge.plan.plan_note` (the driver gathering facts for `bridge.planner`) and
written by the executor's own step (`bridge.apply._execute`).
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import io
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.actions import Action, ActionKind
from bridge.apply import SyncResult, _execute
from bridge.notestate import NoteState
from bridge.plan import PlanContext, plan_note
from bridge.planner import READ, Look, Sighting
from bridge.planner import plan_note as decide
from bridge.vault.memory import MemoryVault
from bridge.vault.merge import CALLOUT_HEAD
from bridge.vault.notefile import wrap_region
from bridge.vault.rendered import RenderedNote

KEY = "ABCD2345"
PATH = "Papers/A paper.md"
SETTLE_NS = 2_000_000_000
AGO_NS = 60_000_000_000  # the bridge's writes, as seen a minute later


@contextlib.contextmanager
def _no_disk() -> Iterator[None]:
    """The file system's entry points fail while the body runs (and come back before pytest
    reports: it needs them)."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"touched the disk: {args!r}")

    names = ("open", "stat", "lstat", "scandir", "listdir", "walk", "mkdir", "rename",
             "replace", "unlink", "link", "utime")  # fmt: skip
    saved = {name: getattr(os, name) for name in names}
    saved_open = builtins.open, io.open
    try:
        for name in names:
            setattr(os, name, refuse)
        builtins.open = io.open = refuse
        yield
    finally:
        for name, real in saved.items():
            setattr(os, name, real)
        builtins.open, io.open = saved_open


def offline(test: Callable[[], None]) -> Callable[[], None]:
    """Run the test with no disk (`_no_disk`)."""

    @functools.wraps(test)
    def run() -> None:
        with _no_disk():
            test()

    return run


def _desired(title: str = "A paper", abstract: str = "Zotero's abstract.") -> RenderedNote:
    body = f"# {title}\n\n{wrap_region('abstract', abstract)}\n\n## My notes\n"
    return RenderedNote(
        note_id=KEY, kind="paper", properties={"title": title, "zotero_key": KEY},
        regions={"abstract": abstract}, initial_properties={"status": "to-read"}, body=body,
    )  # fmt: skip


def _vault() -> MemoryVault:
    """A vault whose writes by the bridge look a minute old (settled)."""
    return MemoryVault(clock=lambda: time.time_ns() - AGO_NS)


def _ctx() -> PlanContext:
    return PlanContext("Papers", renderer=None, settle_ns=SETTLE_NS)  # type: ignore[arg-type]


def _run(vault: MemoryVault, desired: RenderedNote, note: NoteState | None) -> Action:
    """Plan the note, carry the action out, and keep its state as the state DB would."""
    action = plan_note(desired, note, PATH if note is None else note.path, vault, _ctx())
    result = SyncResult()
    _execute(action, vault, result)
    assert not result.errors and not result.deferred, (result.errors, result.deferred)
    if action.state is not None:
        action.state.path = action.path
    return action


def _synced(vault: MemoryVault) -> NoteState:
    action = _run(vault, _desired(), None)
    assert action.kind == ActionKind.CREATE and action.state is not None
    return action.state


@offline
def test_a_new_note_is_created_and_then_left_alone() -> None:
    vault = _vault()
    note = _synced(vault)
    text = vault.read(PATH)
    assert f"zotero_key: {KEY}" in text and "Zotero's abstract." in text
    assert "status: to-read" in text
    assert _run(vault, _desired(), note).kind == ActionKind.UNCHANGED


@offline
def test_a_settled_unchanged_note_is_not_even_read() -> None:
    """The planner asks for a note's text only when its decision needs it."""
    vault = _vault()
    note = _synced(vault)
    reads: list[str] = []
    real = vault.read
    vault.read = lambda rel: reads.append(rel) or real(rel)  # type: ignore[method-assign]
    assert _run(vault, _desired(), note).kind == ActionKind.UNCHANGED
    assert reads == []
    assert _run(vault, _desired(title="Retitled"), note).kind == ActionKind.UPDATE
    assert reads == [PATH]


@offline
def test_the_user_s_edit_is_merged_with_zotero_s_change() -> None:
    vault = _vault()
    note = _synced(vault)
    vault.put(PATH, vault.read(PATH) + "My own line.\n", mtime_ns=time.time_ns() - AGO_NS)
    action = _run(vault, _desired(title="Retitled in Zotero"), note)
    assert action.kind == ActionKind.UPDATE and not action.conflicts
    text = vault.read(PATH)
    assert "title: Retitled in Zotero" in text and "My own line." in text


@offline
def test_both_changing_the_abstract_keeps_the_user_s_version_in_a_callout() -> None:
    vault = _vault()
    note = _synced(vault)
    edited = vault.read(PATH).replace("Zotero's abstract.", "My better abstract.")
    vault.put(PATH, edited, mtime_ns=time.time_ns() - AGO_NS)
    action = _run(vault, _desired(abstract="Zotero's revised abstract."), note)
    assert action.kind == ActionKind.UPDATE and action.conflicts == ["abstract"]
    text = vault.read(PATH)
    assert "Zotero's revised abstract." in text
    assert CALLOUT_HEAD in text and "> My better abstract." in text


@offline
def test_a_note_being_saved_is_deferred_and_never_merged_into() -> None:
    vault = _vault()
    note = _synced(vault)
    saving = vault.read(PATH) + "Typed a moment ago.\n"
    vault.put(PATH, saving, mtime_ns=time.time_ns())  # inside the settle window
    action = plan_note(_desired(title="Retitled"), note, PATH, vault, _ctx())
    assert action.kind == ActionKind.DEFER, action
    assert action.settles_at > time.time() and "being saved" in action.reason
    vault.put(PATH, "", mtime_ns=time.time_ns() - AGO_NS)  # an editor's truncate, left so
    action = plan_note(_desired(title="Retitled"), note, PATH, vault, _ctx())
    assert action.kind == ActionKind.SKIP and "it is empty" in action.reason
    assert vault.read(PATH) == ""  # nothing was written over it


@offline
def test_a_note_the_user_deleted_is_not_made_again() -> None:
    vault = _vault()
    note = _synced(vault)
    vault.remove(PATH)
    action = plan_note(_desired(title="Retitled"), note, PATH, vault, _ctx())
    assert action.kind == ActionKind.USER_DELETED
    note.user_deleted = True  # as the state DB records it
    action = _run(vault, _desired(title="Retitled"), note)
    assert action.kind == ActionKind.UNCHANGED and "not recreated" in action.reason
    assert vault.etag(PATH) is None and list(vault.markdown_files()) == []


@offline
def test_a_note_the_user_moved_is_found_by_its_key_and_merged_where_it_is() -> None:
    vault = _vault()
    note = _synced(vault)
    vault.move(PATH, "Reading/Renamed.md")
    action = _run(vault, _desired(title="Retitled"), note)
    assert action.kind == ActionKind.UPDATE and action.path == "Reading/Renamed.md"
    assert "title: Retitled" in vault.read("Reading/Renamed.md")


@offline
def test_the_planner_names_the_fact_it_needs_and_decides_from_facts_alone() -> None:
    """`bridge.planner` itself, without a vault: a recent etag cannot be trusted alone, so it
    asks for the text; given the text (as the bridge left it), it decides."""
    vault = _vault()
    note = _synced(vault)
    text = vault.read(PATH)
    recent = f"{time.time_ns()};{len(text.encode())};7"
    note.etag = recent
    rules = _ctx()
    seen = Sighting(PATH, recent)
    assert decide(_desired(), note, seen, rules) == Look(READ, PATH, recent)
    read = seen.having(READ, text=text, etag_after=recent, now_ns=time.time_ns())
    assert decide(_desired(), note, read, rules).kind == ActionKind.UNCHANGED
    other = seen.having(READ, text=text + "Mine.\n", etag_after=recent, now_ns=time.time_ns())
    assert decide(_desired(), note, other, rules).kind == ActionKind.DEFER  # changed just now


def test_the_guard_takes_the_disk_away() -> None:
    """`offline` means something: the disk vault cannot even take an etag under it."""
    from bridge.vault.fs import Vault

    vault = Vault(Path(__file__).parent)
    with _no_disk(), pytest.raises(AssertionError, match="touched the disk"):
        vault.etag("conftest.py")
    with _no_disk(), pytest.raises(AssertionError, match="touched the disk"):
        open(__file__)  # noqa: SIM115
    assert vault.etag("conftest.py") is not None
