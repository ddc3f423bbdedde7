"""A failed note holds its own cursor (bridge/retries.py); moved and missing paper notes.

Each test here came from a review of the commit named in its docstring's story: the
docstring tells the failure as it was then, and the test asserts the behaviour since."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

from bridge.config import Config
from bridge.daemon import RawEvent, VaultFilter, _event_types, _handler
from bridge.retries import Held
from bridge.state import State
from bridge.sync import SyncOptions, sync
from bridge.vault.fs import Vault
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


def test_a_new_note_elsewhere_does_not_reread_every_note_while_a_paper_note_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paper note deleted in Obsidian stays "missing" (user_deleted=0) for as long as its
    item does not change. The missing digest now hashes every note name of the vault, so
    any note the user creates anywhere (a daily note) changes it, and `find_zotero_key`
    rebuilds its index: the head of every note in the vault is read — at 10,000 notes,
    10,000 file reads at each new note (in `zob watch`, at each one the user makes)."""
    data_dir, vault, keys, config = _synced(tmp_path)
    _note_of(vault, keys["resnet"]).unlink()  # the user deletes one paper note for good
    _age(data_dir)
    assert not sync(config).errors  # looked for once: not found
    heads: list[str] = []
    head = Vault._read_head

    def counted(self: Vault, rel: str) -> str | None:
        heads.append(rel)
        return head(self, rel)

    monkeypatch.setattr(Vault, "_read_head", counted)
    daily = vault / "Daily"
    daily.mkdir()
    for day in range(1, 4):
        (daily / f"2026-12-0{day}.md").write_text("Met Kaiming today.\n")
        assert not sync(config).errors
    notes = sum(1 for _ in Vault(vault).markdown_files())
    assert len(heads) <= 3, f"{len(heads)} heads read for 3 new notes in a {notes}-note vault"


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


def _assert_found_at(note: Path, vault: Path, config: Config, key: str) -> None:
    """The next sync finds the missing paper note `key` at `note`, and its method note
    links it again."""
    assert not sync(config).errors
    with State(vault) as state:
        found = state.note(key)
        assert found is not None
        assert found.path == note.relative_to(vault).as_posix(), "the note is not found"
    assert f"[[{note.stem}]]" in (vault / "Methods" / "ResNet.md").read_text()


def test_a_deleted_paper_note_pasted_back_into_a_new_untitled_note_is_found(
    tmp_path: Path,
) -> None:
    """Obsidian's "New note" makes an empty `Untitled.md` (in Papers/ with "same folder as
    current file"); the user pastes the deleted note's text into it. `zob watch` syncs on the
    empty file: the name is new, its head (no frontmatter) is read and the name kept in
    `missing_names`. The paste changes no name: the note is never read again, and stays out
    of its method note and the queue until its item changes in Zotero. (86317d9 had the same
    gap, but walked every head whenever any name changed: a daily note made the same sync
    would find it; now only new names are read.)"""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    text = note.read_text()
    note.unlink()
    _age(data_dir)
    assert not sync(config).errors  # looked for: gone
    untitled = note.parent / "Untitled.md"
    untitled.write_text("")  # Obsidian's new note, synced by the daemon as it appears
    assert not sync(config).errors
    untitled.write_text(text)  # the paste (and a daily note elsewhere, the same minute)
    (vault / "2026-12-05.md").write_text("Restored the ResNet note.\n")
    _assert_found_at(untitled, vault, config, keys["resnet"])


