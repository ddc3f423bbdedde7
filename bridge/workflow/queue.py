"""`Reading queue.md`: a managed note listing every paper by reading stage, newest first.

The stages and how `pass`/`status` map onto them are documented in `bridge.workflow.progress`.
The body (headings, explanations, a Dataview table for users of that plugin) is written once;
each stage's list lives in its own managed region (`queue-to-read`, `queue-decide`,
`queue-pass-2`, `queue-pass-3`, `queue-dropped`) and is rewritten at every sync from the paper
notes as they are on disk, so a `pass` changed in Obsidian shows at the next sync.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from bridge.actions import NOTE_CHANGED, Action, ActionKind
from bridge.apply import SyncResult
from bridge.config import Config, require_vault
from bridge.errors import ConfigError
from bridge.lineage import PaperInfo
from bridge.session import Session, writing
from bridge.stamps import iso, text_hash
from bridge.state import State
from bridge.vault.notefile import wrap_region
from bridge.vault.papers import collect_papers, paper_from_facts
from bridge.vault.render import RenderedNote, Renderer
from bridge.workflow.notes import inline_text, require_synced, write_note
from bridge.workflow.progress import STAGES, parse_pass, record_progress

QUEUE_ID = "workflow:reading-queue"


def region_name(stage_name: str) -> str:
    return f"queue-{stage_name}"


def paper_row(paper: PaperInfo) -> dict[str, Any]:
    finished = parse_pass(paper.reading_pass)
    return {
        "stem": paper.stem,
        "title": inline_text(paper.title) or paper.stem,
        "year": paper.year or "",
        "venue": inline_text(paper.venue),
        "pass": "" if finished is None else finished,
        "status": inline_text(paper.status),
    }


def queue_rows(state: State, limit: int | None) -> dict[str, tuple[int, list[dict[str, Any]]]]:
    """Stage → (how many papers it has, the rows its list shows: the newest `limit`).

    Read from the facts cache (`paper_meta`), which SQLite sorts: a sync that changed one
    paper does not parse every paper's facts to rebuild the queue."""
    rows: dict[str, tuple[int, list[dict[str, Any]]]] = {}
    for name in STAGES:
        count, shown = state.staged_papers(name, limit)
        rows[name] = (count, [paper_row(paper_from_facts(info)) for _, info in shown])
    return rows


def render_queue(
    renderer: Renderer, rows: dict[str, tuple[int, list[dict[str, Any]]]]
) -> RenderedNote:
    regions = {
        region_name(name): renderer.render_template(
            "reading-queue-region.md.j2", stage=name, papers=group, more=count - len(group)
        ).strip("\n")
        for name, (count, group) in rows.items()
    }
    body = renderer.render_template(
        "reading-queue.md.j2", region=lambda name: wrap_region(name, regions.get(name, ""))
    )
    return RenderedNote(
        note_id=QUEUE_ID, kind="queue", properties={}, regions=regions, body=body, owned_keys=()
    )


def update_queue(session: Session, result: SyncResult, *, recreate: bool = False) -> Action | None:
    """Write the queue note from the papers' cached facts (call after they are refreshed).

    None when `workflow.reading_queue` is "", or when neither the lists, the templates nor
    the note changed since the last write: most syncs then render nothing."""
    config, state, vault = session.config, session.state, session.vault
    path = config.reading_queue
    if not path:
        state.marks.queue_settings = queue_settings(config)
        return None
    rows = queue_rows(state, config.queue_limit or None)
    inputs = [rows, path, session.render_fingerprint]
    digest = text_hash(json.dumps(inputs, ensure_ascii=False, default=str))
    note = state.note(QUEUE_ID)
    if (
        not recreate
        and note is not None
        and note.path == path
        and note.etag is not None
        and note.etag == vault.etag(path)
        and state.marks.queue_digest == digest
    ):
        return None
    ctx = session.plan_context
    action = write_note(render_queue(ctx.renderer, rows), path, state, vault, ctx, result,
                        recreate=recreate)  # fmt: skip
    written = action.kind in NOTE_CHANGED or action.kind == ActionKind.UNCHANGED
    done = written and path not in result.failed_paths()
    # not written (read-only, changed meanwhile…): tried again at the next sync, even one
    # that changes nothing else
    state.marks.queue_digest = digest if done else None
    state.marks.queue_settings = queue_settings(config) if done else None
    return action


def queue_settings(config: Config) -> str:
    """What, besides the papers' facts and the templates, the queue was written with."""
    return json.dumps([config.reading_queue, config.queue_limit])


def rebuild_queue(config: Config, *, now: datetime | None = None) -> tuple[str, SyncResult]:
    """`zob queue`: rewrite the queue from the notes now (recreated if deleted), and record
    the progress seen, as a sync would — without reading Zotero."""
    require_synced(require_vault(config))
    if not config.reading_queue:
        raise ConfigError(
            "the reading queue is turned off (workflow.reading_queue is empty)",
            'set workflow.reading_queue = "Reading queue.md" in the config',
        )
    result = SyncResult()
    with writing(config) as session:
        papers, problems = collect_papers(session.vault, session.state, write_cache=True)
        result.warnings.extend(problems)
        with session.state.transaction():
            record_progress(session.state, papers, iso(now))
        update_queue(session, result, recreate=True)
    return config.reading_queue, result
