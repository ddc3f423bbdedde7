"""The user's editor is a concurrent writer: syncs racing Obsidian-style saves lose no word.

DESIGN.md, "The user's editor is a concurrent writer"; issue 16, part 1. Obsidian saves a note
in place — `open(O_TRUNC)`, then one or more writes — so a sync can read a note that is empty,
half written, or that changes between the bridge's last check and its rename.

Two kinds of test:

* **Stress** (`@pytest.mark.slow`): a real editor process (tests/editor_process.py) saves one
  paper note every 20–30 ms with random 0–10 ms gaps between the truncate and its one or two
  writes, each save adding a uniquely numbered line (`- user line 0042`) to the user's part of
  the note, while Zotero changes the same item (title, abstract, a new highlight) and either
  `zob sync` runs again and again or `zob watch` runs. It types in bursts of 20–200 saves
  with pauses of 0.5–3.5 s — long enough for a settle window to pass, so a bridge that defers
  recently saved notes still writes this one — and a pause ends with a save the moment a
  bridge temp file (`.zob-*`) appears beside the note: that save lands while the bridge is
  writing, in its check-to-rename window. When the editor stops, Zotero makes a last change
  and syncs go on until it is in the note; then every line the editor saved must be in the
  note, its frontmatter (with `zotero_key`) and every region intact.
* **One test per window**, in-process and deterministic: a sync while the note is empty
  mid-save, while it is a strict prefix of the save, a save landing between the bridge's check
  and its rename (the bridge's `os.fsync` / `os.replace` widened by a hook that saves the note
  right there), and a note saved within the settle window by an editor that has not reloaded.

Why the oracle blames the bridge only for the bridge's losses
-------------------------------------------------------------
A line counts as *saved* once the editor's save of it has closed. The editor never removes a
line itself; each save is built from a base that is either what it last wrote itself, or —
when the note on disk is not that — the disk's version, as Obsidian reloads a note changed on
disk. Only two processes write the note: the editor and the bridge. So a saved line can vanish
only when (1) the bridge puts a version without it on disk, or (2) the editor adopts such a
version. The editor adopts a disk version only when it is

* *complete*: frontmatter with `zotero_key`, each managed region begun and ended exactly once
  — so it never adopts a note caught mid-write (by anyone writing in place), and
* *stable*: two reads ~8 ms apart agree — so it never adopts a write still in progress, nor
  (barring a pause of that length) a version a fixed bridge shows for an instant before it
  puts the user's bytes back.

The bursts and the pounce on a temp file change only *when* the editor saves, never what a
save contains, so they leave this reasoning as it is. Nor can its own saves lose lines behind
its back: a save builds on a base that holds every line it has saved unless the bridge took
them out, and writes the whole note. If the editor reads a version the bridge wrote and then
the bridge renames another one in before the editor's truncate, the editor's save (a superset
of the user's lines of any version the bridge built) overwrites the bridge's — that can undo a
Zotero change, never a user line; hence the "Zotero arrived" check uses a change Zotero makes
*after* the editor stopped (it must then arrive: nothing reverts it any more).

So a saved line missing at the end was dropped by the bridge: it wrote a complete version
without the line (it merged an empty or half-written read, or its rename replaced a save that
landed after its check — the save's bytes then went into the unlinked file). The editor also
logs every stable *incomplete* version it met (the bridge wrote back a stub or a half note);
it keeps saving from its own last version (as a user would undo), which hides that loss from
the final note, so those versions are counted and asserted on separately: "no note left
without its frontmatter".

Timing: the stress tests use real time (the editor is another process); `SETTLE_S` bounds the
settle window a fixed bridge may apply (Obsidian saves ~2 s after the last keystroke), and
syncs poll for Zotero's change for `ARRIVE_S`. No latency is asserted (bench/ does timings).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.apply import SyncResult, apply
from bridge.config import Config
from bridge.daemon import probe_lock
from bridge.plan import PlanContext, plan
from bridge.sources.sqlite import SqliteSource
from bridge.state import State
from bridge.sync import SyncOptions, make_renderer, sync
from bridge.vault.fs import Vault
from tests.editor_process import complete, user_lines, with_line
from tests.helpers import retitle, synced_paper
from tests.zotero_db import ZoteroDB

REPO = Path(__file__).resolve().parent.parent
EDITOR = Path(__file__).with_name("editor_process.py")
KEY_CITE = "race2020"
SETTLE_S = 3.0  # longer than any settle window a fixed bridge applies (Obsidian: ~2 s)
ARRIVE_S = 15.0  # how long syncs may take to bring Zotero's change once the note is quiet
REGIONS = ("abstract", "annotations", "lineage")


# ----------------------------------------------------------------------------- the library


@dataclass
class Library:
    """A Zotero database with one paper (kept open: edits are stamped by its own clock) and
    a vault where the first sync wrote the paper's note."""

    data_dir: Path
    vault: Path
    db: ZoteroDB
    key: str
    attachment: str
    note: Path
    changes: int = 0

    def change(self, what: str | None = None) -> str:
        """Zotero changes the item (title, abstract or a new highlight, in turn); returns the
        text that must reach the note."""
        self.changes += 1
        n = self.changes
        what = what or ("title", "abstract", "highlight")[n % 3]
        if what == "title":
            text = f"Racing Paper, revision {n}"
            self.db.set_field(self.key, "title", text)
        elif what == "abstract":
            text = f"Abstract revision {n}."
            self.db.set_field(self.key, "abstractNote", text)
        else:
            text = f"Zotero highlight {n}"
            self.db.add_annotation(self.attachment, text=text, page_label=str(n % 9 + 1))
        self.db.commit()
        return text

    def sync(self) -> Any:
        """One in-process sync at this moment, as `zob watch` runs it: a note being saved is
        deferred, not waited for (`zob sync`, which waits and syncs again, runs as a real
        process in the stress test)."""
        return sync(
            Config(vault=self.vault, zotero_dir=self.data_dir),
            SyncOptions(wait_for_saves=False),
            source=SqliteSource(self.data_dir),
        )

    def zob_sync(self, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bridge.cli", "sync", "--vault", str(self.vault),
             "--zotero-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=timeout, cwd=REPO,
        )  # fmt: skip

    def text(self) -> str:
        return self.note.read_bytes().decode("utf-8", "replace")


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    vault = tmp_path / "vault"
    vault.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    key = db.add_item(
        title="Racing Paper",
        date="2020",
        creators=[("author", "Ada", "Racer")],
        citation_key=KEY_CITE,
        abstractNote="The first abstract.",
    )
    attachment = db.add_attachment(key, filename="race.pdf")
    db.add_annotation(attachment, text="The first highlight", page_label="1")
    db.commit()
    library = Library(data_dir, vault, db, key, attachment, vault / "Papers" / f"{KEY_CITE}.md")
    result = library.sync()
    assert result.created >= 1 and result.ok, result.errors
    assert complete(library.text()), library.text()
    yield library
    db.conn.close()


