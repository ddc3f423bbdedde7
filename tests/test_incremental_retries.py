"""What the incremental shortcuts must not skip: an erased item whose note could not be
marked yet, and method notes after a settings change (found by a review of the shortcuts)."""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

from bridge.config import Config
from bridge.daemon import VaultFilter
from bridge.retries import Held
from bridge.sources.sqlite import SqliteSource
from bridge.state import State
from bridge.sync import sync
from tests.helpers import ModelSource, make_item, vault_config
from tests.test_sqlite_source import (
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    fill_sample,
    new_db,
)


def _age(path: Path, seconds: float = 30.0) -> None:
    """Every file under `path` last modified `seconds` ago: settled (fingerprint taken)."""
    when = time.time_ns() - int(seconds * 1e9)
    for item in [path, *path.rglob("*")]:
        os.utime(item, ns=(when, when))


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


def _sqlite_vault(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
        for index in range(3):
            keys[f"filler{index}"] = db.add_item(title=f"Filler {index}", date="2010")
        db.commit()
    vault = tmp_path / "vault"
    vault.mkdir()
    return tmp_path / "Zotero", vault, keys


def _synced(tmp_path: Path) -> tuple[Path, Path, dict[str, str], Config]:
    """`_sqlite_vault`, its config, and a first sync done."""
    data_dir, vault, keys = _sqlite_vault(tmp_path)
    config = vault_config(vault, source="sqlite", zotero_dir=data_dir)
    sync(config)
    return data_dir, vault, keys, config


def _retitle(data_dir: Path, key: str, title: str) -> None:
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_field(key, "title", title)
        db.commit()


def _note_of(state_dir: Path, key: str) -> Path:
    with State(state_dir) as state:
        note = state.note(key)
        assert note is not None
        return state_dir / note.path


@pytest.mark.parametrize("zotero_changes_meanwhile", [False, True])
def test_erased_item_whose_note_could_not_be_marked_is_marked_later(
    tmp_path: Path, zotero_changes_meanwhile: bool
) -> None:
    data_dir, vault, keys = _sqlite_vault(tmp_path)
    config = vault_config(vault, source="sqlite", zotero_dir=data_dir)
    sync(config)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)  # e.g. a sync service holding it, or a read-only file: one failed write
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.erase(keys["filler0"])
        db.commit()
    failed = sync(config)
    assert [e["path"] for e in failed.errors] == [note.relative_to(vault).as_posix()]
    note.chmod(0o644)
    if zotero_changes_meanwhile:  # an unrelated edit: a cursor read with the same item keys
        with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
            db.set_field(keys["filler1"], "title", "Filler 1, revised")
            db.commit()
    else:  # nothing changed in Zotero: its files settle, and the fingerprint matches
        _age(data_dir)
    sync(config)
    sync(config)
    assert "deleted-in-zotero" in note.read_text()


def _chain() -> ModelSource:
    return ModelSource(
        [
            make_item("Base paper", key="BASEPAP1", citation_key="base2001", tags=("proposes:M1",)),
            make_item("Second paper", key="SECOND01", citation_key="second2002",
                      tags=("proposes:M2", "extends:M1")),
            make_item("Third paper", key="THIRD001", citation_key="third2003",
                      tags=("proposes:M3", "extends:M2")),
            make_item("Fourth paper", key="FOURTH01", citation_key="fourth2004",
                      tags=("proposes:M4", "extends:M3")),
        ]
    )  # fmt: skip


def test_a_new_mermaid_depth_reaches_the_method_notes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    sync(vault_config(tmp_path / "a", mermaid_depth=1), source=_chain())
    sync(vault_config(tmp_path / "a", mermaid_depth=3), source=_chain())
    sync(vault_config(tmp_path / "b", mermaid_depth=3), source=_chain())  # fresh, at depth 3
    fresh = (tmp_path / "b" / "Methods" / "M1.md").read_text()
    assert (tmp_path / "a" / "Methods" / "M1.md").read_text() == fresh


