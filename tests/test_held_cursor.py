"""A paper note that could not take Zotero's change holds the cursor read before it
(bridge/retries.py): the change is read again once the note can take it, and no more often.

Each docstring tells a failure to avoid; the test asserts the behaviour."""

from __future__ import annotations

import dataclasses
import shutil
import time
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.daemon import RawEvent, VaultFilter, _event_types, _handler
from bridge.retries import Held
from bridge.state import State
from bridge.sync import SyncOptions, sync
from tests.test_incremental_retries import (
    _age,
    _count_reads,
    _held,
    _note_of,
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    _retitle,
    _synced,
)

MARK = "LINEAGE-TEMPLATE-V2"


def _new_lineage_template(tmp_path: Path) -> Path:
    """A templates folder whose lineage region differs: every paper note renders anew."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "lineage.md.j2").write_text(MARK + "\n", encoding="utf-8")
    return folder


def test_a_note_that_fails_in_a_full_read_while_another_is_held_gets_it_later(
    tmp_path: Path,
) -> None:
    """A note is held (read-only, cursor C0 kept). Then a full read (a new template, a
    bridge upgrade, new filters, `--full`): a second note fails in it. `update_held_cursor` keeps
    the older held cursor C0 — but the second note's change came from the full read, not
    from anything Zotero did since C0. Once that note is writable, the retry reads from C0,
    the second note's item is not in that read, and the hold is dropped: the note never gets
    what the full read had for it."""
    data_dir, vault, keys, config = _synced(tmp_path)
    first = _note_of(vault, keys["filler0"])
    first.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors  # held: the cursor read before this sync
    sync(config)  # the retry once more: still read-only; nothing due any more
    held = _held(vault)
    assert held is not None and not held.again
    second = _note_of(vault, keys["filler1"])
    second.chmod(0o444)
    config = dataclasses.replace(config, templates_dir=_new_lineage_template(tmp_path))
    full = sync(config)  # the render fingerprint moved: a full read
    failed = {Path(e["path"]).name for e in full.errors}
    assert failed == {first.name, second.name}
    assert MARK in _note_of(vault, keys["filler2"]).read_text()  # writable ones took it
    second.chmod(0o644)  # as the skip asks
    _age(data_dir)
    sync(config)
    sync(config)
    assert MARK in second.read_text(), "the full read's change never reached the note"
    first.chmod(0o644)


def test_a_note_that_fails_in_a_forced_full_read_while_another_is_held(tmp_path: Path) -> None:
    """The same with `zob sync --full` (what a user runs to repair): the full read's held
    cursor must be 'everything', not an older held cursor."""
    data_dir, vault, keys, config = _synced(tmp_path)
    first = _note_of(vault, keys["filler0"])
    first.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors
    sync(config)
    before = _held(vault)
    assert before is not None and before.cursor is not None
    sync(config, SyncOptions(full=True))
    after = _held(vault)
    assert after is not None
    # what a held full read records when nothing was held before (`Held.cursor` None)
    assert after.cursor is None, "a failure in a full read is held at an older cursor"
    first.chmod(0o644)


def _break_yaml(note: Path) -> None:
    text = note.read_text(encoding="utf-8")
    note.write_text(text.replace("\ntitle: ", "\ntitle: [unclosed ", 1), encoding="utf-8")


def _held_then_edited(tmp_path: Path) -> tuple[Path, Path, Config, Held]:
    """A note with broken YAML fails, is retried once, then edited by the user (its YAML
    still broken): returns the data folder, vault, config and the hold before the edit."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _break_yaml(note)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors
    sync(config)  # the one retry after a new failure
    held = _held(vault)
    assert held is not None and not held.again
    with note.open("a", encoding="utf-8") as handle:
        handle.write("\nA thought of mine.\n")
    return data_dir, vault, config, held


