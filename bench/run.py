"""The bridge's benchmark: the figures of issue 7, each size measured in one run.

    python bench/run.py                        # 1,000 and 10,000 items, a rich table
    python bench/run.py --items 10000 --json   # one size, one JSON object
    python bench/run.py --sizes 10000,50000    # adds `scaling` and the 50k peak RSS
    python bench/run.py --items 10000 --profile /tmp/prof   # pyinstrument reports per sync

Per size: generate a seeded library (bench/library.py) → full sync into an empty vault →
the floor (bench/floor.py) and the same sync as a dry run (`compute_s`: reading and planning
every note, nothing written) while the notes settle → no-op sync → one title changed in Zotero,
sync → the peer (bench/peer.py) on the same library → watch latency (bench/watch_latency.py,
when it exists). Every bridge sync runs in its own process (bench/sync_child.py) so its peak
RSS is its own; its time is the `sync()` call, imports excluded.

The no-op sync starts at least 2.5 s after the full sync ended: the planner reads any note
modified less than 2 s ago instead of trusting its etag (bridge/vault/etag.py `etag_settled`,
file-system clocks are coarse), which is also how it goes in real use — a sync follows Zotero
edits, not its own writes within the same second.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from bench import peer as peer_mod  # noqa: E402
from bench.floor import measure_floor  # noqa: E402
from bench.library import GeneratedLibrary, generate  # noqa: E402

SETTLE_S = 2.5  # > bridge.vault.etag.RECENT_NS (2 s)
REFERENCE_ITEMS = 10_000
TARGETS = {  # figure: (limit, the size it applies to; None = the reference size)
    "full_over_floor": (3.0, None),
    "noop_over_full": (0.05, None),
    "files_rewritten": (0, None),
    "one_change_over_full": (0.02, None),
    "peak_rss_mb": (250.0, 50_000),
    "scaling": (6.0, None),
    "watch_latency_p95_s": (1.0, None),
}


# --------------------------------------------------------------------------- one sync


def bridge_sync(
    vault: Path, zotero_dir: Path, profile: Path | None = None, *, dry_run: bool = False
) -> dict[str, Any]:
    """One `bridge.sync.sync` in a child process; its JSON line, or an `error`."""
    command = [sys.executable, str(BENCH / "sync_child.py"), str(vault), str(zotero_dir)]
    if profile is not None:
        command += ["--profile", str(profile)]
    if dry_run:
        command.append("--dry-run")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # An installed package has its bytecode compiled (pip does it); a checkout run with
    # PYTHONDONTWRITEBYTECODE would compile the modules a sync imports lazily every time.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    began = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=3600)
    wall = time.perf_counter() - began
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        return {"error": (done.stderr or done.stdout).strip()[-1500:], "wall_s": wall}
    result = json.loads(lines[-1])
    result["wall_s"] = wall
    return result


def tree_state(root: Path, skip: str = ".zotero-bridge") -> dict[str, tuple[int, int, int]]:
    """Every file below `root` (the bridge's state folder aside) → (mtime_ns, inode, size)."""
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != skip]
        for name in filenames:
            stat = os.stat(os.path.join(dirpath, name))
            rel = os.path.relpath(os.path.join(dirpath, name), root)
            found[rel] = (stat.st_mtime_ns, stat.st_ino, stat.st_size)
    return found


def changed_files(before: dict, after: dict) -> list[str]:
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


def note_sizes(vault: Path) -> list[int]:
    """Sizes of the Markdown files a sync wrote (what the floor writes too)."""
    return [size for rel, (_, _, size) in tree_state(vault).items() if rel.endswith(".md")]


def settle(since: float) -> None:
    time.sleep(max(0.0, SETTLE_S - (time.perf_counter() - since)))


def edit_title(db_path: Path, key: str, suffix: str) -> None:
    """Change one item's title the way Zotero's item pane does (moves clientDateModified)."""
    from tests.zotero_db import ZoteroDB

    db = ZoteroDB.open(db_path)
    try:
        title = db.conn.execute(
            "SELECT v.value FROM itemData d JOIN itemDataValues v USING (valueID) "
            "WHERE d.itemID = ? AND d.fieldID = 1",
            (db.item_id(key),),
        ).fetchone()[0]
        db.set_field(key, "title", f"{title} {suffix}")
    finally:
        db.close()


