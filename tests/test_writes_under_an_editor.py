"""Note writes against an editor saving at the worst moments, and a vault changing under a sync:
the cases an adversarial review of the write path found (docs/RELIABILITY.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.sync import sync
from bridge.vault import fs, swap
from tests.helpers import USER_LINE, ModelSource, make_item, one_paper_vault
from tests.helpers import retitle as _retitle

REPO = Path(__file__).resolve().parent.parent


def _setup(tmp_path: Path, settle: float = 0.0):
    return one_paper_vault(tmp_path, settle)


def _user_edit(note: Path) -> bytes:
    text = note.read_bytes() + USER_LINE.encode()
    note.write_bytes(text)
    old = time.time() - 30
    os.utime(note, (old, old))  # settled long ago
    return text


def _editor_save_around(monkeypatch, note: Path, save: bytes, gap: float, hook: str):
    """Obsidian-style save: open(O_TRUNC) just before the bridge's swap/replace of the note,
    the write `gap` seconds later (another thread: the editor is another process)."""
    fired = []
    threads = []

    def start_save():
        fd = os.open(note, os.O_WRONLY | os.O_TRUNC)

        def finish():
            time.sleep(gap)
            os.write(fd, save)
            os.close(fd)

        t = threading.Thread(target=finish)
        t.start()
        threads.append(t)

    if hook == "replace":
        real = os.replace

        def hooked(src, dst, *a, **k):
            if not fired and str(dst).endswith(note.name):
                fired.append(1)
                start_save()
            return real(src, dst, *a, **k)

        monkeypatch.setattr(os, "replace", hooked)
    else:
        real_x = swap._exchange

        def hooked_x(folder, a, b):
            if not fired and b == note.name:
                fired.append(1)
                start_save()
            return real_x(folder, a, b)

        monkeypatch.setattr(swap, "_exchange", hooked_x)
    return fired, threads


@pytest.mark.parametrize("gap", [0.005, 0.06])
def test_fallback_without_rename_exchange_keeps_a_save_in_progress(tmp_path, monkeypatch, gap):
    """macOS (no renameat2: `_load_RENAME2` returns None off Linux) and Linux file systems
    without RENAME_EXCHANGE (NFS, SMB, many FUSE mounts) take the fallback in `_swap_in`:
    os.replace, then compare, then `_write_back` once the bytes are stable for 20 ms.
    An editor whose write comes > 20 ms after its truncate gets an EMPTY note written back and
    its save goes to the unlinked inode."""
    vault, source, config, item, note = _setup(tmp_path)
    base = _user_edit(note)
    _retitle(source, item, "New title from Zotero")
    save = base + b"A second paragraph typed just now.\n"
    monkeypatch.setattr(swap, "_RENAME2", None)  # as on macOS
    fired, threads = _editor_save_around(monkeypatch, note, save, gap, "replace")
    sync(config, source=source)
    for t in threads:
        t.join()
    assert fired, "the window was not reached"
    now = note.read_bytes()
    assert b"My precious paragraph" in now and b"A second paragraph typed just now" in now, (
        f"user text lost; the note now holds {len(now)} bytes:\n{now[:400]!r}"
    )


@pytest.mark.parametrize("gap", [0.005, 0.06])
def test_exchange_keeps_a_save_in_progress(tmp_path, monkeypatch, gap):
    vault, source, config, item, note = _setup(tmp_path)
    base = _user_edit(note)
    _retitle(source, item, "New title from Zotero")
    save = base + b"A second paragraph typed just now.\n"
    fired, threads = _editor_save_around(monkeypatch, note, save, gap, "exchange")
    sync(config, source=source)
    for t in threads:
        t.join()
    assert fired
    now = note.read_bytes()
    assert b"My precious paragraph" in now and b"A second paragraph typed just now" in now, now


def test_fifo_named_like_a_note_does_not_hang_the_key_walk(tmp_path):
    """A FIFO `x.md` anywhere in the vault hangs `zob sync` as soon as the key walk runs
    (a paper note was moved): `Vault._read_head` opens with a blocking `open()`."""
    home = tmp_path / "home"
    home.mkdir()
    vault = tmp_path / "v"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    cmd = [sys.executable, "-m", "bridge.cli", "sync", "--vault", str(vault), "--source", "sample"]
    vault.mkdir()
    assert subprocess.run(cmd, cwd=REPO, env=env, capture_output=True).returncode == 0
    (vault / "Other").mkdir()
    moved = next((vault / "Papers").glob("*.md"))
    moved.rename(vault / "Other" / moved.name)
    os.mkfifo(vault / "Other" / "fifo.md")
    try:
        run = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("zob sync hung on a FIFO named fifo.md (bridge/vault/fs.py _read_head)")
    assert run.returncode in (0, 1), run


def _age(note: Path, seconds: float = 30) -> None:
    old = time.time() - seconds
    os.utime(note, (old, old))


def test_a_note_the_user_emptied_on_purpose_is_left_alone_with_a_way_out(tmp_path):
    """A note without its properties looks like a save cut short: once settled it is left
    alone and reported, and the message names a way out that works."""
    from bridge.workflow.newnote import new_paper_note

    vault, source, config, item, note = _setup(tmp_path)
    note.write_text("My own notes, no frontmatter.\n")
    _age(note)
    _retitle(source, item, "New title from Zotero")
    first = sync(config, source=source)
    assert first.skipped == 1 and "zob new ABCD2345" in first.errors[0]["message"]
    assert note.read_text() == "My own notes, no frontmatter.\n"  # left alone
    note.unlink()  # the way out the message names
    made = new_paper_note(config, "ABCD2345", source=source)
    assert "New title from Zotero" in (vault / made.path).read_text()
    assert sync(config, source=source).ok


def test_clock_skew_two_write_save(tmp_path, monkeypatch):
    """An mtime more than 1 s ahead of the bridge's clock (network share, other machine)
    turns the settle window off (`inflight.settling`). A save caught between its two writes
    whose first write is complete and longer than the last size passes `in_flight`; the merge
    is written, the displaced file is unchanged so it is deleted, and the save's second
    write goes to the unlinked inode."""
    vault, source, config, item, note = _setup(tmp_path, settle=2.0)
    base = _user_edit(note)
    _retitle(source, item, "New title from Zotero")
    from bridge.vault import inflight

    skew = 3_000_000_000
    real_ns = time.time_ns
    monkeypatch.setattr(inflight.time, "time_ns", lambda: real_ns() - skew)  # = FS clock ahead
    monkeypatch.setattr(fs.time, "time_ns", lambda: real_ns() - skew)
    save = base + b"First new paragraph, long enough.\n" + b"Second write of the same save.\n"
    cut = len(base) + len(b"First new paragraph, long enough.\n")
    fd = os.open(note, os.O_WRONLY | os.O_TRUNC)
    os.write(fd, save[:cut])
    sync(config, source=source)
    os.write(fd, save[cut:])
    os.close(fd)
    now = note.read_bytes()
    assert b"Second write of the same save." in now, now[-300:]


def test_swap_back_when_the_note_was_renamed_keeps_the_save_visible(tmp_path, monkeypatch):
    """`_swap_in`: the displaced user file changed after the check (a save that had opened it
    before the exchange), and before the swap back the note is renamed (Obsidian: title edit).
    The second `_exchange` once raised ENOENT and left the user's save as a hidden
    `.zob-*.tmp` for the sweep; it must be put back visible."""
    vault, source, config, item, note = _setup(tmp_path)
    base = _user_edit(note)
    _retitle(source, item, "New title from Zotero")
    save = base + b"Saved while the bridge wrote.\n"
    real_x = swap._exchange
    calls = []

    def hooked(folder, a, b):
        calls.append(1)
        if len(calls) == 1:
            fd = os.open(note, os.O_WRONLY | os.O_TRUNC)  # the editor's save starts
            ok = real_x(folder, a, b)
            os.write(fd, save)  # ... and ends in the file it opened
            os.close(fd)
            note.rename(note.with_name("Renamed by the user.md"))
            return ok
        return real_x(folder, a, b)

    monkeypatch.setattr(swap, "_exchange", hooked)
    result = sync(config, source=source)
    monkeypatch.undo()
    visible = {p.name: p.read_bytes() for p in (vault / "Papers").iterdir()}
    holders = [n for n, data in visible.items() if b"Saved while the bridge wrote." in data]
    assert holders and not all(n.startswith(".zob-") for n in holders), (
        f"the save survives only in {holders} (swept as a stale temp); result {result.errors}"
    )


def test_folder_moved_out_of_the_vault_mid_sync(tmp_path, monkeypatch):
    """`Vault._folder` caches a handle per folder for the whole sync. `Papers/` moved out of
    the vault mid-sync (and a link left in its place): the rest of the sync's notes are
    written into the moved folder, now outside the vault (the link itself is not followed)."""
    vault = tmp_path / "vault"
    vault.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    source = ModelSource([make_item(f"Paper {i}", key=f"ABCD23{i}{i}") for i in range(2, 9)])
    config = Config(vault=vault, settle_seconds=0)
    real = fs.Vault.create
    moved = []

    def create(self, rel, text):
        etag = real(self, rel, text)
        if rel.startswith("Papers/") and not moved:
            moved.append(rel)
            (vault / "Papers").rename(outside / "Papers")
            (vault / "Papers").symlink_to(outside / "Papers")
        return etag

    monkeypatch.setattr(fs.Vault, "create", create)
    sync(config, source=source)
    written_outside = sorted(p.name for p in (outside / "Papers").iterdir())
    assert len(written_outside) <= 1, f"written outside the vault after the move: {written_outside}"


def test_a_note_mid_save_does_not_rewrite_method_notes(tmp_path):
    """The in-flight rules guard the merge of the paper note only. The method-note and queue
    pass (`collect_papers`) reads the same note mid-save (empty) and rewrites `Methods/Foo.md`
    without the paper (and the queue with the title gone); the next sync puts it back."""
    vault = tmp_path / "vault"
    vault.mkdir()
    item = make_item("Proposer", key="ABCD2345", tags=("proposes:Foo",))
    other = make_item("Other", key="EFGH2345")
    source = ModelSource([item, other])
    config = Config(vault=vault, settle_seconds=2)
    sync(config, source=source)
    method = vault / "Methods" / "Foo.md"
    before = method.read_text()
    assert "Proposer" in before
    note = next(p for p in (vault / "Papers").glob("*.md") if "Proposer" in p.name)
    fd = os.open(note, os.O_WRONLY | os.O_TRUNC)  # the editor's save has begun
    try:
        _retitle(source, other, "Other, retitled")
        sync(config, source=source)
        during = method.read_text()
    finally:
        os.close(fd)
    assert "Proposer" in during, f"method note rewritten from the half-saved paper:\n{during}"
