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
from bridge.model import Item
from bridge.plan import PlanContext
from bridge.state import State
from bridge.vault.fs import Vault
from bridge.vault.papers import collect_papers
from bridge.workflow.progress import (
    iso,
    record_annotations,
    record_note_events,
    record_progress,
)
from bridge.workflow.queue import update_queue


def after_sync(
    config: Config,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    result: SyncResult,
    items: Iterable[Item],
    *,
    now: datetime | None = None,
    papers: list[PaperInfo] | None = None,
) -> list[PaperInfo]:
    """History, queue and writeback after a sync (or `zob new`); returns the papers read.

    `papers`: the paper facts the caller already collected (method notes do not change them).
    """
    at = iso(now)
    if papers is None:
        papers, _ = collect_papers(vault, state, write_cache=True)  # problems: reported
    live = {paper.note_id for paper in papers}
    failed = {error["path"] for error in result.errors}
    with state.transaction():
        record_progress(state, papers, at)
        record_annotations(state, items, live, at)
        record_note_events(state, result.actions, failed, at)
    queue = SyncResult()
    update_queue(config, state, vault, ctx, papers, queue)
    result.errors.extend(queue.errors)
    result.skipped += queue.skipped
    if config.writeback:
        push_progress(config, state, papers, at, result)
    return papers


def push_progress(
    config: Config, state: State, papers: list[PaperInfo], at: str, result: SyncResult
) -> None:
    from bridge.workflow.writeback import write_back  # pyzotero: only when asked for

    outcome = write_back(config, state, papers, at)
    for error in outcome.errors:
        hint = f" → {error['hint']}" if error["hint"] else ""
        result.skip("", error["key"], f"writeback: {error['message']}{hint}")
