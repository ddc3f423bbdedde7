"""One `bridge.sync.sync` in its own process, so its peak RSS is its own.

    python bench/sync_child.py VAULT ZOTERO_DIR [--profile OUT.html|OUT.txt] [--dry-run]

Prints one JSON line: `seconds` (the `sync()` call alone, imports excluded), `process_s`
(from interpreter start, imports included), `peak_rss_mb` (this process's own peak RSS:
`peak_rss_kb`) and the sync's counts. The config is built here, not read from the user's
config file. `--dry-run` reads and plans every note (rendering, YAML, hashes) and writes
nothing: the bridge's computing alone (`compute_s` in bench/run.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()


def peak_rss_kb() -> float:
    """This process's own peak RSS. Linux's `ru_maxrss` is not that: it carries the high-water
    mark over `fork` and `exec`, so a child of a 500 MB `bench/run.py` reported 500 MB whatever
    the sync used. `VmHWM` belongs to this process's memory alone."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else peak  # bytes on macOS, else kB


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("vault", type=Path)
    parser.add_argument("zotero_dir", type=Path)
    parser.add_argument("--profile", type=Path, help="pyinstrument report (.html or .txt)")
    parser.add_argument("--dry-run", action="store_true", help="plan every note, write none")
    args = parser.parse_args()

    from bridge.config import Config
    from bridge.sync import SyncOptions, sync

    config = Config(vault=args.vault, source="sqlite", zotero_dir=args.zotero_dir)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    began = time.perf_counter()
    result = sync(config, SyncOptions(dry_run=args.dry_run))
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.stop()
        if args.profile.suffix == ".html":
            args.profile.write_text(profiler.output_html(), encoding="utf-8")
        else:
            args.profile.write_text(
                profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8"
            )
    peak_kb = peak_rss_kb()
    counts = result.counts()
    counts["errors"] = len(counts["errors"])
    print(
        json.dumps(
            {
                "seconds": seconds,
                "process_s": time.perf_counter() - START,
                "peak_rss_mb": peak_kb / 1024,
                "counts": counts,
                "warnings": len(result.warnings),
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
