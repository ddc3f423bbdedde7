"""Paper notes moved, deleted or pasted elsewhere in Obsidian are found again by their key,
without walking the whole vault at every sync while a note stays missing.

Each docstring tells a failure to avoid; the test asserts the behaviour."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

from bridge.config import Config
from bridge.state import State
from bridge.sync import sync
from bridge.vault.fs import Vault
from tests.test_incremental_retries import (
    _age,
    _note_of,
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    _synced,
)


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
