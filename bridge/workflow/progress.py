"""Reading progress: the stage a paper is at, and the history the state DB keeps of it.

A paper note's user-owned properties say how far its reader got: `pass` = the number of passes
finished (0–3) and `status` ∈ `to-read`, `reading`, `done`, `dropped` (plus the bridge's own
`deleted-in-zotero`). The reading queue groups papers into stages:

| stage                  | when                                                             |
|------------------------|------------------------------------------------------------------|
| To read                | pass 0 (or no usable `pass`); `reading` here = pass 1 under way  |
| Pass 1 done → decide   | pass 1 and status not `reading`: read on, or drop?               |
| Pass 2                 | pass 1 with status `reading` (decided: read on), or pass 2       |
| Pass 3                 | pass 3, or status `done` whatever the pass (finished with it)    |
| Dropped                | status `dropped`, whatever the pass                              |
| (not listed)           | status `deleted-in-zotero`                                       |

Each sync records a paper's (pass, status) in `progress_log` whenever it differs from the last
row recorded, stamped with the sync's time: the weekly report reads advances and drops from it.
"""

from __future__ import annotations

from collections.abc import Iterable

from bridge.actions import NOTE_CHANGED, Action
from bridge.lineage import PaperInfo
from bridge.model import Item
from bridge.state import State
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
    """The queue stage of a paper (see the module docstring); None = not listed."""
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


# --- history ---------------------------------------------------------------------------------


def record_progress(state: State, papers: Iterable[PaperInfo], at: str) -> int:
    """Append (pass, status) for every paper whose progress changed since the last record."""
    papers = list(papers)
    latest = state.latest_progress([paper.note_id for paper in papers])
    rows = []
    for paper in papers:
        current = (parse_pass(paper.reading_pass), normalise_status(paper.status))
        if latest.get(paper.note_id) != current:
            rows.append((paper.note_id, at, *current))
    state.add_progress(rows)
    return len(rows)


def annotation_rows(items: Iterable[Item]) -> list[tuple[str, str, str]]:
    """(annotation key, item key, Zotero's dateAdded) of every annotation of `items`."""
    return [
        (annotation.key, item.key, annotation.date_added)
        for item in items
        for annotation in item.annotations
    ]


def record_annotations(
    state: State, rows: Iterable[tuple[str, str, str]], live: set[str], at: str
) -> int:
    """Remember annotation keys (`annotation_rows`) of items that have a note; new ones date
    from Zotero's `dateAdded` (so a first sync dates old highlights right), else from now."""
    rows = [row for row in rows if row[1] in live]
    if not rows:
        return 0
    known = state.known_annotations([key for key, _, _ in rows])
    new = [(key, item_key, added or at, at) for key, item_key, added in rows if key not in known]
    state.add_annotations(new)
    return len(new)


def record_note_events(
    state: State, actions: Iterable[Action], failed_paths: set[str], at: str
) -> None:
    """Notes created or updated by the sync, and notes the user edited (`touch`)."""
    rows = [
        (action.note_id, action.state.kind, action.path, action.kind, at)
        for action in actions
        if action.kind in NOTE_CHANGED
        and action.state is not None
        and action.path not in failed_paths
    ]
    state.add_note_events(rows)
