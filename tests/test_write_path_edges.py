"""The write path's edges against real files: fallbacks without a swap or hard links, saves
into the bridge's own file, owners and read-only folders, a vault moved mid-sync, and the
in-flight rules on a user's own cuts (docs/RELIABILITY.md)."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.errors import NoteError
from bridge.state import State
from bridge.sync import SyncOptions, sync
from bridge.vault import fs, swap
from tests.helpers import USER_LINE, ModelSource, make_item, one_paper_vault, settled
from tests.helpers import retitle as _retitle

_setup = one_paper_vault


def _age(path: Path, seconds: float = 30.0) -> None:
    settled(path, seconds)


def _edited_then_retitled(tmp_path: Path):
    """`_setup`, then the user's paragraph (settled) and a new title in Zotero."""
    vault, source, config, item, note = _setup(tmp_path)
    note.write_bytes(note.read_bytes() + USER_LINE.encode())
    _age(note)
    _retitle(source, item, "New title from Zotero")
    return vault, source, config, item, note


# --- fs.py: the write-back without swap and without hard links ---------------------------


def test_without_swap_or_hard_links_the_user_s_file_is_set_aside_and_put_back(
    tmp_path, monkeypatch
):
    """No RENAME_EXCHANGE and no hard links (exFAT/FAT USB drives, some SMB/FUSE mounts): the
    user's file is renamed aside during the replace. An editor that truncated it just before
    and writes 3 s later must find its write in the note: the file is renamed back (an earlier
    design copied the bytes back once quiet, and wrote an empty note over the merge)."""
    vault, source, config, item, note = _setup(tmp_path)
    note.write_bytes(note.read_bytes() + USER_LINE.encode())
    _age(note)
    _retitle(source, item, "New title from Zotero")
    monkeypatch.setattr(swap, "_RENAME2", None)
    real_link = os.link

    def no_links(src, dst, *a, **k):
        if str(dst).startswith(".zob-"):
            raise OSError(errno.EPERM, "no hard links here")
        return real_link(src, dst, *a, **k)

    monkeypatch.setattr(os, "link", no_links)
    real_rename = os.rename
    threads = []

    def rename(src, dst, *a, **k):  # the user's file set aside, by rename (no hard links)
        if str(src) == note.name and not threads:
            fd = os.open(note, os.O_WRONLY | os.O_TRUNC)  # the editor starts its save

            def finish():
                time.sleep(3.0)
                os.write(fd, b"too late")
                os.close(fd)

            threads.append(threading.Thread(target=finish))
            threads[0].start()
        return real_rename(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", rename)
    sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    for t in threads:
        t.join()
    assert threads, "the window was not reached"
    now = note.read_text(encoding="utf-8")
    assert now == "too late", f"the editor's save is not what the note holds: {now[:200]!r}"


# --- fs.py: links, odd files, folders ----------------------------------------------------


def test_hard_link_to_a_file_outside_the_vault_is_never_written(tmp_path):
    vault, source, config, item, note = _setup(tmp_path)
    outside = tmp_path / "outside.md"
    os.link(note, outside)
    before = outside.read_bytes()
    note.write_bytes(note.read_bytes() + USER_LINE.encode())  # in place: both names
    before = outside.read_bytes()
    _age(note)
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    assert outside.read_bytes() == before
    assert "New title from Zotero" in note.read_text() and "My precious" in note.read_text()
    assert result.updated == 1, result


def test_a_note_that_is_a_link_to_another_note_is_not_written_through(tmp_path):
    vault, source, config, item, note = _setup(tmp_path)
    target = vault / "Elsewhere.md"
    note.rename(target)
    note.symlink_to(target)
    target.write_bytes(target.read_bytes() + USER_LINE.encode())
    _age(target)
    before = target.read_bytes()
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    assert target.read_bytes() == before and note.is_symlink()
    assert result.errors, result


def test_a_note_replaced_by_a_link_loop_is_skipped_and_the_sync_goes_on(tmp_path):
    """A link to itself where a note was (a botched `ln -s`): its read raised RuntimeError
    ("Symlink loop") out of `Vault.abs`, and the sync ended there, the other items unsynced."""
    vault, source, config, item, note = _setup(tmp_path)
    note.unlink()
    note.symlink_to(note)
    source.put(make_item("Another paper entirely", key="WXYZ6789"))
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    assert result.created == 1 and result.skipped == 1, result
    assert "link loop" in result.errors[0]["message"]
    assert note.is_symlink() and os.readlink(note) == str(note)


def test_a_folder_replaced_by_a_link_loop_does_not_end_the_sync(tmp_path):
    """A folder of notes replaced by a link to itself: `Vault.etag` raised ELOOP (it took
    only a missing file or folder for "not there"), and the sync ended before the other items.
    Its notes cannot be reached, as when the folder is gone; nothing is written there."""
    vault, source, config, item, note = _setup(tmp_path)
    reading = vault / "Reading"
    reading.mkdir()
    note.rename(reading / note.name)
    assert sync(config, source=source).ok
    kept = (reading / note.name).read_bytes() + USER_LINE.encode()
    (reading / note.name).unlink()
    reading.rmdir()
    reading.symlink_to(reading)
    source.put(make_item("Another paper entirely", key="WXYZ6789"))
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    assert result.created == 1, result
    assert reading.is_symlink() and os.readlink(reading) == str(reading)
    reading.unlink()  # the user mends the folder: the note comes back and is merged
    reading.mkdir()
    (reading / note.name).write_bytes(kept)
    _age(reading / note.name)
    assert sync(config, source=source).ok
    merged = (reading / note.name).read_text()
    assert "New title from Zotero" in merged and USER_LINE in merged


def test_a_note_replaced_by_a_folder_mid_sync_is_skipped(tmp_path, monkeypatch):
    vault, source, config, item, note = _setup(tmp_path)
    note.write_bytes(note.read_bytes() + USER_LINE.encode())
    _age(note)
    _retitle(source, item, "New title from Zotero")
    real = fs.Vault.replace

    def replace(self, rel, *a, **k):
        saved = note.read_bytes()
        note.unlink()
        note.mkdir()
        (note / "kept.md").write_bytes(saved)
        return real(self, rel, *a, **k)

    monkeypatch.setattr(fs.Vault, "replace", replace)
    result = sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    assert note.is_dir() and (note / "kept.md").exists()
    assert result.errors or result.deferred, result


def test_read_only_folder_is_a_wish_also_for_root(tmp_path):
    """`_check_unchanged` honours a read-only *note* even as root; a read-only *folder* (which
    bridge.retries fingerprints as a thing the user changes to let a write through) is not
    honoured when the bridge runs as root: new notes are created in it."""
    vault = tmp_path / "vault"
    (vault / "Papers").mkdir(parents=True)
    (vault / "Papers").chmod(0o555)
    source = ModelSource([make_item("A paper", key="ABCD2345")])
    try:
        result = sync(Config(vault=vault, settle_seconds=1), source=source)
    finally:
        (vault / "Papers").chmod(0o755)
    if os.geteuid() != 0:
        pytest.skip("only as root")
    assert not list((vault / "Papers").glob("*.md")), result


def test_nested_folders_swapped_mid_sync(tmp_path):
    """Three levels of cached handles: the top one is moved away and the tree made again."""
    root = tmp_path / "vault"
    root.mkdir()
    v = fs.Vault(root)
    v.create("A/B/C/x.md", "x\n")
    (root / "A").rename(tmp_path / "A.old")
    (root / "A/B/C").mkdir(parents=True)
    v.create("A/B/C/y.md", "y\n")
    assert (root / "A/B/C/y.md").exists()
    assert not (tmp_path / "A.old/B/C/y.md").exists()
    v.close()


def test_nested_folder_swapped_for_a_link_mid_sync(tmp_path):
    root = tmp_path / "vault"
    root.mkdir()
    outside = tmp_path / "outside"
    v = fs.Vault(root)
    v.create("A/B/x.md", "x\n")
    (root / "A").rename(outside)
    (root / "A").symlink_to(outside)
    with pytest.raises((NoteError, OSError)):
        v.create("A/B/y.md", "y\n")
    assert not (outside / "B/y.md").exists()
    v.close()


def test_vault_root_moved_mid_sync_is_refused(tmp_path):
    """The vault's own folder handle is checked too: a vault moved mid-sync takes no more
    writes (and a new folder made at its path gets none either)."""
    root = tmp_path / "vault"
    root.mkdir()
    v = fs.Vault(root)
    v.create("x.md", "x\n")
    root.rename(tmp_path / "moved")
    root.mkdir()
    with pytest.raises(NoteError, match="moved or replaced during the sync"):
        v.create("y.md", "y\n")
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == ["x.md"]
    assert list(root.iterdir()) == []
    v.close()


# --- the in-flight rules -----------------------------------------------------------------


def _edited_then_trimmed(tmp_path, typed: str, trimmed: str):
    vault, source, config, item, note = _setup(tmp_path)
    text = note.read_text(encoding="utf-8")
    note.write_text(text + typed, encoding="utf-8")
    _age(note, 60)
    sync(config, source=source)  # the bridge sees the user's text (touch: seen_text)
    note.write_text(text + trimmed, encoding="utf-8")
    _age(note, 30)
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    return note, result


def test_user_deletes_whole_lines_at_the_end_is_merged(tmp_path):
    note, result = _edited_then_trimmed(tmp_path, "\nLine one.\nLine two.\n", "\nLine one.\n")
    assert "New title from Zotero" in note.read_text(), result.errors


def test_user_deletes_the_last_word_of_their_text_is_merged(tmp_path):
    """Obsidian writes no final newline: the user's last line ends the file. Deleting its
    last word (and pausing > settle) makes the note a strict prefix of the text the bridge
    saw that 'ends in the middle of a line': it is left alone and reported as a save that did
    not finish, and Zotero's changes stop reaching it until the user types more."""
    note, result = _edited_then_trimmed(tmp_path, "\nGreat paper, really", "\nGreat paper,")
    assert "New title from Zotero" in note.read_text(), result.errors


def test_crlf_note_trimmed_by_the_user_is_merged(tmp_path):
    vault, source, config, item, note = _setup(tmp_path)
    text = note.read_text(encoding="utf-8").replace("\n", "\r\n")
    note.write_bytes((text + "Line one.\r\nLine two.\r\n").encode())
    _age(note, 60)
    sync(config, source=source)
    note.write_bytes((text + "Line one.\r\n").encode())
    _age(note, 30)
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    assert "New title from Zotero" in note.read_text(), result.errors


def test_missing_seen_text_row_does_not_freeze_or_lose(tmp_path):
    vault, source, config, item, note = _setup(tmp_path)
    with State(vault) as state:
        state.db.execute("DELETE FROM seen_text")
        state.db.commit()
    text = note.read_text(encoding="utf-8")
    note.write_text(text + USER_LINE, encoding="utf-8")
    _age(note)
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    now = note.read_text()
    assert "New title from Zotero" in now and "My precious" in now, result.errors


# --- deferrals ---------------------------------------------------------------------------


def test_a_deferral_is_not_lost_when_the_next_sync_runs_later(tmp_path):
    """`zob watch` style (no waiting): the note is being saved, then settles; the next sync,
    with nothing new in Zotero, must still bring Zotero's change."""
    vault, source, config, item, note = _setup(tmp_path)
    note.write_text(note.read_text() + USER_LINE, encoding="utf-8")  # saved just now
    _retitle(source, item, "New title from Zotero")
    first = sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    assert first.deferred, first
    _age(note)
    second = sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    now = note.read_text()
    assert "New title from Zotero" in now and "My precious" in now, second


def test_zob_sync_waits_and_merges_a_note_being_saved(tmp_path):
    vault, source, config, item, note = _setup(tmp_path)
    note.write_text(note.read_text() + USER_LINE, encoding="utf-8")
    _retitle(source, item, "New title from Zotero")
    started = time.monotonic()
    result = sync(config, source=source)
    assert time.monotonic() - started < 10
    now = note.read_text()
    assert "New title from Zotero" in now and "My precious" in now, result


def test_put_back_never_deletes_a_save_made_into_the_bridge_s_file(tmp_path, monkeypatch):
    """`_put_back` after a swap: the user's file U (saved into during the write) goes back
    to the note's name, which holds the bridge's file O. It checks that the name still holds
    O by inode only: an editor that saved in place into O meanwhile (open O_TRUNC, write —
    how Obsidian saves) has its newest save deleted with O."""
    vault, source, config, item, note = _edited_then_retitled(tmp_path)
    real_x = swap._exchange
    calls = []

    def hooked(folder, a, b):
        calls.append((a, b))
        if len(calls) == 2 and b == note.name:  # `_put_back` swaps the user's file back
            with open(note, "r+b") as handle:  # the editor saves in place into O meanwhile
                handle.truncate(0)
                handle.write(b"NEWEST SAVE of the user\n")
        done = real_x(folder, a, b)
        if len(calls) == 1 and b == note.name:  # a save landing in U during the write
            with open(os.path.join(note.parent, a), "ab") as handle:
                handle.write(b"an older save\n")
        return done

    monkeypatch.setattr(swap, "_exchange", hooked)
    sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    texts = b"".join(p.read_bytes() for p in note.parent.iterdir() if p.is_file())
    assert b"NEWEST SAVE" in texts, sorted(p.name for p in note.parent.iterdir())


def test_zob_new_during_a_sync_does_not_sweep_away_the_user_s_file(tmp_path, monkeypatch):
    """Between the swap and its check, the user's file is named `.zob-XXXX.tmp` (and in the
    fallback, a second link to it is). `zob new` once swept every `.zob-*.tmp` in the vault
    without the sync lock: run while `zob watch` synced, it deleted the user's file — with a
    save that landed in it during the write. Now it sweeps nothing and waits for the lock."""
    from bridge.workflow.newnote import new_paper_note

    vault, source, config, item, note = _edited_then_retitled(tmp_path)
    source.put(make_item("Another paper entirely", key="WXYZ6789"))
    real_x = swap._exchange
    calls = []

    def hooked(folder, a, b):
        done = real_x(folder, a, b)
        if not calls and b == note.name:
            calls.append(a)
            with open(os.path.join(note.parent, a), "ab") as handle:  # the save lands in U
                handle.write(b"Typed during the write.\n")
            made.append(
                threading.Thread(  # another process's `zob new`, while this sync writes
                    target=new_paper_note,
                    args=(config, "Another paper entirely"),
                    kwargs={"first": True, "source": source},
                )
            )
            made[0].start()
            time.sleep(0.5)
        return done

    made: list[threading.Thread] = []
    monkeypatch.setattr(swap, "_exchange", hooked)
    sync(config, source=source, options=SyncOptions(wait_for_saves=False))
    assert calls and made
    made[0].join(timeout=60)
    assert not made[0].is_alive()
    texts = b"".join(p.read_bytes() for p in note.parent.iterdir() if p.is_file())
    assert b"Typed during the write." in texts, sorted(p.name for p in note.parent.iterdir())


def test_an_update_keeps_the_note_s_owner(tmp_path):
    """Run as root (a container, a system service): the swapped-in file is root's, mode
    0644 — the user's editor, which saves in place, can no longer save the note."""
    if os.geteuid() != 0:
        pytest.skip("only as root")
    vault, source, config, item, note = _setup(tmp_path)
    os.chown(note, 1000, 1000)
    note.write_bytes(note.read_bytes() + USER_LINE.encode())
    _age(note)
    _retitle(source, item, "New title from Zotero")
    result = sync(config, source=source)
    assert result.updated == 1, result
    st = note.stat()
    assert (st.st_uid, st.st_gid) == (1000, 1000), (st.st_uid, st.st_gid)
