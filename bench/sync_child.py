"""One `bridge.sync.sync` in its own process, so its peak RSS is its own.

    python bench/sync_child.py VAULT ZOTERO_DIR [--profile OUT.html|OUT.txt]

Prints one JSON line: `seconds` (the `sync()` call alone, imports excluded), `process_s`
(from interpreter start, imports included), `peak_rss_mb` (`ru_maxrss` of this process) and
the sync's counts. The config is built here, not read from the user's config file.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("vault", type=Path)
    parser.add_argument("zotero_dir", type=Path)
    parser.add_argument("--profile", type=Path, help="pyinstrument report (.html or .txt)")
    args = parser.parse_args()

    from bridge.config import Config
    from bridge.sync import sync

    config = Config(vault=args.vault, source="sqlite", zotero_dir=args.zotero_dir)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.001)
        profiler.start()
    began = time.perf_counter()
    result = sync(config)
    seconds = time.perf_counter() - began
    if profiler is not None:
        profiler.stop()
        if args.profile.suffix == ".html":
            args.profile.write_text(profiler.output_html(), encoding="utf-8")
        else:
            args.profile.write_text(
                profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8"
            )
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
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