# --------------------------------------------------------------------------- one size


class SyncFailed(Exception):
    pass


def run_size(items: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    say = (lambda *a: None) if args.json else (lambda *a: print(*a, file=sys.stderr, flush=True))
    base = work / f"items-{items}"
    zotero_dir = base / "zotero"
    zotero_dir.mkdir(parents=True)
    db_path = zotero_dir / "zotero.sqlite"
    say(f"[{items}] generating the library (seed {args.seed})")
    began = time.perf_counter()
    library = generate(db_path, items, seed=args.seed)
    out: dict[str, Any] = {
        "items": items,
        "annotations": library.annotations,
        "attachments": library.attachments,
        "lineage_items": library.lineage_items,
        "generate_s": time.perf_counter() - began,
        "db_mb": db_path.stat().st_size / 2**20,
        "repeat": args.repeat,
    }
    # A user's library is at rest when they first sync it: a database written less than
    # 2 s earlier is one the source may not fingerprint yet (sqlite.py, coarse clocks), so
    # the freshly generated one settles first, as the notes do before the no-op.
    settle(began + out["generate_s"])
    cycles = []
    try:
        for cycle in range(args.repeat):
            cycles.append(bridge_cycle(library, base, cycle, args, say))
    except SyncFailed as exc:
        out["error"] = str(exc)
        return out
    out.update(best_of(cycles))
    extras = items <= args.extras_max_items
    skipped = f"not run above --extras-max-items {args.extras_max_items}"
    if args.no_peer or not extras:
        out["peer_skipped"] = "--no-peer" if args.no_peer else skipped
    else:
        say(f"[{items}] peer: {peer_mod.PEER} {peer_mod.PEER_VERSION}")
        out.update(measure_peer(library, base, out["full_process_s"], args.repeat))
    if args.no_watch or not extras:
        out["watch_skipped"] = "--no-watch" if args.no_watch else skipped
    else:
        out.update(measure_watch(items, args, say))
    if args.keep:
        out["work_dir"] = str(base)
    else:
        shutil.rmtree(base, ignore_errors=True)
    return out


def bridge_cycle(
    library: GeneratedLibrary, base: Path, cycle: int, args: argparse.Namespace, say: Any
) -> dict[str, Any]:
    """Full sync into an empty vault, the floor, a no-op sync, one change and its sync."""
    items, zotero_dir, db_path = library.items, library.path.parent, library.path
    tag = f"[{items}{f' #{cycle + 1}' if args.repeat > 1 else ''}]"

    def sync(stage: str, into: Path | None = None) -> dict[str, Any]:
        profile = None
        if args.profile:
            profile = args.profile / f"{items}-{stage}-{cycle + 1}.{args.profile_format}"
        os.sync()  # nobody pays for the previous step's dirty pages (ext4 data=ordered)
        result = bridge_sync(into or vault, zotero_dir, profile, dry_run=stage == "compute")
        if "error" in result:
            raise SyncFailed(f"{stage} sync failed: {result['error']}")
        return result

    vault = base / f"vault-{cycle + 1}"
    vault.mkdir()
    say(f"{tag} full sync")
    full = sync("full")
    full_ended = time.perf_counter()
    sizes = note_sizes(vault)
    floors = []
    for _ in range(3):
        os.sync()
        floors.append(measure_floor(db_path, sizes, base))
    floor = min(floors, key=lambda f: f["floor_s"])
    say(f"{tag} the same first sync as a dry run: reading and planning, nothing written")
    empty = base / f"compute-{cycle + 1}"
    empty.mkdir()
    compute = sync("compute", into=empty)
    say(f"{tag} waiting for the notes to settle, then the no-op sync")
    settle(full_ended)
    before = tree_state(vault)
    noop = sync("noop")
    rewritten = changed_files(before, tree_state(vault))
    say(f"{tag} one title changed, sync")
    edit_title(db_path, library.change_target(), f"(revised {cycle + 1})")
    before = tree_state(vault)
    one = sync("one-change")
    touched = changed_files(before, tree_state(vault))
    # Nothing is deleted until the size is done (`run_size`): on this machine's ext4, mounted
    # with `discard`, file creation right after deleting ~10,000 files ran 5-10x slower for
    # a while, and whichever step came next paid for it
    return {
        **floor,
        "full_s": full["seconds"],
        "full_process_s": full["wall_s"],
        "compute_s": compute["seconds"],
        "notes_written": len(sizes),
        "notes_mb": sum(sizes) / 2**20,
        "full_counts": full["counts"],
        "noop_s": noop["seconds"],
        "files_rewritten": len(rewritten),
        "files_rewritten_sample": rewritten[:5],
        "one_change_s": one["seconds"],
        "one_change_files": len(touched),
        "one_change_files_sample": touched[:5],
        "one_change_counts": one["counts"],
        "peak_rss_mb": max(r["peak_rss_mb"] for r in (full, noop, one)),
        "full_peak_rss_mb": full["peak_rss_mb"],
        "noop_peak_rss_mb": noop["peak_rss_mb"],
    }


TIMES = ("floor_s", "floor_read_s", "floor_write_s", "full_s", "full_process_s", "compute_s",
         "noop_s", "one_change_s")  # fmt: skip
WORST = ("files_rewritten", "one_change_files", "peak_rss_mb", "full_peak_rss_mb",
         "noop_peak_rss_mb")  # fmt: skip


def best_of(cycles: list[dict[str, Any]]) -> dict[str, Any]:
    """Times: the fastest cycle's (noise only ever adds); counts and memory: the worst.
    Ratios are taken between those best times."""
    out = dict(cycles[0])
    for name in TIMES:
        out[name] = min(c[name] for c in cycles)
    for name in WORST:
        out[name] = max(c[name] for c in cycles)
    out["full_over_floor"] = out["full_s"] / out["floor_s"]
    out["compute_over_floor"] = out["compute_s"] / out["floor_s"]
    out["noop_over_full"] = out["noop_s"] / out["full_s"]
    out["one_change_over_full"] = out["one_change_s"] / out["full_s"]
    if len(cycles) > 1:
        out["cycles"] = [{k: c[k] for k in TIMES} for c in cycles]
    return out


def measure_peer(
    library: GeneratedLibrary, base: Path, bridge_process_s: float, repeat: int
) -> dict[str, Any]:
    exe, reason = peer_mod.ensure_peer()
    if exe is None:
        return {"peer": None, "peer_skipped": reason}
    zotero_dir = library.path.parent
    out: dict[str, Any] = {"peer": f"{peer_mod.PEER} {peer_mod.PEER_VERSION}"}
    keys = peer_mod.citation_keys(library.path)
    with peer_mod.better_bibtex_server(keys) as url:
        fulls = []
        for cycle in range(repeat):  # each on a fresh vault and state: best of `repeat`
            work = base / f"peer-{cycle + 1}"
            vault, home = work / "vault", work / "home"
            for folder in (vault, home):
                folder.mkdir(parents=True)
            peer_mod.seed_pdf_cache(library.path, keys, work / "pdfs")
            config = work / "config.toml"
            peer_mod.write_config(config, zotero_dir, vault, work, url)
            full = peer_mod.run_peer(exe, config, home)
            if full["rc"] != 0:
                return {**out, "peer_error": full["stderr"] or full["summary"]}
            ended = time.perf_counter()
            fulls.append(full["seconds"])
        notes = note_sizes(vault)
        settle(ended)
        before = tree_state(vault)
        noop = peer_mod.run_peer(exe, config, home)
        noop_files = changed_files(before, tree_state(vault))
        edit_title(library.path, library.change_target(), "(peer edit)")
        before = tree_state(vault)
        one = peer_mod.run_peer(exe, config, home)
        one_files = changed_files(before, tree_state(vault))
    full["seconds"] = min(fulls)
    out.update(
        peer_full_s=full["seconds"],
        peer_over_bridge=full["seconds"] / bridge_process_s,
        peer_notes_written=len(notes),
        peer_notes_mb=sum(notes) / 2**20,
        peer_noop_s=noop["seconds"],
        peer_noop_files_rewritten=len(noop_files),
        peer_one_change_s=one["seconds"],
        peer_one_change_files=len(one_files),
        peer_summary=full["summary"][:160],
    )
    return out


def measure_watch(items: int, args: argparse.Namespace, say: Any) -> dict[str, Any]:
    path = BENCH / "watch_latency.py"
    if not path.exists():
        return {"watch_skipped": "bench/watch_latency.py does not exist yet"}
    try:
        module = importlib.import_module("bench.watch_latency")
        say(f"[{items}] watch latency ({args.watch_changes} changes)")
        found = module.measure_watch_latency(items, changes=args.watch_changes)
    except Exception as exc:  # another engineer's module: report, never crash the bench
        return {"watch_skipped": f"watch_latency failed: {type(exc).__name__}: {exc}"[:500]}
    return _watch_figures(found)


def _watch_figures(found: Any) -> dict[str, Any]:
    if isinstance(found, dict):
        p50 = found.get("watch_latency_p50_s", found.get("p50_s", found.get("p50")))
        p95 = found.get("watch_latency_p95_s", found.get("p95_s", found.get("p95")))
        extra = {
            k if k.startswith("watch_") else f"watch_{k}": v
            for k, v in found.items()
            if isinstance(v, int | float | str)
        }
        return {**extra, "watch_latency_p50_s": p50, "watch_latency_p95_s": p95}
    samples = sorted(float(x) for x in found)
    if not samples:
        return {"watch_skipped": "measure_watch_latency returned no samples"}
    p95_index = min(len(samples) - 1, round(0.95 * (len(samples) - 1)))
    return {
        "watch_latency_p50_s": statistics.median(samples),
        "watch_latency_p95_s": samples[p95_index],
        "watch_samples": len(samples),
    }


# --------------------------------------------------------------------------- reporting


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "bridge"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    from bridge import __version__

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "bridge": __version__,
        "commit": commit + ("+dirty" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def summarise(results: list[dict[str, Any]], info: dict[str, Any]) -> dict[str, Any]:
    by_size = {r["items"]: r for r in results}
    ok = [r for r in results if "error" not in r]
    reference = by_size.get(REFERENCE_ITEMS) or (max(ok, key=lambda r: r["items"]) if ok else {})
    summary: dict[str, Any] = {k: v for k, v in reference.items() if not isinstance(v, dict)}
    if REFERENCE_ITEMS in by_size and 50_000 in by_size:
        small, large = by_size[REFERENCE_ITEMS], by_size[50_000]
        if "full_s" in small and "full_s" in large:
            summary["scaling"] = large["full_s"] / small["full_s"]
    if 50_000 in by_size and "peak_rss_mb" in by_size[50_000]:
        summary["peak_rss_mb_50k"] = by_size[50_000]["peak_rss_mb"]
    summary["targets"] = check_targets(summary, by_size)
    if reference and reference["items"] != REFERENCE_ITEMS:
        note = f"judged at {reference['items']:,} items; the targets are set for 10,000"
        summary["targets"] = {k: f"{v} ({note})" for k, v in summary["targets"].items()}
    summary["machine"] = info
    summary["by_size"] = {str(r["items"]): r for r in results}
    return summary


def check_targets(summary: dict[str, Any], by_size: dict[int, dict]) -> dict[str, Any]:
    verdicts: dict[str, Any] = {}
    for name, (limit, size) in TARGETS.items():
        source = by_size.get(size, {}) if size else summary
        value = source.get(name)
        if value is None:
            verdicts[name] = "not measured"
        else:
            verdicts[name] = "met" if value <= limit else f"missed ({value:.3g} > {limit})"
    return verdicts


ROWS = (
    ("annotations", "{:,}", ""),
    ("notes_written", "{:,}", ""),
    ("notes_mb", "{:.1f}", ""),
    ("floor_s", "{:.2f}", "read + write, plain"),
    ("floor_read_s", "{:.2f}", ""),
    ("floor_write_s", "{:.2f}", ""),
    ("full_s", "{:.2f}", ""),
    ("full_over_floor", "{:.2f}", "≤ 3"),
    ("compute_s", "{:.2f}", "dry run: read + plan"),
    ("compute_over_floor", "{:.2f}", ""),
    ("noop_s", "{:.3f}", ""),
    ("noop_over_full", "{:.3f}", "≤ 0.05"),
    ("files_rewritten", "{}", "= 0"),
    ("one_change_s", "{:.3f}", ""),
    ("one_change_over_full", "{:.3f}", "≤ 0.02"),
    ("one_change_files", "{}", ""),
    ("peak_rss_mb", "{:.0f}", "≤ 250 at 50k"),
    ("peer_full_s", "{:.2f}", ""),
    ("peer_over_bridge", "{:.2f}", "(process times)"),
    ("peer_noop_s", "{:.3f}", ""),
    ("peer_one_change_s", "{:.3f}", ""),
    ("peer_one_change_files", "{}", ""),
    ("watch_latency_p50_s", "{:.3f}", ""),
    ("watch_latency_p95_s", "{:.3f}", "≤ 1"),
)


def print_table(summary: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    sizes = summary["by_size"]
    info = summary["machine"]
    table = Table(
        title=f"zotero-obsidian-bridge {info['bridge']} ({info['commit']}) — {info['cpu']}, "
        f"{info['nproc']} cores, Python {info['python']}"
    )
    table.add_column("figure")
    for size in sizes:
        table.add_column(f"{int(size):,} items", justify="right")
    table.add_column("target")
    for name, fmt, target in ROWS:
        cells = []
        for result in sizes.values():
            value = result.get(name)
            cells.append("—" if value is None else fmt.format(value))
        if any(c != "—" for c in cells):
            table.add_row(name, *cells, target)
    if "scaling" in summary:
        table.add_row(
            "scaling 50k/10k", *[""] * (len(sizes) - 1), f"{summary['scaling']:.2f}", "≤ 6"
        )
    console = Console()
    console.print(table)
    for result in sizes.values():
        for key in ("error", "peer_skipped", "peer_error", "watch_skipped"):
            if key in result and not str(result[key]).startswith("--no-"):
                console.print(f"[{result['items']:,}] {key}: {result[key]}")
    console.print("targets: " + ", ".join(f"{k} {v}" for k, v in summary["targets"].items()))


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, help="one size (same as --sizes N)")
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated item counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--repeat", type=int, default=1, help="bridge cycles per size; times are the best"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the peer tool")
    parser.add_argument("--no-watch", action="store_true", help="skip the watch latency")
    parser.add_argument("--watch-changes", type=int, default=20)
    parser.add_argument(
        "--extras-max-items",
        type=int,
        default=10_000,
        help="run the peer and the watch latency only up to this size (10000)",
    )
    parser.add_argument("--profile", type=Path, help="write pyinstrument reports here")
    parser.add_argument("--profile-format", choices=("txt", "html"), default="txt")
    parser.add_argument("--work-dir", type=Path, help="where libraries and vaults go (/tmp)")
    parser.add_argument("--keep", action="store_true", help="keep libraries and vaults")
    args = parser.parse_args(argv)
    args.size_list = [args.items] if args.items else [int(s) for s in args.sizes.split(",") if s]
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="zob-bench-", dir=args.work_dir))
    started = machine()
    results = []
    try:
        for items in args.size_list:
            results.append(run_size(items, args, work))
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    info = machine()
    if info["commit"] != started["commit"]:  # another engineer committed meanwhile
        info["commit"] = f"{started['commit']}..{info['commit']} (changed during the run)"
    summary = summarise(results, info)
    if args.profile:
        summary["profiled"] = True  # times include the profiler's overhead
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print_table(summary)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
