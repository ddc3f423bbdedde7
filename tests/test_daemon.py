"""`zob watch`: real processes, real files, real signals, a simulated running Zotero.

The daemon runs as `python -m bridge.cli watch` in a subprocess; Zotero is simulated by
`hold_exclusive_lock` (a separate process holding `locking_mode=EXCLUSIVE`, in WAL mode as
Zotero 10 does) that commits edits while the daemon watches. Syncs are counted through the
daemon's live status in its lock file (what `zob status` reads). Waits poll with generous
timeouts; latency itself is measured in bench/watch_latency.py, never asserted here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.daemon import Backoff, DaemonLock, Debouncer, VaultFilter, probe_lock
from bridge.errors import DaemonRunningError
from bridge.state import State
from tests.zotero_db import ZoteroDB, hold_exclusive_lock

REPO = Path(__file__).resolve().parent.parent
TIMEOUT = 20.0  # generous: CI machines are slow; a working daemon takes well under a second
QUIET = 2.0  # no sync for this long (4 × the 0.5 s debounce) means the daemon has settled


# ----------------------------------------------------------------------------- helpers


def wait_for(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def build_zotero(data_dir: Path) -> dict[str, str]:
    """A small library in Zotero 7's real layout: two papers, a PDF with one highlight."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        he = db.add_item(
            title="Deep Residual Learning for Image Recognition",
            date="2016-06-27",
            creators=[("author", "Kaiming", "He"), ("author", "Xiangyu", "Zhang")],
            citation_key="he2016deep",
            tags=["proposes:ResNet"],
        )
        att = db.add_attachment(he, filename="he2016deep.pdf")
        db.add_annotation(att, text="Residual learning eases the optimisation", page_label="1")
        soft = db.add_item(
            title="Soft-NMS: Improving Object Detection With One Line of Code",
            date="2017",
            creators=[("author", "Navaneeth", "Bodla")],
            citation_key="bodla2017soft",
        )
    return {"he": he, "att": att, "soft": soft}


