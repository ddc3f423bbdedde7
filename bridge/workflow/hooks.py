"""What a sync does once its paper and method notes are written.

1. record the reading history: each paper's (pass, status) when it changed, annotation keys
   first seen, and which notes were created, updated or edited (`bridge.workflow.progress`);
2. rewrite `Reading queue.md` (`bridge.workflow.queue`);
3. when `[writeback] enabled`, push the progress tags to Zotero (`bridge.workflow.writeback`).

The paper notes are read as they are on disk now (user edits included), through the same
etag-keyed cache the method notes use. Problems become skips of the sync's result — the notes
are already written, so nothing here stops a sync — and the exit code says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bridge.apply import SyncResult
from bridge.config import Config
from bridge.lineage import PaperInfo
from bridge.session import Session
from bridge.stamps import iso
from bridge.state import State
from bridge.vault.papers import collect_papers, paper_from_facts
from bridge.workflow.progress import (
    record_annotations,
    record_note_events,
    record_progress,
)
from bridge.workflow.queue import QUEUE_ID, queue_settings, update_queue


def update_reading_workflow(
    session: Session,
    result: SyncResult,
    annotations: Iterable[tuple[str, str, str]],
    *,
    now: datetime | None = None,
    papers: list[PaperInfo] | None = None,
    changed: set[str] | None = None,
) -> None:
    """History, queue and writeback after a sync (or `zob new`).

    `papers`: every paper's facts, when the caller collected them. Else `changed`: the paper
    notes whose facts the caller refreshed in the cache (written, edited or gone) — every
    other paper's facts are as the last sync recorded them, so only these are compared with
    the history, and the queue is selected from the cache. With neither, every paper note is
    read (through the cache)."""
    config, state, vault = session.config, session.state, session.vault
    at = iso(now)
    annotations = list(annotations)  # `annotation_rows` of the items the sync read
    if papers is None and changed is None:
        papers, _ = collect_papers(vault, state, write_cache=True)  # problems: reported
    if config.writeback and papers is None:
        papers, _ = collect_papers(vault, state, write_cache=True)
    if papers is not None:
        progressed = papers
        live = {paper.note_id for paper in papers}
    else:
        assert changed is not None
        if not changed and not annotations and _queue_untouched(session):
            return  # nothing new for the history; the queue's inputs are unchanged
        progressed = [paper_from_facts(f) for f in state.paper_facts(changed).values()]
        live = set(state.paper_facts({item_key for _, item_key, _ in annotations}))
    failed = result.failed_paths()
    with state.transaction():
        record_progress(state, progressed, at)
        record_annotations(state, annotations, live, at)
        record_note_events(state, result.actions, failed, at)
    queue = SyncResult()
    update_queue(session, queue)
    result.errors.extend(queue.errors)
    result.deferred.extend(queue.deferred)
    result.skipped += queue.skipped
    if config.writeback:
        assert papers is not None
        push_progress(config, state, papers, at, result)


def push_progress(
    config: Config, state: State, papers: list[PaperInfo], at: str, result: SyncResult
) -> None:
    from bridge.workflow.writeback import write_back  # pyzotero: only when asked for

    outcome = write_back(config, state, papers, at)
    for error in outcome.errors:
        hint = f" → {error['hint']}" if error["hint"] else ""
        result.skip("", error["key"], f"writeback: {error['message']}{hint}")


def _queue_untouched(session: Session) -> bool:
    config, state = session.config, session.state
    if state.marks.queue_settings != queue_settings(config):
        return False  # turned on or off, moved, or a new queue_limit
    if not config.reading_queue:
        return True
    note = state.note(QUEUE_ID)
    if note is None or note.path != config.reading_queue:
        return False
    return session.vault.unchanged_since(note.path, note.etag, note.content_hash)