def test_text_pasted_into_an_untitled_note_made_before_the_deletion_is_found(
    tmp_path: Path,
) -> None:
    """The same paste as in `test_a_deleted_paper_note_pasted_back_into_a_new_untitled_note_
    is_found`, in the other order: "New note" first (synced while nothing is missing), then
    the old note is copied and deleted (synced: a walk, `missing_watch` reset to {}), then
    the paste. Untitled.md is an old name at the walk and was never watched: its change is
    never read, the note stays out of its method note until its item changes in Zotero."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    untitled = note.parent / "Untitled.md"
    untitled.write_text("")  # Obsidian's new note, synced by the daemon as it appears
    assert not sync(config).errors
    text = note.read_text()
    note.unlink()  # copied, then deleted
    _age(data_dir)
    assert not sync(config).errors  # looked for (a walk): gone
    untitled.write_text(text)  # the paste
    _assert_found_at(untitled, vault, config, keys["resnet"])


def test_a_watched_note_in_a_folder_that_cannot_be_searched_does_not_break_every_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A watched note's folder loses its search permission (chmod 0, a network mount gone:
    EACCES / EIO). `Vault.etag` lets PermissionError through (only FileNotFoundError and
    NotADirectoryError are caught), and `scan_papers` stats every watched name at each
    sync: every sync fails until the folder is readable again — though the walk skips such
    a folder and `Vault.etags` treats it as gone. (Simulated: tests run as root here.)"""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    note.unlink()
    _age(data_dir)
    assert not sync(config).errors  # looked for: gone
    (vault / "Private").mkdir()
    (vault / "Private" / "diary.md").write_text("Dear diary\n")
    assert not sync(config).errors  # a new name: read, watched
    with State(vault) as state:
        assert "Private/diary.md" in (state.get_meta("missing_watch") or "")
    real_stat = os.stat
    private = str(vault / "Private")

    def stat(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).startswith(private + "/"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(Vault, "markdown_files", _without(Vault.markdown_files, "Private/"))
    result = sync(config)  # must not raise
    assert not result.errors


def _without(walk, prefix: str):  # type: ignore[no-untyped-def]
    """`Vault.markdown_files` as `os.walk` gives it when a folder cannot be listed."""

    def files(self):  # type: ignore[no-untyped-def]
        return (rel for rel in walk(self) if not rel.startswith(prefix))

    return files


def test_a_paste_between_the_head_read_and_the_stat_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`scan_papers` reads the heads of `look`, then stats them for the watch list: a save
    landing in between is recorded as seen though its text was never read, and no later
    sync reads the note again (the daemon's sync for that save finds the etag unchanged).
    Taking the etag before the read closes the window."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    text = note.read_text()
    note.unlink()
    _age(data_dir)
    assert not sync(config).errors
    untitled = note.parent / "Untitled.md"
    untitled.write_text("")
    real = Vault.zotero_keys
    pasted: list[bool] = []

    def zotero_keys(self, rels, *args):  # type: ignore[no-untyped-def]
        found = real(self, rels, *args)
        if not pasted:
            untitled.write_text(text)  # the paste, just after the head was read
            pasted.append(True)
        return found

    monkeypatch.setattr(Vault, "zotero_keys", zotero_keys)
    assert not sync(config).errors
    monkeypatch.setattr(Vault, "zotero_keys", real)
    assert not sync(config).errors  # the daemon's sync for the paste
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None
        assert found.path == untitled.relative_to(vault).as_posix(), "the paste was never read"


def test_a_paste_into_an_empty_note_during_the_walk_is_not_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk branch of `scan_papers` reads every head (`find_zotero_key`), and only then
    stats `vault.keyless()` to keep the empty ones. A paste into an empty Untitled.md that
    lands after the walk read its (empty) head but before that stat makes it non-empty: it
    is not watched, and its name is an old one at every later sync, so it is never read
    again (the same window e7a6943 closed for the other branch). The walk can even have run
    in planning (`plan.py` calls `find_zotero_key`), long before `scan_papers`."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    untitled = note.parent / "Untitled.md"
    untitled.write_text("")  # "New note", synced while nothing is missing
    assert not sync(config).errors
    text = note.read_text()
    note.unlink()  # copied, then deleted
    _age(data_dir)
    real = Vault.zotero_keys
    pasted: list[bool] = []

    def zotero_keys(self, rels, *args):  # type: ignore[no-untyped-def]
        found = real(self, rels, *args)
        if args and not pasted:  # the walk: Untitled.md was read empty
            untitled.write_text(text)  # the paste, just after
            pasted.append(True)
        return found

    monkeypatch.setattr(Vault, "zotero_keys", zotero_keys)
    assert not sync(config).errors  # the walk
    assert pasted
    monkeypatch.setattr(Vault, "zotero_keys", real)
    assert not sync(config).errors  # the daemon's sync for the paste
    assert not sync(config).errors
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None
        assert found.path == untitled.relative_to(vault).as_posix(), "the paste was never read"


def test_a_watched_note_that_now_carries_a_key_is_no_longer_watched(tmp_path: Path) -> None:
    """e7a6943 dropped from the watch every note that carries a key ("a note that carries a
    key already ... is not watched"), watched ones included. `_look_again` starts the watch
    from the old watched names and only filters `now` (the looked-into names) by key: a
    watched note whose paste was found stays watched, as long as another note is missing
    (one more stat each sync, its head read again at every edit)."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    other = _note_of(vault, keys["filler0"])
    untitled = note.parent / "Untitled.md"
    untitled.write_text("")  # "New note", synced while nothing is missing
    assert not sync(config).errors
    text = note.read_text()
    note.unlink()
    other.unlink()  # stays missing: the watch is kept
    _age(data_dir)
    assert not sync(config).errors  # the walk: Untitled.md (empty) is watched
    with State(vault) as state:
        assert "Untitled.md" in (state.get_meta("missing_watch") or "")
    untitled.write_text(text)  # the paste
    assert not sync(config).errors  # found through the watch
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None and found.path.endswith("Untitled.md")
        watch = json.loads(state.get_meta("missing_watch") or "{}")
    assert found.path not in watch, "a note that carries a key is still watched"


def test_a_note_renamed_after_the_planner_s_walk_is_found_by_its_new_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new Zotero item makes the planner walk the vault (`_assign_paths`), and `Vault`
    keeps that key index. The user renames a paper note after the walk, before
    `scan_papers` (a sync service delivers it as delete, then create). The note is missing
    at its recorded path: `_look_again` walks (a new digest), and the cached index still
    gives the old path, so `found` is not None and the new name — read, as it is "made
    since" the walk, and carrying the key — is never picked. `_found` sees the old path gone;
    the new name is stored as an old one: no later sync reads it again."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    renamed = note.parent / "Renamed.md"
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.add_item(title="A new paper", date="2024")  # the planner walks for its name
        db.commit()
    _age(data_dir)
    real = Vault.zotero_keys
    done: list[bool] = []

    def zotero_keys(self, rels, *args):  # type: ignore[no-untyped-def]
        found = real(self, rels, *args)
        if args and not done:  # the walk (planning): then the rename
            note.rename(renamed)
            done.append(True)
        return found

    monkeypatch.setattr(Vault, "zotero_keys", zotero_keys)
    assert not sync(config).errors
    assert done
    monkeypatch.setattr(Vault, "zotero_keys", real)
    assert not sync(config).errors
    assert not sync(config).errors
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None
        assert found.path == renamed.relative_to(vault).as_posix(), "the renamed note is lost"