class Watcher:
    """One `zob watch` subprocess and what it tells about itself."""

    count = 0

    def __init__(self, tmp_path: Path, vault: Path, *args: str) -> None:
        Watcher.count += 1
        self.vault = vault
        self.log = tmp_path / f"watch-{Watcher.count}.log"
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bridge.cli", "watch", "--vault", str(vault), "-v", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def info(self) -> dict[str, Any]:
        return probe_lock(self.vault) or {}

    def syncs(self) -> int:
        info = self.info()
        return int(info.get("syncs", 0)) if info.get("pid") == self.pid else 0

    def started(self) -> Watcher:
        wait_for("the initial sync", lambda: self.syncs() >= 1 or self.process.poll() is not None)
        assert self.process.poll() is None, self.output()
        return self

    def settle(self) -> int:
        """Wait until no sync has happened for QUIET seconds; return the sync count."""
        deadline = time.monotonic() + TIMEOUT
        count = self.syncs()
        while time.monotonic() < deadline:
            time.sleep(QUIET)
            now = self.syncs()
            if now == count:
                return count
            count = now
        raise AssertionError(f"the daemon never settled:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    vault = tmp_path / "vault"
    vault.mkdir()
    zotero = tmp_path / "Zotero"
    return vault, zotero, build_zotero(zotero)


@pytest.fixture
def watchers(tmp_path: Path) -> Iterator[Callable[..., Watcher]]:
    started: list[Watcher] = []

    def start(vault: Path, *args: str) -> Watcher:
        watcher = Watcher(tmp_path, vault, *args)
        started.append(watcher)
        return watcher

    yield start
    for watcher in started:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.wait()


def note_path(vault: Path, key: str) -> Path:
    with State(vault) as state:
        return vault / state.notes()[key].path


def contains(path: Path, text: str) -> Callable[[], bool]:
    return lambda: path.is_file() and text in path.read_text(encoding="utf-8")


# -------------------------------------------------------------------- the daemon at work


@pytest.mark.slow
def test_zotero_edits_under_the_lock_in_wal_mode_reach_the_note(library, watchers) -> None:
    vault, zotero, keys = library
    watcher = watchers(vault, "--zotero-dir", str(zotero)).started()
    note = note_path(vault, keys["he"])
    assert "Residual learning eases" in note.read_text()
    with hold_exclusive_lock(zotero / "zotero.sqlite", journal="wal") as zotero_app:
        before = watcher.settle()
        zotero_app.call("set_field", keys["he"], "title", "Deep Residual Learning, revised")
        wait_for("the new title in the note", contains(note, "Deep Residual Learning, revised"))
        assert (zotero / "zotero.sqlite-wal").stat().st_size > 0  # the edit lives in the WAL
        # one commit → one sync: the daemon's own writes (note, queue) trigger nothing
        assert watcher.settle() == before + 1, watcher.output()

        zotero_app.call("add_annotation", keys["att"], text="Identity shortcuts add no params")
        wait_for("the new highlight", contains(note, "Identity shortcuts add no params"))
        assert watcher.settle() == before + 2, watcher.output()
    assert watcher.stop() == 0


@pytest.mark.slow
def test_property_edit_updates_the_method_note_once(library, watchers) -> None:
    vault, zotero, keys = library
    watcher = watchers(vault, "--zotero-dir", str(zotero)).started()
    before = watcher.settle()
    note = note_path(vault, keys["soft"])
    text = note.read_text(encoding="utf-8")
    note.write_text(re.sub(r"\npass:", '\nextends: ["[[X]]"]\npass:', text, count=1))
    method = vault / "Methods" / "X.md"
    wait_for("Methods/X.md listing the paper", contains(method, f"[[{note.stem}]]"))
    # the paper's own Lineage region follows its new `extends` once the note settles
    wait_for("the paper's Lineage region", contains(note, "**Extends:** [[X]]"))
    # one sync for the user's edit and one when the note settled (the region is merged
    # only into a quiet note); writing X.md, the paper note and the queue caused no other
    assert watcher.settle() == before + 2, watcher.output()
    status = CliRunner().invoke(main, ["status", "--vault", str(vault), "--json"])
    daemon = json.loads(status.output)["daemon"]
    assert daemon["running"] and daemon["pid"] == watcher.pid
    assert daemon["syncs"] == before + 2 and daemon["last_error"] is None
    human = CliRunner().invoke(main, ["status", "--vault", str(vault)])
    assert f"running, pid {watcher.pid}" in human.output
    assert watcher.stop() == 0


@pytest.mark.slow
def test_a_read_only_note_gets_zotero_s_change_once_made_writable(library, watchers) -> None:
    """The skip says "make it writable to receive Zotero's changes": chmod moves no etag,
    yet the daemon must sync for it — and a note left read-only must not bring more syncs."""
    vault, zotero, keys = library
    watcher = watchers(vault, "--zotero-dir", str(zotero)).started()
    note = note_path(vault, keys["he"])
    before = watcher.settle()
    note.chmod(0o444)
    with ZoteroDB.open(zotero / "zotero.sqlite") as db:
        db.set_field(keys["he"], "title", "Deep Residual Learning, revised")
        db.commit()
    wait_for("the skip", lambda: "read-only" in watcher.output())
    held = watcher.settle()
    assert held <= before + 2, watcher.output()  # the change, then one retry at most
    assert "revised" not in note.read_text(encoding="utf-8")
    note.chmod(0o644)
    wait_for("the new title in the note", contains(note, "Deep Residual Learning, revised"))
    assert watcher.settle() == held + 1, watcher.output()
    assert watcher.stop() == 0


@pytest.mark.slow
def test_second_instance_is_refused_and_names_the_pid(library, watchers) -> None:
    vault, zotero, _ = library
    first = watchers(vault, "--zotero-dir", str(zotero)).started()
    second = subprocess.run(
        [sys.executable, "-m", "bridge.cli", "watch", "--vault", str(vault)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr
    assert first.process.poll() is None and first.info()["pid"] == first.pid
    assert first.stop() == 0


@pytest.mark.slow
def test_sigterm_exits_zero_promptly_and_releases_the_lock(library, watchers) -> None:
    vault, zotero, _ = library
    watcher = watchers(vault, "--zotero-dir", str(zotero)).started()
    started = time.monotonic()
    assert watcher.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 5.0
    assert probe_lock(vault) is None
    status = CliRunner().invoke(main, ["status", "--vault", str(vault), "--json"])
    daemon = json.loads(status.output)["daemon"]
    assert not daemon["running"] and daemon["stopped_at"] and daemon["pid"] == watcher.pid


@pytest.mark.slow
def test_sigint_stops_too_and_sighup_reloads_the_config(library, watchers, tmp_path) -> None:
    vault, zotero, _ = library
    config = tmp_path / "config.toml"
    config.write_text(f'vault = "{vault}"\n[source]\nzotero_dir = "{zotero}"\n')
    watcher = watchers(vault, "--config", str(config)).started()
    before = watcher.settle()
    config.write_text(config.read_text() + "[watch]\ndebounce_seconds = 0.2\n")
    watcher.process.send_signal(signal.SIGHUP)
    wait_for("the reload", lambda: "config reloaded" in watcher.output())
    wait_for("the sync after the reload", lambda: watcher.syncs() > before)
    assert watcher.stop(signal.SIGINT) == 0


@pytest.mark.slow
def test_kill_9_then_restart_takes_over_the_lock(library, watchers) -> None:
    vault, zotero, keys = library
    first = watchers(vault, "--zotero-dir", str(zotero)).started()
    first.process.kill()
    first.process.wait()
    lock = vault / ".zotero-bridge" / "daemon.lock"
    assert json.loads(lock.read_text())["pid"] == first.pid  # left behind: a stale lock
    with ZoteroDB.open(zotero / "zotero.sqlite") as db:  # Zotero edits while no daemon runs
        db.set_field(keys["soft"], "title", "Soft-NMS, edited while the daemon was down")
    second = watchers(vault, "--zotero-dir", str(zotero)).started()
    assert second.info()["pid"] == second.pid
    note = note_path(vault, keys["soft"])
    wait_for("the catch-up sync", contains(note, "edited while the daemon was down"))
    assert "did not stop cleanly" in second.output()
    assert second.stop() == 0


@pytest.mark.slow
def test_corrupt_database_then_restored_the_daemon_survives(library, watchers, tmp_path) -> None:
    vault, zotero, keys = library
    watcher = watchers(vault, "--zotero-dir", str(zotero)).started()
    database = zotero / "zotero.sqlite"
    good = tmp_path / "good.sqlite"
    shutil.copyfile(database, good)
    with ZoteroDB.open(good) as db:  # the restored copy carries an edit
        db.set_field(keys["he"], "title", "Deep Residual Learning, from the backup")
    data = database.read_bytes()
    torn = tmp_path / "torn.sqlite"
    torn.write_bytes(data[: len(data) // 2] + b"\0" * 4096)  # a damaged, half-written file
    os.replace(torn, database)
    failed = wait_for("the failure in the status", lambda: watcher.info().get("failures"))
    assert failed >= 1 and watcher.info()["last_error"]
    time.sleep(1.5)  # at least one retry with backoff
    assert watcher.process.poll() is None, watcher.output()
    os.replace(good, database)
    note = note_path(vault, keys["he"])
    wait_for("recovery", contains(note, "from the backup"))
    wait_for("a clean status", lambda: watcher.info().get("failures") == 0)
    status = CliRunner().invoke(main, ["status", "--vault", str(vault), "--json"])
    daemon = json.loads(status.output)["daemon"]
    assert daemon["running"] and daemon["last_error"]  # the last error stays visible
    assert "failed" in watcher.output() and "retrying" in watcher.output()
    assert watcher.stop() == 0


@pytest.mark.slow
def test_missing_database_at_start_is_waited_for(tmp_path, watchers) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    zotero = tmp_path / "Zotero"
    zotero.mkdir()
    watcher = watchers(vault, "--zotero-dir", str(zotero))
    wait_for("the recorded fault", lambda: watcher.info().get("failures"))
    assert watcher.process.poll() is None
    assert not (vault / "Papers").exists()
    keys = build_zotero(tmp_path / "staging")
    os.replace(tmp_path / "staging" / "zotero.sqlite", zotero / "zotero.sqlite")
    wait_for("the first notes", lambda: note_path_or_none(vault, keys["he"]))
    assert watcher.stop() == 0


def note_path_or_none(vault: Path, key: str) -> Path | None:
    try:
        path = note_path(vault, key)
    except (KeyError, sqlite3.Error):
        return None
    return path if path.is_file() else None


@pytest.mark.slow
def test_polling_mode_sees_changes(library, watchers) -> None:
    vault, zotero, keys = library
    watcher = watchers(vault, "--zotero-dir", str(zotero), "--polling").started()
    assert "(polling)" in watcher.output()
    with hold_exclusive_lock(zotero / "zotero.sqlite", journal="wal") as zotero_app:
        zotero_app.call("add_tag", keys["soft"], "extends:NMS")
        method = vault / "Methods" / "NMS.md"
        wait_for("the method note from the new tag", contains(method, "bodla2017soft"))
    assert watcher.stop() == 0


@pytest.mark.slow
def test_real_zotero_database_title_change(real_zotero_db: Path, tmp_path, watchers) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    watcher = watchers(vault, "--zotero-dir", str(real_zotero_db.parent)).started()
    with State(vault) as state:
        key, note = next(
            (n.note_id, vault / n.path) for n in state.notes().values() if n.kind == "paper"
        )
    with hold_exclusive_lock(real_zotero_db, journal="wal") as zotero_app:
        zotero_app.call("set_field", key, "title", "A Title Changed While Zotero Runs")
        wait_for("the new title", contains(note, "A Title Changed While Zotero Runs"))
    assert watcher.stop() == 0


@pytest.mark.slow
def test_web_api_source_is_polled(tmp_path, watchers, httpserver, monkeypatch) -> None:
    from tests.test_api_source import KEY, FakeZotero, small_library

    fake = FakeZotero(httpserver)
    small_library(fake)
    monkeypatch.setenv("ZOTERO_API_KEY", KEY)  # inherited by the daemon
    vault = tmp_path / "vault"
    vault.mkdir()
    config = tmp_path / "config.toml"
    config.write_text(f'vault = "{vault}"\n[watch]\npoll_seconds = 0.5\n')
    args = ("--config", str(config), "--source", "web", "--library-id", "1", "--api-url", fake.url)
    watcher = watchers(vault, *args).started()
    assert "polling the web API every 0.5 s" in watcher.output()
    wait_for("a few polls", lambda: watcher.syncs() >= 3)
    fake.edit("BBBB2222", title="Highway Networks, edited on zotero.org")
    note = vault / "Papers" / "srivastava2015highway.md"
    wait_for("the polled edit", contains(note, "Highway Networks, edited on zotero.org"))
    assert watcher.stop() == 0


# -------------------------------------------------------------------- parts, no processes


def test_debouncer_waits_for_quiet_but_not_forever() -> None:
    debounce = Debouncer(quiet=0.5, longest=2.0)
    assert debounce.deadline() is None and not debounce.due(0.0)
    debounce.note(10.0)
    debounce.note(10.3)
    assert not debounce.due(10.7) and debounce.due(10.8)
    for tick in range(1, 20):  # a burst that never goes quiet
        debounce.note(10.3 + tick * 0.1)
    assert debounce.deadline() == 12.0
    debounce.reset()
    assert debounce.deadline() is None


def test_backoff_is_exponential_bounded_and_hurried_by_events() -> None:
    backoff = Backoff()
    delays = [backoff.failed(0.0) for _ in range(10)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and max(delays) == 60.0
    backoff.last_attempt = 100.0
    backoff.retry_at = 160.0
    backoff.hurry(100.2)  # a file changed: retry soon, but not within a second
    assert backoff.retry_at == 101.0
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.retry_at is None


def test_vault_filter_tells_own_writes_from_user_edits(tmp_path: Path) -> None:
    from bridge.daemon import RawEvent

    note = tmp_path / "Papers" / "a.md"
    note.parent.mkdir()
    note.write_text("one")
    vault_filter = VaultFilter(tmp_path.resolve(), "Papers")
    vault_filter.written = {"Papers/a.md": vault_filter.etag("Papers/a.md")}
    event = RawEvent("vault", "modified", str(tmp_path.resolve() / "Papers" / "a.md"), "", False)
    assert vault_filter.relevant_paths(event) == ["Papers/a.md"]
    assert vault_filter.changed("Papers/a.md") is False  # what the bridge wrote
    time.sleep(0.01)
    note.write_text("two, by the user")
    assert isinstance(vault_filter.changed("Papers/a.md"), str)
    temp = RawEvent("vault", "created", str(tmp_path / "Papers" / ".a.md.zob-1.tmp"), "", False)
    state = RawEvent("vault", "modified", str(tmp_path / ".zotero-bridge" / "x.md"), "", False)
    other = RawEvent("vault", "modified", str(tmp_path / "Daily" / "today.md"), "", False)
    assert [vault_filter.relevant_paths(e) for e in (temp, state, other)] == [[], [], []]


def test_lock_refuses_a_second_holder_and_probe_sees_it(tmp_path: Path) -> None:
    first = DaemonLock(tmp_path)
    first.acquire({"pid": os.getpid(), "syncs": 3})
    assert probe_lock(tmp_path) == {"pid": os.getpid(), "syncs": 3}
    with pytest.raises(DaemonRunningError, match=f"pid {os.getpid()}") as raised:
        DaemonLock(tmp_path).acquire({"pid": -1})
    assert raised.value.exit_code == 2
    first.release()
    assert probe_lock(tmp_path) is None
    again = DaemonLock(tmp_path)
    again.acquire({"pid": 1})
    again.release()


# ----------------------------------------------------------------------------- service


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd unit: Linux only")
def test_service_install_writes_a_systemd_user_unit(tmp_path: Path) -> None:
    vault = tmp_path / "my vault"
    vault.mkdir()
    config = tmp_path / "config dir" / "config.toml"
    config.parent.mkdir()
    config.write_text(f'vault = "{vault}"\n[source]\nzotero_dir = "{tmp_path / "Zotero"}"\n')
    runner = CliRunner()
    result = runner.invoke(main, ["service", "install", "--config", str(config), "--manual"])
    assert result.exit_code == 0, result.output
    unit = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user" / "zob-watch.service"
    text = unit.read_text()
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert exec_start.startswith(f"ExecStart={sys.executable} -m bridge.cli watch --config ")
    assert exec_start.endswith(f'"{config}"')  # quoted: the path has a space
    assert "RestartPreventExitStatus=2" in text and "WantedBy=default.target" in text
    assert "systemctl --user enable --now zob-watch.service" in result.output
    status = runner.invoke(main, ["service", "status", "--manual"])
    assert status.exit_code == 0 and str(unit) in status.output
    removed = runner.invoke(main, ["service", "uninstall", "--manual"])
    assert removed.exit_code == 0 and not unit.exists()
    gone = runner.invoke(main, ["service", "status", "--manual"])
    assert gone.exit_code == 8 and "Not installed" in gone.output  # EXIT_NO_SERVICE


def test_service_needs_a_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    result = CliRunner().invoke(main, ["service", "install", "--config", str(missing)])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_launchd_and_task_scheduler_contents(tmp_path: Path) -> None:
    import plistlib

    from bridge.service import LAUNCHD_LABEL, launchd_plist, schtasks_create

    config = tmp_path / "config.toml"
    plist = plistlib.loads(launchd_plist(config, tmp_path))
    assert plist["Label"] == LAUNCHD_LABEL and plist["RunAtLoad"] is True
    assert plist["ProgramArguments"][-3:] == ["watch", "--config", str(config)]
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    command = schtasks_create(config)
    assert command.startswith('schtasks /Create /TN "zob watch" /SC ONLOGON')
    assert "bridge.cli watch --config" in command
