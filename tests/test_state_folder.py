"""Nothing outside the vault: links in the state folder, refused vault locations, one state
per vault.

Each test names one row of docs/RELIABILITY.md. Real files and real `zob` processes: a link
planted where the bridge keeps its own file must leave the file it points to byte-identical,
create nothing outside, and end in exit 2 with a message naming the link.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import platformdirs
import pytest

from bridge.config import APP_NAME
from bridge.state import State
from tests.helpers import snapshot_tree
from tests.zotero_db import ZoteroDB

REFUSED = "where the bridge keeps"


def zob(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, timeout=timeout
    )


def library(tmp_path: Path, n: int = 3) -> tuple[ZoteroDB, Path, list[str]]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    keys = [
        db.add_item("journalArticle", title=f"Paper {i}", date="2019",
                    creators=[("author", "Ada", f"Writer{i}")])
        for i in range(n)
    ]  # fmt: skip
    db.commit()
    return db, data_dir, keys


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every vault, holding files a link may point at."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "precious.txt").write_text("the user's own file\n", encoding="utf-8")
    return folder


def plant(vault: Path, name: str, target: Path) -> Path:
    state = vault / ".zotero-bridge"
    state.mkdir(parents=True, exist_ok=True)
    link = state / name
    link.symlink_to(target)
    return link


def assert_refused(run: subprocess.CompletedProcess[str], link: Path) -> None:
    assert run.returncode == 2, run.stderr
    assert str(link) in run.stderr and REFUSED in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


# ------------------------------------------------------------------------- links in the state


def test_daemon_lock_link_is_refused_and_its_target_kept(tmp_path: Path, outside: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    link = plant(vault, "daemon.lock", outside / "precious.txt")
    before = snapshot_tree(outside)
    run = zob("watch", "--vault", str(vault), "--source", "sample", timeout=60)
    assert_refused(run, link)
    assert snapshot_tree(outside) == before


def test_dangling_sync_lock_link_creates_nothing_outside(tmp_path: Path, outside: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    link = plant(vault, "sync.lock", outside / "created-by-the-bridge")
    before = snapshot_tree(outside)
    assert_refused(zob("demo", str(vault)), link)
    assert snapshot_tree(outside) == before
    assert not (outside / "created-by-the-bridge").exists()


def test_state_db_link_to_a_zotero_database_is_refused(
    real_zotero_db: Path, tmp_path: Path, outside: Path
) -> None:
    """The link points at a copy of a real zotero.sqlite: the bridge must not add its tables."""
    zotero_copy = outside / "zotero.sqlite"
    shutil.copy(real_zotero_db, zotero_copy)
    vault = tmp_path / "vault"
    vault.mkdir()
    link = plant(vault, "state.sqlite", zotero_copy)
    before = snapshot_tree(outside)
    run = zob("sync", "--vault", str(vault), "--zotero-dir", str(real_zotero_db.parent))
    assert_refused(run, link)
    assert snapshot_tree(outside) == before  # no -wal, -journal or -shm beside it either


@pytest.mark.parametrize("suffix", ["-wal", "-shm", "-journal"])
def test_state_db_side_file_link_is_refused(tmp_path: Path, outside: Path, suffix: str) -> None:
    vault = tmp_path / "vault"
    assert zob("demo", str(vault)).returncode == 0
    link = plant(vault, f"state.sqlite{suffix}", outside / "precious.txt")
    before = snapshot_tree(outside)
    assert_refused(zob("demo", str(vault)), link)
    assert snapshot_tree(outside) == before


def test_state_db_hard_link_is_refused(tmp_path: Path, outside: Path) -> None:
    """A second name for the file (a hard link from outside) is as bad as a symlink."""
    vault = tmp_path / "vault"
    (vault / ".zotero-bridge").mkdir(parents=True)
    os.link(outside / "precious.txt", vault / ".zotero-bridge" / "state.sqlite")
    before = snapshot_tree(outside)
    run = zob("demo", str(vault))
    assert run.returncode == 2 and "hard links" in run.stderr, run.stderr
    assert snapshot_tree(outside) == before


def test_state_folder_link_is_refused(tmp_path: Path, outside: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    (vault / ".zotero-bridge").symlink_to(outside, target_is_directory=True)
    before = snapshot_tree(outside)
    run = zob("demo", str(vault))
    assert run.returncode == 2, run.stderr
    assert f"{vault / '.zotero-bridge'} is a symbolic link" in run.stderr
    assert "state folder" in run.stderr
    assert snapshot_tree(outside) == before
    assert not (vault / "Papers").exists()  # refused before the first note


def test_log_file_link_is_refused(tmp_path: Path, outside: Path) -> None:
    """`watch.log` lives in the platform log dir; a link there is not appended to either."""
    log_dir = Path(platformdirs.user_log_dir(APP_NAME))
    log_dir.mkdir(parents=True)
    link = log_dir / "watch.log"
    link.symlink_to(outside / "precious.txt")
    vault = tmp_path / "vault"
    vault.mkdir()
    before = snapshot_tree(outside)
    run = zob("watch", "--vault", str(vault), "--source", "sample", timeout=60)
    assert_refused(run, link)
    assert snapshot_tree(outside) == before


# --------------------------------------------------------------------- refused vault locations


def _config(tmp_path: Path, vault: Path, zotero_dir: Path | None = None) -> Path:
    path = tmp_path / "config.toml"
    lines = [f"vault = {str(vault)!r}"]
    if zotero_dir is not None:
        lines += ["[source]", f"zotero_dir = {str(zotero_dir)!r}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["sync", "watch", "status", "doctor"])
def test_root_as_vault_is_refused_before_any_write(tmp_path: Path, command: str) -> None:
    config = _config(tmp_path, Path("/"), tmp_path / "Zotero")
    run = zob(command, "--config", str(config), timeout=60)
    assert run.returncode == 2, run.stderr
    assert "the vault / is the root of the filesystem" in run.stderr + run.stdout  # doctor: stdout
    assert not Path("/.zotero-bridge").exists() and not Path("/Papers").exists()
    assert not Path(platformdirs.user_log_dir(APP_NAME)).exists()  # not even a log line


def test_home_as_vault_is_refused(tmp_path: Path) -> None:
    _, data_dir, _ = library(tmp_path)
    home = Path.home()  # a temp folder: HOME is set by the autouse fixture
    before = snapshot_tree(home)
    for args in (
        ["sync", "--vault", str(home), "--zotero-dir", str(data_dir)],
        ["demo", str(home)],
        ["init", "--vault", str(home), "--zotero-dir", str(data_dir)],
    ):
        run = zob(*args)
        assert run.returncode == 2 and "is your home directory" in run.stderr, (args, run.stderr)
    assert snapshot_tree(home) == before


@pytest.mark.parametrize("inside", ["", "storage", "storage/ABCD2345"])
def test_zotero_data_dir_or_inside_it_as_vault_is_refused(tmp_path: Path, inside: str) -> None:
    _, data_dir, _ = library(tmp_path)
    vault = data_dir / inside if inside else data_dir
    vault.mkdir(parents=True, exist_ok=True)
    before = snapshot_tree(data_dir)
    for args in (
        ["sync", "--vault", str(vault), "--zotero-dir", str(data_dir)],
        ["watch", "--vault", str(vault), "--zotero-dir", str(data_dir)],
        ["init", "--vault", str(vault), "--zotero-dir", str(data_dir)],
        ["demo", str(vault)],  # no zotero_dir given: found by its zotero.sqlite
        ["demo", str(vault / "new-folder")],
    ):
        run = zob(*args, timeout=60)
        assert run.returncode == 2, (args, run.stderr)
        assert "Zotero data directory" in run.stderr or "Zotero's data directory" in run.stderr
    assert snapshot_tree(data_dir) == before
    assert not (vault / ".zotero-bridge").exists() and not (vault / "new-folder").exists()
    assert not (Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml").exists()


# ------------------------------------------------------------ a vault holding Zotero's folder


def _vault_with_zotero_inside(tmp_path: Path) -> tuple[Path, Path, list[str], Path]:
    vault = tmp_path / "vault"
    vault.mkdir()
    _, data_dir, keys = library(vault)  # vault/Zotero/zotero.sqlite
    planted = data_dir / "storage" / "ABCD2345" / "Paper 0.md"
    planted.parent.mkdir(parents=True)
    planted.write_text(f"---\nzotero_key: {keys[0]}\ntitle: Paper 0\n---\nZotero's file\n")
    return vault, data_dir, keys, planted


def test_vault_holding_zotero_dir_syncs_and_folders_inside_it_are_refused(tmp_path: Path) -> None:
    vault, data_dir, keys, planted = _vault_with_zotero_inside(tmp_path)
    planted.unlink()  # a keyed note in there: `test_vault_holding_zotero_dir_never_walks_…`
    (planted.parent / "Linked.md").write_text("[[Paper 0]]\n", encoding="utf-8")
    run = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir))
    assert run.returncode == 0, run.stderr
    assert len(list((vault / "Papers").glob("*.md"))) == len(keys)
    # a configured folder inside Zotero's data directory is refused
    config = tmp_path / "config.toml"
    config.write_text(
        f'vault = {str(vault)!r}\npapers_folder = "Zotero/storage/Notes"\n'
        f"[source]\nzotero_dir = {str(data_dir)!r}\n",
        encoding="utf-8",
    )
    run = zob("sync", "--config", str(config))
    assert run.returncode == 2 and "papers_folder" in run.stderr, run.stderr
    # the link index (zob backlinks) does not walk it either
    from bridge.vault.links import LinkIndex

    index = LinkIndex.build(vault)
    seen = {*index.resolved_links(), *index.unresolved_links()}
    assert seen and not any(p.startswith("Zotero/") for p in seen), seen


def test_vault_holding_zotero_dir_never_walks_or_writes_it(tmp_path: Path) -> None:
    vault, data_dir, keys, planted = _vault_with_zotero_inside(tmp_path)
    stale = planted.parent / ".zob-0123456789ab.tmp"
    stale.write_text("not the bridge's", encoding="utf-8")
    before = snapshot_tree(data_dir)
    for _ in range(2):
        run = zob("sync", "--vault", str(vault), "--zotero-dir", str(data_dir))
        assert run.returncode == 0, run.stderr
    with State(vault) as state:
        paths = {note.path for note in state.notes().values()}
    assert not any(p.startswith("Zotero/") for p in paths), paths
    assert len(list((vault / "Papers").glob("*.md"))) == len(keys)
    assert snapshot_tree(data_dir) == before  # the planted note and the temp file untouched


# ------------------------------------------------------------------------ one state per vault


def _vault_meta(vault: Path) -> dict[str, str]:
    conn = sqlite3.connect(vault / ".zotero-bridge" / "state.sqlite")
    try:
        return dict(conn.execute("SELECT key, value FROM meta WHERE key LIKE 'vault_%'"))
    finally:
        conn.close()


def test_a_moved_vault_keeps_syncing(tmp_path: Path) -> None:
    db, data_dir, keys = library(tmp_path)
    first = tmp_path / "Research"
    first.mkdir()
    assert zob("sync", "--vault", str(first), "--zotero-dir", str(data_dir)).returncode == 0
    identity = _vault_meta(first)
    note = next((first / "Papers").glob("*.md"))
    note.write_text(note.read_text() + "\nMy own words.\n", encoding="utf-8")
    moved = tmp_path / "Renamed Research"
    first.rename(moved)
    db.set_field(keys[0], "title", "Paper 0, revised")
    db.commit()
    run = zob("sync", "--vault", str(moved), "--zotero-dir", str(data_dir))
    assert run.returncode == 0, run.stderr
    assert f"was at {first} before" in run.stderr
    texts = "".join(p.read_text() for p in (moved / "Papers").glob("*.md"))
    assert "Paper 0, revised" in texts and "My own words." in texts
    assert len(list((moved / "Papers").glob("*.md"))) == len(keys)  # nothing made twice
    assert _vault_meta(moved) == {**identity, "vault_path": str(moved.resolve())}
    again = zob("sync", "--vault", str(moved), "--zotero-dir", str(data_dir))
    assert again.returncode == 0 and "was at" not in again.stderr


def test_a_copied_vault_gets_its_own_identity(tmp_path: Path) -> None:
    first = tmp_path / "first"
    assert zob("demo", str(first)).returncode == 0
    copy = tmp_path / "copy"
    shutil.copytree(first, copy, symlinks=True)
    run = zob("demo", str(copy))
    assert run.returncode == 0 and "looks like a copy of" in run.stderr, run.stderr
    assert _vault_meta(copy)["vault_id"] != _vault_meta(first)["vault_id"]
    assert zob("demo", str(first)).returncode == 0


def _can_bind_mount(tmp_path: Path) -> bool:
    if not shutil.which("unshare"):
        return False
    (tmp_path / "probe-a").mkdir()
    (tmp_path / "probe-b").mkdir()
    probe = subprocess.run(
        ["unshare", "-rm", "mount", "--bind", str(tmp_path / "probe-a"), str(tmp_path / "probe-b")],
        capture_output=True,
    )
    return probe.returncode == 0


def test_two_vaults_sharing_one_state_folder_are_refused(tmp_path: Path) -> None:
    """A bind mount makes one state folder appear in two vaults (a link is refused earlier,
    by `test_state_folder_link_is_refused`)."""
    if not _can_bind_mount(tmp_path):
        pytest.skip("needs `unshare -rm` (unprivileged user namespaces) for a bind mount")
    first, second = tmp_path / "first", tmp_path / "second"
    assert zob("demo", str(first)).returncode == 0
    (second / ".zotero-bridge").mkdir(parents=True)
    before = snapshot_tree(first)
    script = 'mount --bind "$1" "$2" && exec "$3" -m bridge.cli demo "$4"'
    run = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(first / ".zotero-bridge"),
         str(second / ".zotero-bridge"), sys.executable, str(second)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert f"is also the state folder of the vault {first.resolve()}" in run.stderr
    assert not (second / "Papers").exists()
    assert snapshot_tree(first) == before
    assert zob("demo", str(first)).returncode == 0  # the first vault keeps its state