def test_a_title_whose_note_was_read_only_arrives_once_the_note_is_writable(
    tmp_path: Path,
) -> None:
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    failed = sync(config)
    assert [e["path"] for e in failed.errors] == [note.relative_to(vault).as_posix()]
    assert "read-only" in failed.errors[0]["message"]
    assert "Filler 0, revised" not in note.read_text()
    note.chmod(0o644)  # as the message asks; Zotero's files are unchanged since
    _age(data_dir)
    again = sync(config)
    assert not again.errors
    assert "Filler 0, revised" in note.read_text()
    sync(config)  # and the sync after that has nothing left to catch up on
    assert sync(config).updated == 0


def test_a_note_saved_in_obsidian_while_the_sync_writes_it_gets_zotero_s_change_once_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The save just before the bridge's write is kept; the sync waits for the note to settle
    and then merges Zotero's change into it — in the same `zob sync`."""
    from bridge.vault.fs import Vault

    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler1"])
    _retitle(data_dir, keys["filler1"], "Filler 1, revised")
    replace = Vault.replace
    saves = []

    def save_first(self: Vault, rel: str, *args: object, **kwargs: object) -> str:
        if rel == note.relative_to(vault).as_posix() and not saves:  # Obsidian saves first
            with open(note, "a", encoding="utf-8") as handle:
                handle.write("\nMy thought, typed while the sync ran.\n")
            saves.append(rel)
        return replace(self, rel, *args, **kwargs)

    monkeypatch.setattr(Vault, "replace", save_first)
    result = sync(config)
    assert saves and not result.errors and not result.deferred
    text = note.read_text()
    assert "Filler 1, revised" in text
    assert "My thought, typed while the sync ran." in text
    _age(data_dir)
    assert sync(config).updated == 0


def test_a_paper_note_moved_in_obsidian_stays_in_its_method_note_and_the_queue(
    tmp_path: Path,
) -> None:
    data_dir, vault, keys, config = _synced(tmp_path)
    method = vault / "Methods" / "ResNet.md"
    note = _note_of(vault, keys["resnet"])
    assert f"[[{note.stem}]]" in method.read_text()
    queue = vault / "Reading queue.md"
    assert f"[[{note.stem}]]" in queue.read_text()
    moved = vault / "Papers" / "Vision" / note.name  # the user files it away in Obsidian
    moved.parent.mkdir()
    note.rename(moved)
    _age(data_dir)  # nothing changes in Zotero: its item is not read again
    result = sync(config)
    assert not result.errors
    assert f"[[{note.stem}]]" in method.read_text()
    assert f"[[{note.stem}]]" in queue.read_text()
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None and found.path == moved.relative_to(vault).as_posix()
    # and Zotero's changes follow it
    _retitle(data_dir, keys["resnet"], "Deep Residual Learning, revised")
    sync(config)
    assert "Deep Residual Learning, revised" in moved.read_text()
    assert not note.exists()


def test_a_paper_note_deleted_in_obsidian_leaves_its_method_note_for_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.vault.fs import Vault

    data_dir, vault, keys, config = _synced(tmp_path)
    method = vault / "Methods" / "ResNet.md"
    note = _note_of(vault, keys["resnet"])
    note.unlink()
    _age(data_dir)
    looked_for: list[str] = []
    find = Vault.find_zotero_key

    def counted(self: Vault, key: str, etag: str | None = None) -> str | None:
        looked_for.append(key)
        return find(self, key, etag)

    monkeypatch.setattr(Vault, "find_zotero_key", counted)
    assert not sync(config).errors
    assert f"[[{note.stem}]]" not in method.read_text()
    assert looked_for == [keys["resnet"]]
    sync(config)  # still gone: not looked for again (a walk of the whole vault)
    assert looked_for == [keys["resnet"]]
    monkeypatch.undo()
    _retitle(data_dir, keys["resnet"], "Deep Residual Learning, revised")
    sync(config)
    assert not note.exists()
    assert not list(vault.rglob("Deep Residual Learning*"))  # never recreated


