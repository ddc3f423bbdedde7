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
from bridge.reading import STAGES as STAGES  # the stages themselves live in bridge.reading
from bridge.reading import STATUSES as STATUSES
from bridge.reading import normalise_status, parse_pass
from bridge.reading import stage as stage
from bridge.state import State

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