def test_a_retry_the_user_s_edit_brought_is_not_repeated_at_the_next_sync(
    tmp_path: Path,
) -> None:
    """A note with broken YAML is held. The user edits it (still broken): its fingerprint
    moved, so the next sync reads from the held cursor — right. That read sees the note as it
    is now, yet `update_held_cursor` compares the new fingerprint with the one of the *previous*
    failure, finds them different, and sets `again`: the sync after that reads from the held
    cursor once more for nothing (with a moved children digest: the whole library), after
    every edit of the note."""
    data_dir, vault, config, held = _held_then_edited(tmp_path)
    assert held.due(vault)
    assert sync(config).errors  # read from the held cursor: still broken
    after = _held(vault)
    assert after is not None
    assert not after.again, "the retry just made is scheduled once more"
    assert not after.due(vault)


def test_the_daemon_sees_a_held_note_s_folder_made_writable(tmp_path: Path) -> None:
    """`fingerprint` includes the folder's mode because a read-only folder fails the write
    (the temp file cannot be made, as non-root) and `chmod u+w Papers` is the user's fix.
    `Held.due` sees a folder mode change; the daemon does not: it subscribes to
    FileAttribEvent only (no DirAttribEvent), and `relevant_paths` of a folder event looks
    at `written` only — `zob watch` does not sync until something else happens. (As root,
    the note's own read-only bit makes the hold; the folder's mode change is the same.)"""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)  # as root, the stand-in for the failure a read-only folder gives
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors
    sync(config)
    held = _held(vault)
    assert held is not None and not held.due(vault)
    from watchdog.observers import Observer

    events: list[RawEvent] = []
    observer = Observer()
    observer.schedule(
        _handler("vault", events.append), str(vault.resolve()), recursive=True,
        event_filter=_event_types("vault"),
    )  # fmt: skip
    observer.start()
    try:
        time.sleep(0.3)
        folder = note.parent
        folder.chmod(0o555)  # the folder's mode moves: `Held.due` says read again
        time.sleep(1.0)
    finally:
        observer.stop()
        observer.join()
    watched = VaultFilter(vault.resolve(), config.papers_folder)
    with State(vault) as state:
        watched.refresh(state)
    try:
        assert _held(vault).due(vault)  # the sync would read Zotero's change again
        seen = [
            rel
            for event in events
            for rel in watched.relevant_paths(event)
            if watched.changed(rel) is not False
        ]
        assert seen, f"no event the daemon acts on: {events}"
    finally:
        folder.chmod(0o755)
        note.chmod(0o644)


def test_a_hold_under_another_cursor_key_leaves_the_bridge_s_own_writes_alone(
    tmp_path: Path,
) -> None:
    """A hold is kept per cursor key (source, Zotero folder / library / API URL). When that
    key changes (the Zotero data folder moved, another source), the old hold is never read
    or dropped, yet `held_fingerprints` still hands its notes to the daemon: each time the
    bridge writes one of them, `VaultFilter.changed` compares it with the stale fingerprint
    and reports the bridge's own write as the user's — one more sync each time."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors  # held under cursor:sqlite:<data_dir>
    note.chmod(0o644)
    moved = tmp_path / "Zotero moved"
    shutil.copytree(data_dir, moved)
    config = dataclasses.replace(config, zotero_dir=moved)  # a new cursor key
    assert not sync(config).errors
    assert "Filler 0, revised" in note.read_text()  # written by the bridge
    watched = VaultFilter(vault.resolve(), config.papers_folder)
    with State(vault) as state:
        watched.refresh(state)
    rel = note.relative_to(vault).as_posix()
    assert watched.changed(rel) is False, "the bridge's own write counts as a user change"


def test_a_full_read_after_an_edit_of_a_held_note_is_not_made_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`Held.seen` is filled by `Held.due`, which `_sync` calls only when the read is not full
    (`retry = not full and ...`). A full read (`--full`, new templates or filters, a bridge
    upgrade) that follows the user's edit of a held note (YAML still broken) therefore
    compares the note with the fingerprint of its previous failure, finds it changed, and
    sets `again` — with the held cursor now None: the next sync reads the whole library
    once more for nothing (what 7dbb18e fixed for a retry, left for a full read)."""
    data_dir, vault, config, _ = _held_then_edited(tmp_path)
    _age(data_dir)
    assert sync(config, SyncOptions(full=True)).errors  # read the note as it is now
    after = _held(vault)
    assert after is not None and after.cursor is None
    sizes = _count_reads(monkeypatch)
    sync(config)
    assert not after.again and sizes == [0], f"the full read was made again: {sizes}"