def _cursor(vault: Path) -> str | None:
    with State(vault) as state:
        row = state.db.execute("SELECT value FROM meta WHERE key LIKE 'cursor:%'").fetchone()
        return row[0] if row else None


def _held(vault: Path) -> Held | None:
    with State(vault) as state:
        key = state.db.execute("SELECT key FROM meta WHERE key LIKE 'cursor:%'").fetchone()[0]
        return Held.load(state, key)


def test_an_item_that_cannot_be_rendered_does_not_hold_the_cursor_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading it again cannot help (a fix in Zotero is read anyway): the sync moves on and
    holds nothing, while a failed write of another note in the same sync holds the cursor
    read before it, beside the one that moved on."""
    from bridge.vault.render import Renderer

    data_dir, vault, keys, config = _synced(tmp_path)
    before = _cursor(vault)
    _retitle(data_dir, keys["filler2"], "Filler 2, revised")
    paper = Renderer.paper

    def crash_on_filler2(self: Renderer, item: object, *args: object, **kw: object) -> object:
        if getattr(item, "key", None) == keys["filler2"]:
            raise ValueError("an odd item")
        return paper(self, item, *args, **kw)

    monkeypatch.setattr(Renderer, "paper", crash_on_filler2)
    crashed = sync(config)
    assert ["could not render item" in e["message"] for e in crashed.errors] == [True]
    assert _cursor(vault) != before  # moved on
    assert _held(vault) is None
    moved_on = _cursor(vault)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_field(keys["filler0"], "title", "Filler 0, revised")
        db.set_field(keys["filler2"], "title", "Filler 2, revised again")
        db.commit()
    both = sync(config)
    assert len(both.errors) == 2
    assert _cursor(vault) != moved_on
    held = _held(vault)
    assert held is not None and held.cursor == moved_on  # kept for the read-only note
    assert list(held.paths) == [note.relative_to(vault).as_posix()]
    note.chmod(0o644)


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many items each `SqliteSource.read` returned, in order."""
    sizes: list[int] = []
    read = SqliteSource.read

    def counted(self: SqliteSource, since: str | None = None):  # noqa: ANN202
        snapshot = read(self, since)
        sizes.append(len(snapshot.items))
        return snapshot

    monkeypatch.setattr(SqliteSource, "read", counted)
    return sizes


