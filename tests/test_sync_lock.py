"""Every command that writes notes or the state DB takes the vault's sync lock.

Real processes: the test holds the lock (as a running sync or the daemon would) and runs the
real `zob` command line; the command must wait, write nothing meanwhile, and finish its work
once the lock is released.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.locks import SyncBusyError, sync_lock
from bridge.session import writing
from bridge.statefolder import STATE_DIRNAME

WAIT = 1.5  # seconds the command is left waiting on the held lock


def zob(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], capture_output=True, text=True, timeout=120
    )


def files(vault: Path) -> dict[str, bytes]:
    """Every file in the vault (the state DB included) and its bytes; the lock file aside."""
    return {
        path.relative_to(vault).as_posix(): path.read_bytes()
        for path in sorted(vault.rglob("*"))
        if path.is_file() and path.name != "sync.lock"
    }


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vault synced once from the bundled sample (queue and report need a synced vault)."""
    vault = tmp_path_factory.mktemp("synced") / "vault"
    vault.mkdir()
    done = zob("sync", "--source", "sample", "--vault", str(vault))
    assert done.returncode == 0, done.stderr
    return vault


def _copy(vault: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "vault"
    shutil.copytree(vault, target, ignore=shutil.ignore_patterns("sync.lock"))
    return target


# command, the note it writes, whether it needs a synced vault
CASES = {
    "new paper": (["new", "deep residual", "--first", "--source", "sample"],
                  "Papers/he2016deep.md", False),
    "new method": (["new", "--method", "Soft-NMS v2", "--extends", "Soft-NMS"],
                   "Methods/Soft-NMS v2.md", True),
    "queue": (["queue"], "Reading queue.md", True),
    "report": (["report", "--week", "2024-W05"], "Reports/2024-W05.md", True),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(CASES))
def test_writing_command_waits_for_a_running_sync(case: str, synced: Path, tmp_path: Path) -> None:
    args, note, needs_sync = CASES[case]
    if needs_sync:
        vault = _copy(synced, tmp_path)
        (vault / note).unlink(missing_ok=True)  # `zob queue` brings a deleted queue back
    else:
        vault = tmp_path / "vault"
        vault.mkdir()
    with sync_lock(vault / STATE_DIRNAME):  # a sync of this vault is running
        before = files(vault)
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", *args, "--vault", str(vault)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            time.sleep(WAIT)
            assert proc.poll() is None, proc.communicate()
            assert files(vault) == before  # not a note, not a row of the state DB
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert note in out
    assert (vault / note).is_file()


def test_writing_gives_up_after_its_timeout_having_written_nothing(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    config = Config().with_overrides(vault=vault, source="sample")
    with sync_lock(vault / STATE_DIRNAME):
        with pytest.raises(SyncBusyError) as caught, writing(config, timeout=0.3):
            pytest.fail("the lock is held: nothing may be opened")
        assert caught.value.exit_code == 6
        assert "another sync of this vault" in str(caught.value)
    assert not (vault / STATE_DIRNAME / "state.sqlite").exists()
    with writing(config, timeout=5) as (vault_root, state, _):  # free again: it opens
        assert vault_root == vault and state.notes() == {}


def test_sync_takes_the_same_lock(tmp_path: Path) -> None:
    """`zob sync` (and so the daemon) waits on the lock the other commands take."""
    vault = tmp_path / "vault"
    vault.mkdir()
    config = Config().with_overrides(vault=vault, source="sample")
    with writing(config):
        proc = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "sync", "--source", "sample", "--vault",
             str(vault)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(WAIT)
        assert proc.poll() is None
        assert not (vault / "Papers").exists()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert (vault / "Papers" / "he2016deep.md").is_file()
