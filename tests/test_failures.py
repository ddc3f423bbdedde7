"""Every failure the environment can cause is a documented exit code with a sentence that says
what to do — never exit 70 ("internal error … a bug") — and leaves the notes as they were.

Real processes (`python -m bridge.cli`), real files: a state DB whose pages are overwritten, one
locked by another process, a full disk (a small tmpfs; also a file-size limit), and config files
that are huge, deeply nested, a device, a FIFO or a folder.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bridge.errors import (
    EXIT_BUSY,
    EXIT_CODES,
    EXIT_NO_SPACE,
    EXIT_STATE_DAMAGED,
    EXIT_USAGE,
)
from tests.helpers import settled, snapshot_tree
from tests.test_daemon import build_zotero
from tests.zotero_db import ZoteroDB

REPO = Path(__file__).resolve().parent.parent
STATE = Path(".zotero-bridge") / "state.sqlite"


def zob(
    *args: str, preexec: Callable[[], None] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
        preexec_fn=preexec,
    )


def assert_explained(result: subprocess.CompletedProcess[str], code: int, *sentences: str) -> None:
    """The documented code, the sentences, and no traceback or 'internal error'."""
    assert result.returncode == code, (result.returncode, result.stderr)
    for sentence in sentences:
        assert sentence in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "internal error" not in result.stderr
    assert code in dict(EXIT_CODES)


def notes(vault: Path) -> dict[str, bytes]:
    """Every file of the vault but the bridge's own folder."""
    return {k: v for k, v in snapshot_tree(vault).items() if not k.startswith(".zotero-bridge/")}


def temp_files(vault: Path) -> list[Path]:
    return sorted(vault.rglob(".zob-*.tmp"))


@pytest.fixture
def demo_vault(tmp_path: Path) -> Path:
    vault = tmp_path / "vault"
    assert zob("demo", str(vault)).returncode == 0
    return vault


# ── the state database ───────────────────────────────────────────────────────────────────────


def overwrite_pages(db: Path, *, every: int = 3, first: int = 2) -> None:
    """Garbage over every `every`-th page from page `first` on: what a bad disk leaves."""
    size = db.stat().st_size
    with open(db, "r+b") as handle:
        for offset in range(4096 * first, size, 4096 * every):
            handle.seek(offset)
            handle.write(bytes((i * 37 + 11) % 256 for i in range(4096)))


@pytest.mark.parametrize("damage", ["pages overwritten", "header overwritten"])
def test_a_damaged_state_db_exits_5_and_touches_no_note(demo_vault: Path, damage: str) -> None:
    db = demo_vault / STATE
    if damage == "pages overwritten":
        overwrite_pages(db)
    else:
        with open(db, "r+b") as handle:
            handle.write(b"this is no longer SQLite" * 10)
    before, damaged = notes(demo_vault), db.read_bytes()
    for args in (
        ["sync", "--source", "sample"],
        ["status"],
        ["new", "he2016deep", "--source", "sample"],
    ):
        result = zob(*args, "--vault", str(demo_vault))
        assert_explained(
            result, EXIT_STATE_DAMAGED, "is damaged", "your notes are intact", "do not delete it",
            "restore .zotero-bridge/state.sqlite from a backup", "zob doctor",
        )  # fmt: skip
        assert "move it aside" not in result.stderr
    doctor = zob("doctor", "--source", "sample", "--vault", str(demo_vault))
    assert_explained(doctor, EXIT_STATE_DAMAGED)
    assert "✗ state database" in doctor.stdout and ".recover" in doctor.stdout
    assert notes(demo_vault) == before and db.read_bytes() == damaged


def test_a_locked_state_db_exits_6_naming_the_holder(demo_vault: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('PRAGMA locking_mode=EXCLUSIVE'); db.execute('BEGIN EXCLUSIVE')\n"
            "print('held', flush=True); time.sleep(120)\n"
        ), str(demo_vault / STATE)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        before = notes(demo_vault)
        result = zob("sync", "--source", "sample", "--vault", str(demo_vault))
    finally:
        holder.kill()
        holder.wait()
    assert_explained(
        result, EXIT_BUSY, "is locked", f"pid {holder.pid}", "wait for that process to finish"
    )
    assert notes(demo_vault) == before
    assert zob("sync", "--source", "sample", "--vault", str(demo_vault)).returncode == 0


# ── a full disk ──────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs (root can mount one; elsewhere the test skips, saying why)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path, leave: int) -> Path:
    """Fill `disk` but for about `leave` bytes."""
    info = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, info.f_bavail * info.f_frsize - leave))
    return filler