def test_a_note_that_stays_read_only_does_not_make_every_later_sync_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user may keep a note read-only on purpose ("the read-only bit is a wish"). While it
    fails, the cursor is held; the held cursor's children digest no longer matches once any
    annotation was deleted (or a Better BibTeX key, or a cached image, changed), so every
    later read from it returns the whole library — for as long as the note stays read-only
    (in the daemon: at every Zotero save and every note edit)."""
    data_dir, vault, keys, config = _synced(tmp_path)
    frozen = _note_of(vault, keys["filler0"])
    frozen.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors  # held from here on
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.erase(keys["note_ann"])  # the user deletes one annotation in Zotero's reader
        db.commit()
    sync(config)  # a full read: expected once, children cannot be seen by timestamp
    sizes = _count_reads(monkeypatch)
    _retitle(data_dir, keys["filler1"], "Filler 1, revised")
    sync(config)
    _retitle(data_dir, keys["filler2"], "Filler 2, revised")
    sync(config)
    _age(data_dir)  # Zotero idle: its files settle
    sync(config)
    # each later sync reads what changed since the last (the same steps with a writable note
    # read [1, 1, 0] items), never again the whole library
    assert sizes == [1, 1, 0], sizes
    frozen.chmod(0o644)  # as the skip asks: now the held read brings Zotero's change
    assert not sync(config).errors
    assert "Filler 0, revised" in frozen.read_text()
    assert _held(vault) is None
    sync(config)
    assert sizes[-1] == 0  # nothing held any more: nothing read again


def test_a_moved_note_is_told_from_the_user_s_copy_by_its_inode(tmp_path: Path) -> None:
    """Obsidian's "Make a copy" leaves `X 1.md` beside `X.md`, both with the same zotero_key;
    the user then files the original into a subfolder. The rename kept the original's inode
    (the etag the state DB holds) — yet the first note of the vault walk wins, the copy, and
    the state DB, the method note and every later Zotero change follow the copy."""
    data_dir, vault, keys, config = _synced(tmp_path)
    original = _note_of(vault, keys["resnet"])
    copy = original.with_name(f"{original.stem} 1.md")
    shutil.copy2(original, copy)
    moved = vault / "Papers" / "Vision" / original.name
    moved.parent.mkdir()
    original.rename(moved)
    _age(data_dir)
    assert not sync(config).errors
    with State(vault) as state:
        note = state.note(keys["resnet"])
        assert note is not None
        assert note.path == moved.relative_to(vault).as_posix()
    _retitle(data_dir, keys["resnet"], "Deep Residual Learning, revised")
    sync(config)
    assert "Deep Residual Learning, revised" in moved.read_text()
    assert "Deep Residual Learning, revised" not in copy.read_text()  # the user's copy


def test_a_note_that_comes_back_elsewhere_is_found_although_the_same_notes_were_missing(
    tmp_path: Path,
) -> None:
    """A move that arrives as delete + create (Obsidian Sync, Syncthing, iCloud, a git
    checkout), with a sync in between: the missing set is the same id set at the next sync,
    so the `missing_papers` digest says "looked for already" and the vault is not walked;
    the note, back in a subfolder, stays out of its method note and the queue until its
    item changes in Zotero or another note goes missing."""
    data_dir, vault, keys, config = _synced(tmp_path)
    method = vault / "Methods" / "ResNet.md"
    note = _note_of(vault, keys["resnet"])
    text = note.read_text()
    note.unlink()  # the first half of the move reaches the vault
    _age(data_dir)
    assert not sync(config).errors
    assert f"[[{note.stem}]]" not in method.read_text()
    back = vault / "Papers" / "Vision" / note.name  # the second half
    back.parent.mkdir()
    back.write_text(text)
    assert not sync(config).errors
    with State(vault) as state:
        found = state.note(keys["resnet"])
        assert found is not None and found.path == back.relative_to(vault).as_posix()
    assert f"[[{note.stem}]]" in method.read_text()


def test_the_daemon_syncs_when_a_read_only_note_is_made_writable(tmp_path: Path) -> None:
    """The skip says "make it writable to receive Zotero's changes", and the cursor is held
    for it. chmod changes neither mtime, size nor inode: the daemon's filter sees no change,
    so `zob watch` does not sync until something else happens in Zotero or the vault."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["filler0"])
    note.chmod(0o444)
    _retitle(data_dir, keys["filler0"], "Filler 0, revised")
    assert sync(config).errors
    watched = VaultFilter(vault.resolve(), config.papers_folder)
    with State(vault) as state:
        watched.refresh(state)
    rel = note.relative_to(vault).as_posix()
    note.chmod(0o644)  # as asked; watchdog reports it as a modification (IN_ATTRIB)
    assert watched.changed(rel) is not False


def test_a_paper_note_renamed_to_a_name_that_is_not_utf8_stops_nothing(tmp_path: Path) -> None:
    """A shell `mv` can give a note a Latin-1 name, which the state DB cannot record: the
    walk that looks for moved notes skips it (the note counts as deleted by the user), the
    sync goes on, and the file is left as it is."""
    data_dir, vault, keys, config = _synced(tmp_path)
    note = _note_of(vault, keys["resnet"])
    text = note.read_bytes()
    odd = os.fsencode(note.parent) + b"/caf\xe9.md"
    os.rename(note, odd)
    _age(data_dir)
    assert not sync(config).errors
    (vault / "Papers" / "A new note.md").write_text("Met Kaiming today.\n")  # names change
    _retitle(data_dir, keys["resnet"], "Deep Residual Learning, revised")
    assert not sync(config).errors
    with open(odd, "rb") as handle:
        assert handle.read() == text
    assert not note.exists()