# ----------------------------------------------------------------------------- the oracle


def note_problems(text: str, key: str, saved: set[int]) -> list[str]:
    """What is wrong with a note the user saved `saved` lines into ([] when nothing is)."""
    problems = []
    lost = sorted(saved - user_lines(text))
    if lost:
        shown = ", ".join(f"{n:04d}" for n in lost[:40]) + (" …" if len(lost) > 40 else "")
        problems.append(f"{len(lost)} user line(s) lost: {shown}")
    front = text.startswith("---\n") and text.find("\n---\n", 3)
    if not front or f"\nzotero_key: {key}" not in text[:front]:
        problems.append("the frontmatter (with zotero_key) is gone")
    lines = text.split("\n")
    for name in REGIONS:
        begin, end = f"%% zob:begin {name} %%", f"%% zob:end {name} %%"
        if (
            lines.count(begin) != 1
            or lines.count(end) != 1
            or lines.index(begin) > lines.index(end)
        ):
            problems.append(f"region {name!r} is not begun and ended once")
    return problems


def describe(text: str, limit: int = 1200) -> str:
    return f"--- note ({len(text)} chars), head:\n{text[:limit]}\n--- end of head"


def assert_intact(lib: Library, saved: set[int], when: str) -> str:
    text = lib.text()
    problems = note_problems(text, lib.key, saved)
    assert not problems, f"{when}: " + "; ".join(problems) + "\n" + describe(text)
    return text


