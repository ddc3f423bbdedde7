"""End-to-end latency of `zob watch`: a change committed by a running Zotero → the note on disk.

A library of `items` items (a PDF each, a highlight on every fifth) is built in Zotero's real
layout with tests/zotero_db.py and synced once. Then `zob watch` runs as a real subprocess
while another process plays Zotero 10: it holds `locking_mode=EXCLUSIVE` in WAL mode and
commits title changes one at a time. Each latency is measured from the moment the commit has
returned to the moment the note's file shows the new title (polled every 2 ms); the next change
waits until the daemon's sync has finished, so changes do not queue behind each other.

    python bench/watch_latency.py --items 10000 --changes 20
    from bench.watch_latency import measure_watch_latency   # → {"watch_latency_p50_s", …}

What a latency is made of: the debounce (`watch.debounce_seconds`, default 0.5 s, the quiet
time a burst of file events must have) plus one incremental sync. `--debounce` changes it, to
tell the two apart; the per-change sync times are printed too.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bridge.config import Config  # noqa: E402
from bridge.daemon import probe_lock  # noqa: E402
from bridge.state import State  # noqa: E402
from bridge.sync import sync  # noqa: E402
from tests.zotero_db import ZoteroDB, hold_exclusive_lock  # noqa: E402

WAIT_SECONDS = 120.0  # per step; a 10,000-item daemon start takes a few seconds


@dataclass
class LatencyRun:
    items: int
    debounce: float
    latencies: list[float] = field(default_factory=list)
    sync_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, float]:
        return {
            "watch_latency_p50_s": round(statistics.median(self.latencies), 3),
            "watch_latency_p95_s": round(_percentile(self.latencies, 95), 3),
        }


def _percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 20 samples is the 19th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def build_library(data_dir: Path, items: int) -> list[str]:
    """`items` journal articles with a PDF each and a highlight on every fifth; their keys."""
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = []
    with ZoteroDB.create(data_dir / "zotero.sqlite", journal="delete") as db:
        for i in range(items):
            key = db.add_item(
                title=f"Paper {i}: a study of things",
                date=str(1990 + i % 35),
                creators=[("author", "Ada", f"Author{i % 997}"), ("author", "Alan", "Turing")],
                tags=[f"topic{i % 50}"],
                publicationTitle="Journal of Benchmarks",
                DOI=f"10.1000/bench.{i}",
                abstractNote="An abstract of moderate length. " * 8,
            )
            attachment = db.add_attachment(key, filename=f"paper{i}.pdf")
            if i % 5 == 0:
                db.add_annotation(attachment, text=f"A highlight in paper {i}", page_label="2")
            keys.append(key)
    return keys


def _wait(what: str, check: Any, timeout: float = WAIT_SECONDS, every: float = 0.002) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out waiting for {what}")


def _syncs(vault: Path, pid: int) -> int:
    info = probe_lock(vault) or {}
    return int(info.get("syncs", 0)) if info.get("pid") == pid else 0


def _settle(vault: Path, pid: int, quiet: float) -> int:
    """Wait until the daemon has not synced for `quiet` seconds."""
    count = _syncs(vault, pid)
    while True:
        time.sleep(quiet)
        now = _syncs(vault, pid)
        if now == count:
            return count
        count = now


def run_watch_latency(
    items: int = 10_000, changes: int = 20, *, debounce: float = 0.5, workdir: Path | None = None
) -> LatencyRun:
    """Build, sync, start `zob watch`, commit `changes` title edits, time each one."""
    with tempfile.TemporaryDirectory(prefix="zob-bench-", dir=workdir) as tmp:
        root = Path(tmp)
        zotero, vault = root / "Zotero", root / "vault"
        vault.mkdir()
        keys = build_library(zotero, items)
        config_file = root / "config.toml"
        config_file.write_text(
            f"vault = {json.dumps(str(vault))}\n[source]\nzotero_dir = {json.dumps(str(zotero))}"
            f"\n[watch]\ndebounce_seconds = {debounce}\n"
        )
        sync(Config().with_overrides(vault=vault, zotero_dir=zotero))  # the first, full sync
        targets = [keys[i * len(keys) // changes] for i in range(changes)]
        with State(vault) as state:
            notes = {key: vault / note.path for key, note in state.notes().items()}
        env = {**os.environ, "XDG_STATE_HOME": str(root / "state")}  # its log stays in tmp
        log = open(root / "watch.log", "wb")  # noqa: SIM115 - closed in finally
        daemon = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "watch", "--config", str(config_file)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )
        run = LatencyRun(items, debounce)
        try:
            _wait("the daemon's first sync", lambda: _syncs(vault, daemon.pid) >= 1)
            with hold_exclusive_lock(zotero / "zotero.sqlite", journal="wal") as zotero_app:
                _settle(vault, daemon.pid, max(1.0, 4 * debounce))  # the switch to WAL
                for n, key in enumerate(targets):
                    _one_change(run, zotero_app, vault, daemon.pid, key, notes[key], n)
        except Exception:
            log.flush()
            sys.stderr.write((root / "watch.log").read_text(errors="replace")[-4000:])
            raise
        finally:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
            log.close()
        return run


def _one_change(
    run: LatencyRun, zotero_app: Any, vault: Path, pid: int, key: str, note: Path, n: int
) -> None:
    title = f"Changed title number {n} ({time.time_ns()})"
    before = _syncs(vault, pid)
    zotero_app.call("set_field", key, "title", title)
    committed = time.perf_counter()
    _wait(f"change {n} in {note.name}", lambda: title in note.read_text(encoding="utf-8"))
    run.latencies.append(time.perf_counter() - committed)
    _wait(f"the end of the sync of change {n}", lambda: _syncs(vault, pid) > before, every=0.01)
    run.sync_seconds.append(float((probe_lock(vault) or {}).get("last_sync_seconds") or 0.0))
    time.sleep(0.1)


def measure_watch_latency(items: int, changes: int = 20) -> dict[str, float]:
    """Median and p95 seconds from a committed Zotero change to the note on disk."""
    return run_watch_latency(items, changes).summary()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000, help="library size (10000)")
    parser.add_argument("--changes", type=int, default=20, help="title changes timed (20)")
    parser.add_argument("--debounce", type=float, default=0.5, help="watch.debounce_seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.changes < 1 or args.items < args.changes:
        parser.error("need --changes ≥ 1 and --items ≥ --changes")
    run = run_watch_latency(args.items, args.changes, debounce=args.debounce)
    summary = run.summary()
    if args.json:
        print(json.dumps({**summary, "items": run.items, "debounce_s": run.debounce}))
        return 0
    sync_median = statistics.median(run.sync_seconds)
    print(f"zob watch latency, {run.items} items, {len(run.latencies)} changes, "
          f"debounce {run.debounce:g} s")  # fmt: skip
    print(f"  p50 {summary['watch_latency_p50_s']:.3f} s   p95 "
          f"{summary['watch_latency_p95_s']:.3f} s   (goal: p95 ≤ 1 s)")  # fmt: skip
    slowest = max(run.sync_seconds)
    print(f"  incremental sync alone: median {sync_median:.3f} s, max {slowest:.3f} s")
    print("  samples: " + " ".join(f"{x:.2f}" for x in run.latencies))
    return 0


if __name__ == "__main__":
    sys.exit(main())