def test_a_full_disk_exits_7_and_leaves_the_note_as_it_was(
    tmp_path: Path, small_disk: Path
) -> None:
    zotero = tmp_path / "Zotero"
    keys = build_zotero(zotero)
    vault = small_disk / "vault"
    vault.mkdir()
    args = ("--zotero-dir", str(zotero), "--vault", str(vault))
    assert zob("sync", *args).returncode == 0
    note = vault / "Papers" / "he2016deep.md"
    note.write_text(note.read_text("utf-8") + "\nMy own words, never to be lost.\n", "utf-8")
    settled(note)  # typed a while ago: the sync merges it at once
    with ZoteroDB.open(zotero / "zotero.sqlite") as db:
        db.set_field(keys["he"], "abstractNote", "A much longer abstract. " * 20_000)  # 480 kB
        db.commit()
    filler = fill(small_disk, leave=64 * 1024)
    before = notes(vault)

    result = zob("sync", *args)
    assert_explained(
        result, EXIT_NO_SPACE, "no space left", "No space left on device", "nothing was lost",
        "Free some space", "zob sync",
    )  # fmt: skip
    assert notes(vault) == before and temp_files(vault) == []

    filler.unlink()
    again = zob("sync", *args)
    assert again.returncode == 0, again.stderr
    text = note.read_text("utf-8")
    assert "A much longer abstract." in text and "My own words, never to be lost." in text


@pytest.mark.parametrize("size", ["200k", "400k"])
def test_a_first_sync_onto_a_full_disk_leaves_only_whole_notes(tmp_path: Path, size: str) -> None:
    reference = tmp_path / "reference"
    assert zob("demo", str(reference)).returncode == 0
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        result = zob("demo", str(disk / "vault"))
        assert_explained(result, EXIT_NO_SPACE, "no space left", "nothing was lost")
        written = notes(disk / "vault")
        expected = notes(reference)
        assert {k: v for k, v in written.items() if k in expected} == {
            k: expected[k] for k in written if k in expected
        }  # every note there is whole: byte for byte what a sync with room writes
        assert temp_files(disk / "vault") == []
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_file_size_limit_exits_7(tmp_path: Path) -> None:
    """RLIMIT_FSIZE (EFBIG, reported by SQLite as an I/O error): no mount needed."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (120_000, 120_000))

    result = zob("demo", str(tmp_path / "vault"), preexec=limit)
    assert_explained(result, EXIT_NO_SPACE, "File too large", "file-size limit")
    assert temp_files(tmp_path / "vault") == []


# ── hostile config files ─────────────────────────────────────────────────────────────────────


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "config.fifo"
    os.mkfifo(path)
    return path


def _written(name: str, text: str | bytes) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode() if isinstance(text, str) else text)
        return path

    return make


HOSTILE_CONFIGS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "/dev/zero": (lambda _: Path("/dev/zero"), "is a device, not a regular file"),
    "a FIFO with no writer": (_fifo, "is a named pipe (FIFO), not a regular file"),
    "a folder": (lambda tmp: tmp, "is a folder, not a regular file"),
    "2 MB": (_written("big.toml", "# padding\n" * 200_000), "is larger than 1000 kB"),
    "nested arrays": (_written("n.toml", "a = " + "[" * 100_000 + "]" * 100_000),
                      "nested too deeply"),
    "nested inline tables": (_written("i.toml", "a = " + "{b = " * 50_000 + "1" + "}" * 50_000),
                             "nested too deeply"),
    "a dotted key 50,000 deep": (_written("d.toml", "a." * 50_000 + "b = 1\n"),
                                 "nested more than 100 levels"),
    "a table header 50,000 deep": (_written("h.toml", "[" + "a." * 50_000 + "b]\n"),
                                   "nested more than 100 levels"),
    "not UTF-8": (_written("u.toml", b'vault = "\xff\xfe"\n'), "is not UTF-8 text"),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(HOSTILE_CONFIGS))
def test_a_hostile_config_file_is_refused_at_once(
    demo_vault: Path, tmp_path: Path, name: str
) -> None:
    make, sentence = HOSTILE_CONFIGS[name]
    config = make(tmp_path)
    before = snapshot_tree(demo_vault)
    started = time.monotonic()
    result = zob("sync", "--config", str(config), "--vault", str(demo_vault), timeout=60)
    assert_explained(result, EXIT_USAGE, sentence)
    assert str(config) in result.stderr
    assert snapshot_tree(demo_vault) == before
    assert time.monotonic() - started < 60  # (the FIFO hung, /dev/zero grew to 9 GB)


def test_a_fifo_as_api_key_file_is_refused(tmp_path: Path) -> None:
    fifo = _fifo(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f'vault = "{tmp_path}"\n[source]\ntype = "web"\nlibrary_id = "1"\n'
                      f'api_key_file = "{fifo}"\n')  # fmt: skip
    result = zob("sync", "--config", str(config), timeout=60)
    assert_explained(result, EXIT_USAGE, "is a named pipe (FIFO)", "api_key_file")


def test_exit_codes_are_documented_in_help_and_readme() -> None:
    help_text = zob("sync", "--help").stdout
    readme = (REPO / "README.md").read_text("utf-8")
    for code, meaning in EXIT_CODES:
        assert f"{code} {meaning}" in " ".join(help_text.split()), (code, help_text)
        assert f"{code} {meaning}" in " ".join(readme.split()), code