def sync_until(lib: Library, wanted: list[str], saved: set[int], timeout: float = ARRIVE_S) -> int:
    """Sync (in-process) until every string of `wanted` is in the note, checking after every
    sync that nothing the user saved is lost; returns the number of syncs it took."""
    deadline = time.monotonic() + timeout
    syncs = 0
    while True:
        lib.sync()
        syncs += 1
        text = assert_intact(lib, saved, f"after sync {syncs} of the settling syncs")
        missing = [w for w in wanted if w not in text]
        if not missing:
            return syncs
        if time.monotonic() > deadline:
            raise AssertionError(
                f"Zotero's change never reached the note ({syncs} syncs, {timeout:g} s): "
                f"missing {missing}\n{describe(text)}"
            )
        time.sleep(0.25)


def save_in_place(path: Path, data: bytes) -> None:
    """One Obsidian-style save, no gaps: truncate, write, close."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ the editor process


@dataclass
class EditorReport:
    saved: set[int]
    counts: dict[str, int]
    adopted_missing: set[int]  # saved lines absent from a complete version the editor adopted
    incomplete: list[dict[str, Any]]  # stable incomplete versions it met (stubs, halves)

    def summary(self) -> str:
        stubs = "".join(
            f"\n  incomplete note on disk ({e['incomplete']} bytes, lacking {len(e['missing'])}"
            f" saved lines):\n    " + e["head"][:300].replace("\n", "\n    ")
            for e in self.incomplete[:3]
        )
        return (
            f"editor: {self.counts}; lines dropped from versions it reloaded: "
            f"{sorted(self.adopted_missing)[:40]}{stubs}"
        )


class EditorProcess:
    def __init__(self, tmp_path: Path, note: Path, seed: int, seconds: float) -> None:
        self.log = tmp_path / f"editor-{seed}.jsonl"
        self.stop_file = tmp_path / f"editor-{seed}.stop"
        self.process = subprocess.Popen(
            [sys.executable, str(EDITOR), "--note", str(note), "--log", str(self.log),
             "--stop", str(self.stop_file), "--seed", str(seed), "--seconds", str(seconds),
             "--bursts"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def saves(self) -> int:
        try:
            return self.log.read_text().count('{"saved"')
        except FileNotFoundError:
            return 0

    def stop(self) -> EditorReport:
        self.stop_file.touch()
        try:
            output, _ = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            output, _ = self.process.communicate()
        assert self.process.returncode == 0, f"the editor process failed:\n{output}"
        records = [json.loads(line) for line in self.log.read_text().splitlines()]
        done = records[-1]
        assert done.get("done"), f"the editor did not finish: {records[-3:]}"
        saved = set(done["saved_lines"])
        assert saved == {r["saved"] for r in records if "saved" in r}
        adopted_missing = {n for r in records if "adopted" in r for n in r["missing"]}
        incomplete = [r for r in records if "incomplete" in r]
        counts = done["counts"]
        return EditorReport(saved, counts, adopted_missing, incomplete)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def editors(tmp_path: Path) -> Iterator[Callable[..., EditorProcess]]:
    started: list[EditorProcess] = []

    def start(note: Path, seed: int, seconds: float) -> EditorProcess:
        editor = EditorProcess(tmp_path, note, seed, seconds)
        started.append(editor)
        return editor

    yield start
    for editor in started:
        editor.kill()


def final_verdict(lib: Library, report: EditorReport, runs: str) -> None:
    """The stress tests' oracle: every saved line in the note, its frontmatter and regions
    intact, and no stable note without frontmatter or regions met on the way."""
    text = lib.text()
    problems = note_problems(text, lib.key, report.saved)
    if report.incomplete:
        lacking = set().union(*(set(e["missing"]) for e in report.incomplete))
        problems.append(
            f"the bridge left {len(report.incomplete)} incomplete note(s) on disk (a stub or a"
            f" half: frontmatter or regions gone), together lacking {len(lacking)} saved lines"
        )
    assert not problems, (
        f"{runs}; {len(report.saved)} lines saved\n"
        + "\n".join(problems)
        + f"\n{report.summary()}\n{describe(text)}"
    )


# ------------------------------------------------------------------------ stress: zob sync


SYNC_RUNS = 200
# `zob sync` waits for a note being saved (up to a few settle windows) before it gives up on
# it: against an editor that never stops, a run takes seconds. The race runs this long.
SYNC_RACE_S = 60.0


@pytest.mark.slow
def test_repeated_zob_sync_racing_an_editor_loses_no_line(lib: Library, editors) -> None:
    editor = editors(lib.note, seed=16, seconds=300)
    codes: dict[int, int] = {}
    odd: list[str] = []
    started = time.monotonic()
    try:
        for _ in range(SYNC_RUNS):
            if time.monotonic() - started > SYNC_RACE_S:
                break
            lib.change()
            run = lib.zob_sync()
            codes[run.returncode] = codes.get(run.returncode, 0) + 1
            if run.returncode not in (0, 1) and len(odd) < 3:
                odd.append(f"exit {run.returncode}: {run.stderr.strip()[-400:]}")
    finally:
        report = editor.stop()
    assert len(report.saved) >= 300, f"only {len(report.saved)} saves: the harness was too slow"
    last = [lib.change("title"), lib.change("highlight")]
    deadline = time.monotonic() + ARRIVE_S
    settling = 0
    while not all(w in lib.text() for w in last) and time.monotonic() < deadline:
        lib.zob_sync()
        settling += 1
        time.sleep(0.2)
    arrived = all(w in lib.text() for w in last)
    lib.zob_sync()  # once more: the settled note stays whole
    racing = sum(codes.values())
    runs = f"{racing} racing `zob sync` runs (exit codes {codes}), {settling + 1} settling runs"
    print(f"{runs}; {len(report.saved)} saves")  # shown with -s: the closing notes' figures
    final_verdict(lib, report, runs)
    assert arrived, f"Zotero's last change {last} never arrived\n{describe(lib.text())}"
    assert not odd, f"{runs}: unexpected exits:\n" + "\n".join(odd)


# ----------------------------------------------------------------------- stress: zob watch


WATCH_S = 60.0


def daemon_syncs(vault: Path, pid: int) -> int:
    info = probe_lock(vault) or {}
    return int(info.get("syncs", 0)) if info.get("pid") == pid else 0


@pytest.mark.slow
def test_zob_watch_racing_an_editor_loses_no_line(lib: Library, editors, tmp_path: Path) -> None:
    log_path = tmp_path / "watch.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "watch", "--vault", str(lib.vault),
             "--zotero-dir", str(lib.data_dir), "-v"],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while daemon_syncs(lib.vault, daemon.pid) < 1:
            assert daemon.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.05)
        editor = editors(lib.note, seed=61, seconds=WATCH_S + 60)
        started = time.monotonic()
        try:
            while time.monotonic() - started < WATCH_S:
                lib.change()
                time.sleep(0.4 + (lib.changes % 5) * 0.15)  # 0.4–1.0 s: every phase of the debounce
        finally:
            report = editor.stop()
        racing = daemon_syncs(lib.vault, daemon.pid)
        last = [lib.change("title"), lib.change("highlight")]
        deadline = time.monotonic() + ARRIVE_S + 5
        while not all(w in lib.text() for w in last) and time.monotonic() < deadline:
            assert daemon.poll() is None, log_path.read_text()[-2000:]
            time.sleep(0.1)
        quiet_since, count = time.monotonic(), daemon_syncs(lib.vault, daemon.pid)
        while time.monotonic() - quiet_since < 2.0 and time.monotonic() < deadline + 10:
            time.sleep(0.1)  # until no sync for 2 s: the daemon has settled
            if daemon_syncs(lib.vault, daemon.pid) != count:
                quiet_since, count = time.monotonic(), daemon_syncs(lib.vault, daemon.pid)
        runs = (
            f"`zob watch` for {WATCH_S:g} s ({racing} syncs while the editor ran,"
            f" {daemon_syncs(lib.vault, daemon.pid)} in all)"
        )
        assert len(report.saved) >= 300, f"only {len(report.saved)} saves: the harness was too slow"
        final_verdict(lib, report, runs)
        assert all(w in lib.text() for w in last), (
            f"Zotero's last change {last} never arrived\n{log_path.read_text()[-2000:]}"
        )
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


# ------------------------------------------------------------- each window, deterministic


def _mid_save(lib: Library, written: bytes, stalled: bool) -> None:
    """A save caught after its truncate and `written` (a strict prefix of it): a sync runs
    then; the save finishes and must be what the note holds; later syncs bring Zotero's
    change without losing it."""
    before = lib.note.read_bytes()
    save = with_line(before.decode(), 1).encode()
    assert save.startswith(written)
    wanted = lib.change("title")
    fd = os.open(lib.note, os.O_WRONLY | os.O_TRUNC)
    try:
        if written:
            os.write(fd, written)
        if stalled:  # the save hangs (a slow disk, a sync client): no settle window covers it
            time.sleep(SETTLE_S)
        during = lib.sync()
        seen = lib.note.read_bytes()
        os.write(fd, save[len(written) :])
    finally:
        os.close(fd)
    after = lib.note.read_bytes()
    if after != save:
        pytest.fail(
            f"the editor's save did not reach the note: the sync (updated {during.updated},"
            f" skipped {during.skipped}) replaced the note while it was being saved "
            f"({len(written)} of {len(save)} bytes written); the sync left:\n{seen[:600].decode()}"
            f"\n--- and the note now is:\n{describe(after.decode())}",
            pytrace=False,
        )
    sync_until(lib, [wanted], {1})


@pytest.mark.parametrize("stalled", [False, True], ids=["mid-save", "stalled"])
def test_a_sync_while_the_note_is_empty_mid_save_loses_nothing(lib: Library, stalled: bool) -> None:
    _mid_save(lib, b"", stalled)


CUTS = {
    # where a strict prefix of the save ends: inside the frontmatter; right after it (every
    # region missing); after the abstract region (the other regions missing) — each before the
    # user's new line, so also a strict prefix of what the bridge last saw; and after the new
    # line (not a prefix of anything the bridge saw: only while the save is recent can a
    # bridge tell it from a user who deleted the rest, so it has no stalled variant)
    "in-frontmatter": lambda text: text.index("\nzotero_key:") + 5,
    "after-frontmatter": lambda text: text.index("\n---\n", 3) + 5,
    "between-regions": lambda text: text.index("%% zob:end abstract %%\n") + 23,
    "after-the-new-line": lambda text: text.index("### Still unclear"),
}


@pytest.mark.parametrize(
    ("cut", "stalled"),
    [(cut, False) for cut in CUTS] + [(cut, True) for cut in CUTS if cut != "after-the-new-line"],
    ids=lambda v: ("stalled" if v else "mid-save") if isinstance(v, bool) else v,
)
def test_a_sync_while_the_note_is_half_written_loses_nothing(
    lib: Library, cut: str, stalled: bool
) -> None:
    save = with_line(lib.text(), 1)
    _mid_save(lib, save[: CUTS[cut](save)].encode(), stalled)


class _SaveInWindow:
    """Patches `os.<name>` so that, the first time the bridge calls it for the note's
    temp file (fsync) or the note (replace/rename), the user saves the note right there."""

    def __init__(self, lib: Library, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lib = lib
        self.fired = 0
        self.saved: bytes | None = None
        names = ("replace", "rename") if name == "replace" else (name,)
        for each in names:
            monkeypatch.setattr(os, each, self._hook(getattr(os, each), each))
        if name == "replace":  # the atomic swap that stands in for the rename on Linux
            import bridge.vault.swap as swap_module

            swap = swap_module._exchange
            monkeypatch.setattr(
                swap_module, "_exchange", self._hook(lambda d, a, b: swap(d, a, b), "swap")
            )

    def _hook(self, real: Callable[..., Any], name: str) -> Callable[..., Any]:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            if not self.fired and self._ours(name, args):
                self.fired += 1
                time.sleep(0.01)
                current = self.lib.note.read_bytes()  # what the bridge checked (or newer)
                self.saved = with_line(current.decode(), 2).encode()
                save_in_place(self.lib.note, self.saved)
            return real(*args, **kwargs)

        return hooked

    def _ours(self, name: str, args: tuple[Any, ...]) -> bool:
        if name == "fsync":
            try:
                if not stat.S_ISREG(os.fstat(args[0]).st_mode):
                    return False
                where = os.readlink(f"/proc/self/fd/{args[0]}")  # temp files are write-only
                with open(where, "rb") as handle:
                    head = handle.read(1 << 16)
            except OSError:
                return False
            return f"zotero_key: {self.lib.key}".encode() in head
        if name == "swap":  # _exchange(folder, temp, note)
            return os.fsencode(args[2]).endswith(os.fsencode(self.lib.note.name))
        return len(args) > 1 and os.fsencode(args[1]).endswith(os.fsencode(self.lib.note.name))


@pytest.mark.parametrize(
    "hook",
    [
        pytest.param(
            "fsync",
            marks=pytest.mark.skipif(
                not os.path.isdir("/proc/self/fd"), reason="finds the temp file through /proc"
            ),
        ),
        "replace",
    ],
)
def test_a_save_between_the_check_and_the_rename_is_kept(
    lib: Library, hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    line1 = with_line(lib.text(), 1).encode()
    save_in_place(lib.note, line1)  # the user typed a while ago
    wanted = lib.change("title")
    window = _SaveInWindow(lib, hook, monkeypatch)
    deadline = time.monotonic() + ARRIVE_S
    while not window.fired:  # a settle window may hold the note back until it is quiet
        lib.sync()
        assert_intact(lib, {1}, "a sync before the window was reached")
        assert time.monotonic() < deadline, (
            f"the bridge never called os.{hook} (or its swap) for the note within"
            f" {ARRIVE_S:g} s: widen the check-to-rename window another way\n{describe(lib.text())}"
        )
        time.sleep(0.25)
    assert_intact(lib, {1, 2}, f"the sync during which the user saved (in os.{hook})")
    monkeypatch.undo()
    sync_until(lib, [wanted], {1, 2})


def test_a_note_saved_within_the_settle_window_gets_zotero_s_change_later(lib: Library) -> None:
    """Obsidian saves ~2 s after the last keystroke and reloads a changed note only when it
    can: a save built from its buffer may follow a sync's write. A bridge that merged while
    the user was still typing sees that save as the user undoing Zotero's change."""
    buffer = lib.text()
    first = with_line(buffer, 1)
    save_in_place(lib.note, first.encode())  # typed, saved
    wanted = [lib.change("title"), lib.change("abstract")]
    during = lib.sync()  # within the settle window of that save
    seen = lib.text()
    time.sleep(0.3)
    save_in_place(lib.note, with_line(first, 2).encode())  # still typing: from its buffer
    assert_intact(lib, {1, 2}, "the editor's second save")
    try:
        sync_until(lib, wanted, {1, 2})
    except AssertionError as exc:
        merged = "merged" if seen != first else "left alone"
        raise AssertionError(
            f"{exc}\nThe sync within the settle window {merged} the note (updated"
            f" {during.updated}); the editor's next save then undid Zotero's change for good"
        ) from None


def test_same_size_save_in_the_same_mtime_tick_is_not_overwritten(tmp_path: Path) -> None:
    item, source, config, note = synced_paper(tmp_path)
    retitle(source, item, "Zotero title")
    ctx = PlanContext(config.papers_folder, make_renderer(config))
    with State(config.vault) as state:
        actions = plan(source.read(), state.notes(), Vault(config.vault), ctx)
        stat = os.stat(note)
        text = note.read_text()
        same_size = text.replace("- **Problem:** \n", "- **Problem:**X\n", 1)
        assert len(same_size.encode()) == len(text.encode())
        note.write_text(same_size)
        os.utime(note, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a coarse clock: same mtime
        result = apply(actions, Vault(config.vault), state, SyncResult())
    assert len(result.deferred) == 1 and "**Problem:**X" in note.read_text()
