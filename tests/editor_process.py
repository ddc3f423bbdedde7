"""An editor that saves one note the way Obsidian does, run as its own process by
tests/test_save_races.py (the reasoning behind its rules is in that module's docstring).

Each save: read the note on disk; if it is not what this editor last wrote, someone else
(the bridge) changed it — adopt the disk version, but only once it is *complete* (frontmatter
with `zotero_key`, every managed region opened and closed once) and *stable* (two reads a few
ms apart agree). Then add one new numbered user line to the user's part of the note and save
in place: `open(O_TRUNC)` by path, one or two writes at a random split point, random 0–10 ms
gaps between the truncate and each write. A line counts as saved when its save has closed.

With `--bursts`, it types in bursts (`--burst` saves) separated by pauses (`--pause` seconds,
long enough for a settle window to pass, so a fixed bridge writes the note in them); a pause
ends early, with a save at once, when a bridge temp file (`.zob-*`) appears beside the note:
the save then lands while the bridge is writing — in its check-to-rename window.

What it saw is logged as JSON lines to `--log` (one object per line, flushed at once, so a
crash leaves a readable log): `{"saved": n}` after each save, `{"adopted": …, "missing": [...]}`
when it took the disk version and that version lacked lines it had saved (those lines are gone
from its buffer, as they would be from Obsidian's), `{"incomplete": …}` when a version that is
not complete stayed on disk for `STUCK_S` (it then saves its own last version over it), and a
final `{"done": …}`. It stops when `--stop` exists or after `--seconds`.

Usage: python editor_process.py --note PATH --log PATH --stop PATH [--seed N] [--seconds S]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time

REGIONS = ("abstract", "annotations", "lineage")
ANCHORS = ("### Still unclear", "## Highlights", "%% zob:begin annotations %%")
LINE = re.compile(r"user line (\d{4,})")
STABLE_S = 0.008  # a changed note must read the same twice this far apart to be adopted
STUCK_S = 0.06  # an incomplete note unchanged this long was left so (not a write in flight)


def complete(text: str) -> bool:
    """Frontmatter with a `zotero_key`, and each managed region begun and ended once."""
    if not text.startswith("---\n"):
        return False
    end = text.find("\n---\n", 3)
    if end == -1 or "\nzotero_key: " not in text[:end]:
        return False
    lines = text.split("\n")
    for name in REGIONS:
        begin, close = f"%% zob:begin {name} %%", f"%% zob:end {name} %%"
        if lines.count(begin) != 1 or lines.count(close) != 1:
            return False
        if lines.index(begin) > lines.index(close):
            return False
    return True


def user_lines(text: str) -> set[int]:
    return {int(n) for n in LINE.findall(text)}


def with_line(text: str, number: int) -> str:
    """`text` with `- user line NNNN` added at the end of the user's "Method pipeline" notes
    (before the next heading), outside every managed region."""
    line = f"- user line {number:04d}\n"
    for anchor in ANCHORS:
        at = text.find("\n" + anchor)
        if at != -1:
            return text[: at + 1] + line + text[at + 1 :]
    return text + ("" if text.endswith("\n") else "\n") + line


def read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


class Editor:
    def __init__(self, args: argparse.Namespace) -> None:
        self.path = args.note
        self.rng = random.Random(args.seed)
        self.log = open(args.log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as we do
        self.stop_file = args.stop
        self.deadline = time.monotonic() + args.seconds
        self.gap = args.gap_ms / 1000
        self.period = (args.period_ms[0] / 1000, args.period_ms[1] / 1000)
        self.last = read(self.path)  # what this editor last wrote (or adopted)
        if self.last is None or not complete(self.last.decode("utf-8", "replace")):
            raise SystemExit(f"editor: {self.path} is missing or not a complete note")
        self.next_number = 1 + max(user_lines(self.last.decode()), default=0)
        self.saved: set[int] = set()  # every line whose save closed
        self.counts = {"saves": 0, "adopted": 0, "incomplete": 0, "unstable": 0, "pounced": 0}
        self.bursts = args.bursts
        self.burst = args.burst
        self.pause = args.pause
        self.folder = os.path.dirname(os.path.abspath(self.path))
        self.left_in_burst = self.rng.randint(*self.burst)

    def emit(self, **record: object) -> None:
        self.log.write(json.dumps(record) + "\n")
        self.log.flush()

    def base(self) -> bytes:
        """What the next save starts from: our last version, or the disk's when someone else
        wrote a complete one (Obsidian reloads a note changed on disk)."""
        disk = read(self.path)
        if disk == self.last or disk is None:
            return self.last
        start = first_seen = time.monotonic()
        while time.monotonic() - start < 1.0:
            time.sleep(STABLE_S)
            again = read(self.path)
            if again == self.last or again is None:
                return self.last
            if again != disk:  # still being written (or written again): watch on
                disk, first_seen = again, time.monotonic()
                continue
            text = disk.decode("utf-8", "replace")
            if complete(text):
                missing = sorted(self.saved - user_lines(text))
                self.counts["adopted"] += 1
                self.emit(adopted=len(disk), missing=missing, head=text[:1500] if missing else "")
                self.last = disk
                return disk
            if time.monotonic() - first_seen >= STUCK_S:
                missing = sorted(self.saved - user_lines(text))
                self.counts["incomplete"] += 1
                self.emit(incomplete=len(disk), missing=missing, head=text[:600])
                return self.last  # a user would undo it; keep the test going from our version
        self.counts["unstable"] += 1
        self.emit(unstable=len(disk))
        return self.last

    def save(self, data: bytes) -> None:
        """Obsidian-style in-place save: truncate, then one or two writes, gaps between."""
        fd = os.open(self.path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o644)
        try:
            time.sleep(self.rng.uniform(0, self.gap))
            if self.rng.random() < 0.5:
                split = self.rng.randrange(1, len(data))
                os.write(fd, data[:split])
                time.sleep(self.rng.uniform(0, self.gap))
                os.write(fd, data[split:])
            else:
                os.write(fd, data)
        finally:
            os.close(fd)

    def wait(self, seconds: float) -> None:
        """Pause, but end it the moment a bridge temp file shows up beside the note."""
        until = time.monotonic() + seconds
        while time.monotonic() < until and not os.path.exists(self.stop_file):
            if any(name.startswith(".zob-") for name in os.listdir(self.folder)):
                self.counts["pounced"] += 1
                return
            time.sleep(0.0005)

    def run(self) -> None:
        while time.monotonic() < self.deadline and not os.path.exists(self.stop_file):
            started = time.monotonic()
            base = self.base().decode("utf-8")
            number = self.next_number
            self.next_number += 1
            data = with_line(base, number).encode("utf-8")
            self.save(data)
            self.last = data
            self.saved.add(number)
            self.counts["saves"] += 1
            self.emit(saved=number)
            pause = self.rng.uniform(*self.period) - (time.monotonic() - started)
            if self.bursts:
                self.left_in_burst -= 1
                if self.left_in_burst <= 0:
                    self.left_in_burst = self.rng.randint(*self.burst)
                    self.wait(self.rng.uniform(*self.pause))
                    continue
            if pause > 0:
                time.sleep(pause)
        self.emit(done=True, saved_lines=sorted(self.saved), counts=self.counts)
        self.log.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--note", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--stop", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--gap-ms", type=float, default=10.0)
    parser.add_argument("--period-ms", type=float, nargs=2, default=(20.0, 30.0))
    parser.add_argument("--bursts", action="store_true")
    parser.add_argument("--burst", type=int, nargs=2, default=(20, 200))
    parser.add_argument("--pause", type=float, nargs=2, default=(0.5, 3.5))
    Editor(parser.parse_args(argv)).run()


if __name__ == "__main__":
    main(sys.argv[1:])
