"""Reading stages: how far a paper's reader got, from its note's `pass` and `status`.

Pure functions of a paper's facts, below the state layer (which files each cached paper under
its stage, `bridge.state.papers`) and the reading workflow (`bridge.workflow.progress`, which
documents the stages and keeps their history).
"""

from __future__ import annotations

from bridge.lineage import PaperInfo
from bridge.vault.merge import DELETED_STATUS

STAGES = ("to-read", "decide", "pass-2", "pass-3", "dropped")
STATUSES = ("to-read", "reading", "done", "dropped")


def parse_pass(value: object) -> int | None:
    """`pass` as typed in the note (`1`, `"2"`) → 0–3; above 3 counts as 3; else None."""
    text = str(value).strip() if value is not None else ""
    if not text.isdigit():
        return None
    return min(int(text), 3)


def normalise_status(value: object) -> str:
    return str(value or "").strip().casefold()


def stage(paper: PaperInfo) -> str | None:
    """The queue stage of a paper (see `bridge.workflow.progress`); None = not listed."""
    status = normalise_status(paper.status)
    finished = parse_pass(paper.reading_pass) or 0
    if status == DELETED_STATUS:
        return None
    if status == "dropped":
        return "dropped"
    if status == "done" or finished >= 3:
        return "pass-3"
    if finished == 2 or (finished == 1 and status == "reading"):
        return "pass-2"
    if finished == 1:
        return "decide"
    return "to-read"
