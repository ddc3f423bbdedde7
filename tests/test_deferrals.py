"""A note deferred while being saved gets Zotero's change later (sqlite source, real
cursors), however the later syncs come; deferrals cost no extra full reads and no waits in
`zob watch`, and are named to the user."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bridge import sync as sync_module
from bridge.sync import SyncOptions, sync
from tests.test_incremental_retries import (
    _note_of,
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    _retitle,
    _synced,
)

NO_WAIT = SyncOptions(wait_for_saves=False)


def _saved_now(note: Path, line: str) -> None:
    with note.open("a", encoding="utf-8") as handle:
        handle.write(line)


def _aged(note: Path, seconds: float = 30.0) -> None:
    when = time.time() - seconds
    os.utime(note, (when, when))


def test_deferred_then_settled_with_nothing_new_in_zotero(tmp_path):
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    _saved_now(note, "\nMine.\n")
    assert sync(config, NO_WAIT).deferred
    _aged(note)
    sync(config, NO_WAIT)
    text = note.read_text()
    assert "Filler 0, revised" in text and "Mine." in text


def test_deferred_then_another_item_changes_before_it_settles(tmp_path):
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    _saved_now(note, "\nMine.\n")
    assert sync(config, NO_WAIT).deferred
    _retitle(data_dir, keys["filler1"], "Filler 1, revised")
    _saved_now(note, "More.\n")  # still being saved at the next sync
    assert sync(config, NO_WAIT).deferred
    _retitle(data_dir, keys["filler2"], "Filler 2, revised")
    sync(config, NO_WAIT)  # filler0 still recent: deferred a third time
    _aged(note)
    sync(config, NO_WAIT)
    sync(config, NO_WAIT)
    text = note.read_text()
    assert "Filler 0, revised" in text and "Mine." in text and "More." in text
    assert "Filler 1, revised" in _note_of(vault, keys["filler1"]).read_text()


def test_zob_sync_gives_up_waiting_then_a_later_run_merges(tmp_path, monkeypatch):
    monkeypatch.setattr(sync_module, "SETTLE_WAIT_ROUNDS", 0)
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    _saved_now(note, "\nMine.\n")
    assert sync(config).deferred
    _aged(note)
    sync(config)
    text = note.read_text()
    assert "Filler 0, revised" in text and "Mine." in text


def test_sync_reports_a_note_it_gave_up_waiting_for(tmp_path, monkeypatch, capsys):
    """`zob sync` exits with the 'skipped' code when a note is still being saved after its
    waits, yet `print_result` lists errors and warnings only: nothing says which note or why."""
    from bridge.cli import print_result

    monkeypatch.setattr(sync_module, "SETTLE_WAIT_ROUNDS", 0)
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    _saved_now(note, "\nMine.\n")
    result = sync(config)
    assert result.deferred and not result.ok
    print_result(result, as_json=False)
    out = capsys.readouterr()
    assert note.name in out.out + out.err, out


def test_watch_style_sync_does_not_wait_for_the_queue_note_being_edited(tmp_path):
    """`zob watch` runs syncs with wait_for_saves=False ("notes being saved are not waited
    for here"), but the queue note goes through `write_note` → `when_quiet`, which sleeps up
    to 4 rounds (each up to the settle window, ≤ 60 s) inside the sync, holding the sync lock
    and deaf to a stop request."""
    data_dir, vault, keys, config = _synced(tmp_path)
    queue = vault / config.reading_queue
    assert queue.exists()
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")  # the queue's rows change
    with queue.open("a", encoding="utf-8") as handle:
        handle.write("\nmy plan for the week\n")  # saved just now
    started = time.monotonic()
    result = sync(config, NO_WAIT)
    took = time.monotonic() - started
    assert took < config.settle_seconds, (took, result.deferred)


def test_a_note_typed_in_after_a_full_read_does_not_make_every_sync_a_full_read(
    tmp_path, monkeypatch
):
    """A full read (a template edit, --full, new settings) while the user types in a note:
    the deferral holds cursor None, and every sync while they keep typing (zob watch syncs
    after each save) re-reads the whole library."""
    from tests.test_incremental_retries import _count_reads

    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    _saved_now(note, "\nMine.\n")
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    sizes = _count_reads(monkeypatch)
    assert sync(config, SyncOptions(wait_for_saves=False, full=True)).deferred
    for line in ("a\n", "b\n", "c\n"):
        _saved_now(note, line)  # still typing
        assert sync(config, NO_WAIT).deferred
    full = sizes[0]
    assert sizes[1:].count(full) <= 1, sizes
