"""One contract, two vaults: the disk `Vault` and the in-memory `MemoryVault` keep the same
promises — reads, etags, scans, the compare-and-swap of `replace`, and the refusals — so tests
that plan on the memory vault (tests/test_planner_memory.py) hold for the disk.

Each test runs on both. The `user` fixture is the other writer: an editor saving in place, a
file manager moving, deleting, linking, or making a file read-only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from bridge.digests import digest
from bridge.errors import NoteChangedError, NoteError
from bridge.vault.fs import Vault
from bridge.vault.memory import MemoryVault

NOTE = "---\nzotero_key: ABCD2345\ntitle: A paper\n---\n# A paper\n\nMy words.\n"
OLD_NS = 30_000_000_000  # long enough ago that an etag is trusted alone


class DiskUser:
    """The user's hands on a vault folder on disk."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, rel: str, data: bytes | str, *, age_ns: int = 0) -> None:
        raw = data.encode() if isinstance(data, str) else data
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "r+b" if path.exists() else "wb") as handle:  # in place, as an editor
            handle.truncate(0)
            handle.write(raw)
        if age_ns:
            when = time.time_ns() - age_ns
            os.utime(path, ns=(when, when))

    def move(self, src: str, dst: str) -> None:
        (self.root / dst).parent.mkdir(parents=True, exist_ok=True)
        os.rename(self.root / src, self.root / dst)

    def remove(self, rel: str) -> None:
        (self.root / rel).unlink()

    def link(self, rel: str, target: str) -> None:
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(self.root / target, self.root / rel)

    def special(self, rel: str) -> None:
        (self.root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(self.root / rel)

    def read_only(self, rel: str) -> None:
        (self.root / rel).chmod(0o555 if (self.root / rel).is_dir() else 0o444)

    def data(self, rel: str) -> bytes:
        return (self.root / rel).read_bytes()

    def exists(self, rel: str) -> bool:
        return os.path.lexists(self.root / rel)


class MemoryUser:
    """The user's hands on a `MemoryVault`."""

    def __init__(self, vault: MemoryVault) -> None:
        self.vault = vault

    def put(self, rel: str, data: bytes | str, *, age_ns: int = 0) -> None:
        self.vault.put(rel, data, mtime_ns=time.time_ns() - age_ns if age_ns else None)

    def move(self, src: str, dst: str) -> None:
        self.vault.move(src, dst)

    def remove(self, rel: str) -> None:
        self.vault.remove(rel)

    def link(self, rel: str, target: str) -> None:
        self.vault.put_link(rel, target)

    def special(self, rel: str) -> None:
        self.vault.put_special(rel)

    def read_only(self, rel: str) -> None:
        self.vault.set_writable(rel, False)

    def data(self, rel: str) -> bytes:
        return self.vault.data(rel)

    def exists(self, rel: str) -> bool:
        return self.vault.etag(rel) is not None


@pytest.fixture(params=["disk", "memory"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    """(vault, user) on disk or in memory."""
    if request.param == "disk":
        root = tmp_path / "vault"
        root.mkdir()
        vault = Vault(root)
        yield vault, DiskUser(root)
        vault.close()
        for path in root.rglob("*"):  # let pytest clean up what the user made read-only
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
    else:
        vault = MemoryVault()
        yield vault, MemoryUser(vault)


# --- reading ---------------------------------------------------------------------------------


def test_a_new_note_is_created_in_new_folders_and_read_back(pair: Any) -> None:
    vault, user = pair
    assert vault.etag("Papers/Sub/A.md") is None
    etag = vault.create("Papers/Sub/A.md", NOTE)
    assert etag == vault.etag("Papers/Sub/A.md")
    assert vault.read("Papers/Sub/A.md") == NOTE
    assert user.data("Papers/Sub/A.md") == NOTE.encode()
    assert vault.etags(["Papers/Sub/A.md", "Papers/B.md"]) == [etag, None]


def test_missing_unreadable_and_odd_notes_are_refused_with_a_reason(pair: Any) -> None:
    vault, user = pair
    with pytest.raises(NoteError, match="cannot read the note"):
        vault.read("Nowhere.md")
    user.put("Latin1.md", "Caf\xe9\n".encode("latin-1"))
    with pytest.raises(NoteError, match="not UTF-8"):
        vault.read("Latin1.md")
    user.special("Fifo.md")
    with pytest.raises(NoteError, match="not a regular file"):
        vault.read("Fifo.md")


def test_a_link_is_read_inside_the_vault_only(pair: Any) -> None:
    vault, user = pair
    user.put("Real.md", NOTE)
    user.link("Alias.md", "Real.md")
    assert vault.read("Alias.md") == NOTE
    assert vault.etag("Alias.md") != vault.etag("Real.md")  # the link's own etag (lstat)
    user.link("Out.md", "../outside.md")
    with pytest.raises(NoteError, match="outside the vault"):
        vault.read("Out.md")


def test_a_link_loop_is_refused_with_a_reason_not_a_crash(pair: Any) -> None:
    """A note replaced by a link to itself: Python's `Path.resolve` raised RuntimeError
    ("Symlink loop") out of the disk vault's `read`, which ended the whole sync; the memory
    vault refused it with a NoteError, so planner tests on it said "skipped" where the disk
    crashed."""
    vault, user = pair
    user.link("Loop.md", "Loop.md")
    with pytest.raises(NoteError):
        vault.read("Loop.md")


def test_a_chain_of_links_inside_the_vault_is_read_through(pair: Any) -> None:
    """The disk follows a link to a link (inside the vault) as the kernel does; the memory
    vault followed one link only, and refused the note as "not a regular file"."""
    vault, user = pair
    user.put("Real.md", NOTE)
    user.link("Mid.md", "Real.md")
    user.link("Alias.md", "Mid.md")
    assert vault.read("Alias.md") == NOTE
    assert vault.find_zotero_key("ABCD2345") is not None
    assert set(vault.zotero_keys(["Alias.md"])) == {"ABCD2345"}


def test_a_note_in_a_linked_folder_is_seen_and_read_but_never_written(pair: Any) -> None:
    """The kernel follows a folder link on the way to a note: the disk vault sees and reads
    the note (and refuses to write through the link). The memory vault saw no file there, so
    a planner test on it said "deleted by the user" where the disk skips the note."""
    vault, user = pair
    user.put("Elsewhere/X.md", NOTE)
    user.link("Linked", "Elsewhere")
    etag = vault.etag("Linked/X.md")
    assert etag is not None and etag == vault.etag("Elsewhere/X.md")
    assert vault.read("Linked/X.md") == NOTE
    with pytest.raises(NoteError, match="symbolic link"):
        vault.replace("Linked/X.md", "merged\n", etag, digest(NOTE.encode()))
    assert user.data("Elsewhere/X.md") == NOTE.encode()


def test_the_walk_skips_dot_folders_hidden_notes_other_files_and_zotero_s_folder(
    pair: Any,
) -> None:
    vault, user = pair
    for rel in (
        "A.md",
        "Papers/B.md",
        ".obsidian/C.md",
        ".trash/D.md",
        ".hidden/E.md",
        "Papers/.F.md",
        "Papers/image.png",
        "Zotero/zotero.sqlite",
        "Zotero/G.md",
    ):
        user.put(rel, NOTE)  # fmt: skip
    assert sorted(vault.markdown_files()) == ["A.md", "Papers/B.md"]
    assert vault.stems() == {"A", "B"}


def test_unchanged_since_trusts_an_old_etag_and_checks_a_recent_one_by_content(pair: Any) -> None:
    vault, user = pair
    user.put("Old.md", NOTE, age_ns=OLD_NS)
    etag = vault.etag("Old.md")
    assert vault.unchanged_since("Old.md", etag, None)  # old: the etag alone
    user.put("New.md", NOTE)
    new = vault.etag("New.md")
    assert vault.unchanged_since("New.md", new, digest(NOTE.encode()))
    assert not vault.unchanged_since("New.md", new, digest(b"something else"))
    assert not vault.unchanged_since("Old.md", new, None)


# --- finding notes by key --------------------------------------------------------------------


def test_a_moved_note_is_found_by_its_key_and_the_bridge_s_own_copy_is_preferred(
    pair: Any,
) -> None:
    vault, user = pair
    etag = vault.create("Papers/A.md", NOTE)
    user.put("Copy.md", NOTE)  # the user duplicated the note ...
    user.put("Papers/A.md", NOTE + "Typed.\n")  # ... typed in the original (in place) ...
    user.move("Papers/A.md", "Moved/A.md")  # ... and moved it
    assert vault.find_zotero_key("ABCD2345", etag) == "Moved/A.md"  # the same inode
    assert vault.find_zotero_key("ABCD2345") in ("Copy.md", "Moved/A.md")
    assert vault.find_zotero_key("ZZZZ2345") is None
    assert vault.walked() == {"Copy.md", "Moved/A.md"}


def test_the_key_walk_remembers_empty_notes_with_their_etag_once_settled(pair: Any) -> None:
    vault, user = pair
    user.put("Empty old.md", "", age_ns=OLD_NS)
    user.put("Empty new.md", "")
    user.put("Keyless.md", "# no key\n", age_ns=OLD_NS)
    vault.find_zotero_key("ABCD2345")
    assert vault.keyless() == {"Empty old.md": vault.etag("Empty old.md"), "Empty new.md": ""}
    assert vault.zotero_keys(["Empty old.md"]) == {}


# --- writing ---------------------------------------------------------------------------------


def test_create_never_clobbers_a_file_that_appeared(pair: Any) -> None:
    vault, user = pair
    user.put("Papers/A.md", "the user's own\n")
    with pytest.raises(NoteChangedError):
        vault.create("Papers/A.md", NOTE)
    assert user.data("Papers/A.md") == b"the user's own\n"


def test_create_never_clobbers_a_folder_of_that_name(pair: Any) -> None:
    """A folder named like the note (`X.md/`): the disk refuses the name; the memory vault
    made a file beside the folder, one name for both."""
    vault, user = pair
    user.put("Papers/X.md/inner.md", NOTE)
    with pytest.raises(NoteChangedError):
        vault.create("Papers/X.md", NOTE)
    assert vault.read("Papers/X.md/inner.md") == NOTE


def test_replace_takes_the_etag_and_bytes_the_merge_read(pair: Any) -> None:
    vault, user = pair
    etag = vault.create("A.md", NOTE)
    new = vault.replace("A.md", NOTE + "Zotero's change.\n", etag, digest(NOTE.encode()))
    assert new == vault.etag("A.md") and new != etag
    assert vault.read("A.md").endswith("Zotero's change.\n")


def test_replace_refuses_a_note_changed_since_it_was_read(pair: Any) -> None:
    vault, user = pair
    etag = vault.create("A.md", NOTE)
    user.put("A.md", NOTE + "Typed since.\n")
    with pytest.raises(NoteChangedError):
        vault.replace("A.md", NOTE + "Zotero.\n", etag, digest(NOTE.encode()))
    with pytest.raises(NoteChangedError):  # the etag alone tells
        vault.replace("A.md", NOTE + "Zotero.\n", etag, None)
    assert user.data("A.md") == (NOTE + "Typed since.\n").encode()


def test_replace_refuses_other_bytes_behind_the_same_etag(pair: Any) -> None:
    """A same-size save within one mtime tick keeps the etag: the bytes tell."""
    vault, user = pair
    etag = vault.create("A.md", NOTE)
    with pytest.raises(NoteChangedError):
        vault.replace("A.md", "merged\n", etag, digest(b"what the merge thought it read"))
    assert vault.read("A.md") == NOTE


def test_replace_refuses_a_note_that_is_gone(pair: Any) -> None:
    vault, user = pair
    etag = vault.create("Papers/A.md", NOTE)
    user.remove("Papers/A.md")
    with pytest.raises(NoteChangedError):
        vault.replace("Papers/A.md", NOTE, etag)
    with pytest.raises(NoteChangedError):
        vault.replace("Gone folder/A.md", NOTE, etag)
    assert not user.exists("Papers/A.md")


def test_read_only_notes_and_folders_are_left_alone(pair: Any) -> None:
    vault, user = pair
    etag = vault.create("Papers/A.md", NOTE)
    user.read_only("Papers/A.md")
    with pytest.raises(NoteError, match="read-only"):
        vault.replace("Papers/A.md", "merged\n", etag, digest(NOTE.encode()))
    assert user.data("Papers/A.md") == NOTE.encode()
    user.put("Locked/B.md", NOTE)
    user.read_only("Locked")
    with pytest.raises(NoteError, match="read-only"):
        vault.create("Locked/C.md", NOTE)
    assert not user.exists("Locked/C.md")


def test_links_are_never_written_through(pair: Any) -> None:
    vault, user = pair
    user.put("Real.md", NOTE)
    user.link("Alias.md", "Real.md")
    with pytest.raises(NoteError, match="symbolic link"):
        vault.replace("Alias.md", "merged\n", vault.etag("Alias.md"), digest(NOTE.encode()))
    user.put("Elsewhere/X.md", NOTE)
    user.link("Linked", "Elsewhere")
    with pytest.raises(NoteError, match="symbolic link"):
        vault.create("Linked/New.md", NOTE)
    assert user.data("Real.md") == NOTE.encode() and not user.exists("Elsewhere/New.md")
    with pytest.raises(NoteError, match="not allowed"):
        vault.create("../Out.md", NOTE)


def test_files_are_copied_in_and_stale_temps_cleared_or_recovered(pair: Any) -> None:
    vault, user = pair
    vault.write_file_bytes("Attachments/a.png", b"\x89PNG one")
    vault.write_file_bytes("Attachments/a.png", b"\x89PNG two")
    assert user.data("Attachments/a.png") == b"\x89PNG two"
    user.put(".zotero-bridge/state.txt", "x")
    user.put("Papers/.zob-000000000001.tmp", "half a write")
    user.put("Papers/.zob-000000000002.tmp", NOTE)  # the user's note, displaced by a swap
    removed, recovered = vault.remove_stale_temps()
    assert removed == 1 and len(recovered) == 1
    assert recovered[0].startswith(".zotero-bridge/recovered/")
    assert recovered[0].endswith("Papers__.zob-000000000002.tmp.md.recovered")
    assert user.data(recovered[0]) == NOTE.encode()
    assert not user.exists("Papers/.zob-000000000001.tmp")
