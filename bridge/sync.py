"""One sync: source.read → plan → apply. `zob sync`, `zob demo` and the daemon all call this.

A sync is a list of stages, each a small function of the session (`bridge.session`: config,
vault, state DB, renderer, planning) and the run (`SyncRun`: what the stages hand on, and the
`SyncResult` they add to), run in order under the sync lock:

| stage               | does                                                                  |
|---------------------|-----------------------------------------------------------------------|
| `read_stage`        | Zotero since the cursor (or a held cursor) → the snapshot, filtered  |
| `papers_stage`      | plan each paper note, apply it as it is planned                       |
| `methods_stage`     | paper notes as on disk → the method graph → method notes             |
| `after_sync_stage`  | reading history, `Reading queue.md`, writeback to Zotero             |
| `search_index_stage` | the search index, when there is one: changed notes re-indexed    |
| `library_index_stage` | `.zotero-bridge/library.json`, the Obsidian plugin's item index   |
| `marks_stage`       | cursor, held cursor, keys digest, the sync's record: one transaction |

A dry run is `read_stage`, then `dry_run_stage` (both plans, nothing written).
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bridge import library_index
from bridge.actions import Action, ActionKind, Receipt
from bridge.apply import SyncResult, apply
from bridge.config import Config, require_vault
from bridge.errors import ConfigError, NoSpaceError, is_no_space
from bridge.lineage import PaperInfo
from bridge.lineage_stage import lineage_inputs, plan_lineage
from bridge.model import LibrarySnapshot
from bridge.plan import plan_iter
from bridge.remembered import source_settings
from bridge.retries import Held, update_held_cursor
from bridge.search.hook import keep_search_index_current
from bridge.session import Planning, Session, writing
from bridge.session import make_renderer as make_renderer  # where they were before sessions
from bridge.session import plan_context as plan_context
from bridge.session import render_fingerprint as render_fingerprint
from bridge.session import template_cache_dir as template_cache_dir
from bridge.sources import Source
from bridge.stamps import iso, text_hash
from bridge.state import NoteIndex, NoteState, State, cursor_key
from bridge.state.marks import KEYS_DIGEST as KEYS_DIGEST  # the marks' keys, as before
from bridge.state.marks import LINEAGE_DIGEST as LINEAGE_DIGEST
from bridge.state.marks import LINEAGE_PROBLEMS as LINEAGE_PROBLEMS
from bridge.state.marks import PENDING as PENDING
from bridge.state.marks import TEMPS_SWEPT as TEMPS_SWEPT
from bridge.vault.obsidian_types import declare_types
from bridge.vault.papers import all_papers, refresh_papers, remember_missing, scan_papers
from bridge.workflow.filters import SyncFilter, filter_snapshot
from bridge.workflow.hooks import update_reading_workflow
from bridge.workflow.progress import annotation_rows

ProgressFactory = Callable[[int], Callable[[int], None]]

SWEEP_EVERY_S = 3600.0
# `zob sync` waits for notes being saved this many times (each up to the settle window)
# before it reports them and leaves them to the next sync
SETTLE_WAIT_ROUNDS = 4


@dataclass
class SyncOptions:
    dry_run: bool = False
    force: bool = False
    full: bool = False  # ignore the cursor and read everything
    now: datetime | None = None  # the reading history's clock (tests pass fixed dates)
    # notes being saved when they were to be merged are waited for, then merged (`zob sync`);
    # the daemon syncs again when they settle instead (`bridge.vault.inflight`)
    wait_for_saves: bool = True


def open_source(config: Config) -> Source:
    """The source the config names. Imports lazily: each source has its own dependencies."""
    if config.source == "sample":
        from bridge.sources.sample import SampleSource

        return SampleSource()
    if config.source == "sqlite":
        if config.zotero_dir is None:
            where = (
                f"set source.zotero_dir in {config.config_file}"
                if config.config_file
                else "write a config file with `zob init` (it finds ~/Zotero)"
            )
            raise ConfigError(
                "no Zotero data directory given",
                hint=f"pass --zotero-dir (usually ~/Zotero), or {where}",
            )
        from bridge.sources.sqlite import SqliteSource

        library_id = int(config.library_id) if config.library_id else None
        return SqliteSource(config.zotero_dir, library_id=library_id)
    if config.source in ("web", "local"):
        try:
            from bridge.sources.api import ApiSource
        except ImportError as exc:  # pragma: no cover - until the API source lands
            raise ConfigError(f"source {config.source!r} is not available in this build") from exc
        return ApiSource.from_config(config)
    raise ConfigError(f"unknown source {config.source!r}")


def sync(
    config: Config,
    options: SyncOptions | None = None,
    *,
    source: Source | None = None,
    progress: ProgressFactory | None = None,
) -> SyncResult:
    """Run the pipeline once, then again for the notes that were being saved, once they
    settle (for at most `SETTLE_WAIT_ROUNDS` rounds). Raises BridgeError subclasses for
    whole-sync failures."""
    options = options or SyncOptions()
    require_vault(config)  # its message first: no source is opened for a missing vault
    source = source or open_source(config)
    result = _sync_once(config, options, source, progress)
    rounds = 0
    while result.deferred and options.wait_for_saves and not options.dry_run:
        rounds += 1
        if rounds > SETTLE_WAIT_ROUNDS:
            break
        wait = max(d["settles_at"] for d in result.deferred) - time.time()
        time.sleep(min(max(wait, 0.0) + 0.05, config.settle_seconds + 0.05))
        result = result.then(_sync_once(config, options, source, progress))
    return result


def _sync_once(
    config: Config, options: SyncOptions, source: Source, progress: ProgressFactory | None
) -> SyncResult:
    try:
        return run_stages(config, SyncRun(options, source, progress))
    except OSError as exc:
        if is_no_space(exc):  # a method note, the queue, an index: the disk is full
            raise NoSpaceError.from_os_error(exc) from exc
        raise
    finally:
        gc.unfreeze()


@dataclass(frozen=True)
class _Read:
    """Where this sync read from: the cursor, or the one held for notes that failed
    (`bridge.retries`); `everything`: every change since the held cursor was planned."""

    cursor_key: str
    since: str | None
    held: Held | None
    everything: bool


@dataclass(eq=False)
class SyncRun:
    """One round of a sync: what its stages hand on to each other, and the result they add
    to. Made before the sync lock is taken (`started` is when the sync was asked for)."""

    options: SyncOptions
    source: Source
    progress: ProgressFactory | None = None
    started: str = field(default_factory=iso)
    result: SyncResult = field(default_factory=SyncResult)
    # read_stage
    opened: LibrarySnapshot | None = None  # as the source returned it: closed at the end
    snapshot: LibrarySnapshot | None = None  # what gets notes (`[filters]` applied)
    read: _Read | None = None
    full: bool = False  # everything was read (`--full`, new settings or templates)
    keys: str | None = None  # a hash of every item key in the library, when known
    same_keys: bool = False  # the same keys as at the last finished sync
    # papers_stage
    notes: Mapping[str, NoteState] | None = None  # None: nothing was planned
    seen: list[tuple[str, str, str]] = field(default_factory=list)  # annotations, for history
    everything: bool = True  # the history and queue catch up from every paper
    actions: list[Action | Receipt] = field(default_factory=list)  # not their text or state
    written: set[str] = field(default_factory=set)  # paper notes this sync changed
    # methods_stage
    method_actions: list[Action] = field(default_factory=list)
    papers: list[PaperInfo] | None = None  # every paper's facts, when they were collected
    changed: set[str] = field(default_factory=set)  # paper notes whose facts may have changed

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()  # a streaming source holds its copy of Zotero's database open


Stage = Callable[[Session, SyncRun], None]


def run_stages(config: Config, run: SyncRun) -> SyncResult:
    """Open the session under the sync lock and run the stages in order."""
    stages = DRY_RUN_STAGES if run.options.dry_run else SYNC_STAGES
    planning = Planning(force=run.options.force, wait_for_saves=False, cached_templates=True)
    with writing(config, planning=planning) as session:
        try:
            for stage in stages:
                stage(session, run)
        finally:
            run.close()
    return run.result


# --- 1. read ----------------------------------------------------------------------------------


def read_stage(session: Session, run: SyncRun) -> None:
    """Read Zotero from the saved cursor — or from a held one (`bridge.retries`), or from the
    start when the settings or templates changed — and keep the items `[filters]` let in."""
    config, state, marks = session.config, session.state, session.marks
    key = cursor_key(run.source.name, _source_id(config))
    # taken now, before any note is rendered, even with --full: the marks stage records it
    # as what the notes were rendered with (a template saved mid-sync must differ from it)
    fingerprint = session.render_fingerprint
    full = run.options.full or marks.render_fingerprint != fingerprint
    held = Held.load(state, key)
    # `due` also notes what the held notes are like now (for a full read too)
    due = held is not None and held.due(session.vault_root)
    retry = not full and due
    cursor = None if full else held.cursor if retry and held else marks.cursor(key)
    run.opened = run.source.read(since=cursor)
    run.read, run.full = _Read(key, cursor, held, full or retry), full
    snapshot = filter_snapshot(run.opened, SyncFilter.from_config(config), state.pinned())
    run.snapshot = snapshot
    gc.freeze()  # the snapshot lives all sync long: keep the collector from rescanning it
    # state.notices: the vault was found moved or copied (`State._claim_vault`)
    run.result = SyncResult(
        dry_run=run.options.dry_run, warnings=[*state.notices, *snapshot.warnings]
    )
    for path, settles in (held.blocked if held else {}).items():
        # a held note still being saved: its change is read once it settles (`Held.due`)
        run.result.defer(path, "", f"{path}: being saved; merged once it settles", settles)
    run.keys = _keys_digest(snapshot)
    # the same item keys as at the last finished sync: no new note to name, nothing erased
    run.same_keys = (
        run.keys is not None
        and snapshot.incremental  # a few items: looked up one by one
        and not run.read.everything  # a retry: the notes that failed may be missing or erased
        and not marks.pending
        and marks.keys_digest == run.keys
    )


# --- 2. papers --------------------------------------------------------------------------------


def _plan_papers(session: Session, run: SyncRun) -> Iterable[Action]:
    """The paper notes' actions, planned one at a time as they are taken (`plan_iter`); the
    whole-library checks (tripwire, names) are made here, before anything is written."""
    snapshot, state = run.snapshot, session.state
    assert snapshot is not None
    if not snapshot.items and snapshot.all_keys is None:
        return ()  # the source saw nothing new (its files did not change): nothing to plan
    run.notes = NoteIndex(state) if run.same_keys else state.notes()
    return plan_iter(
        snapshot, run.notes, session.vault, session.plan_context,
        lambda item: run.seen.extend(annotation_rows([item])), keys_unchanged=run.same_keys,
    )  # fmt: skip


def papers_stage(session: Session, run: SyncRun) -> None:
    """Write each paper note as it is planned; note what was written."""
    state, marks = session.state, session.marks
    planned = _plan_papers(session, run)
    # an interrupted sync's history and queue are caught up from every paper next time
    interrupted = marks.pending
    run.everything = run.full or interrupted
    _sweep_temps(session, run.result, interrupted=interrupted)
    marks.pending = True

    def planned_and_kept() -> Iterator[Action]:
        for action in planned:  # each is written, then let go, by `apply`
            run.actions.append(action.receipt())
            yield action

    assert run.snapshot is not None
    tick = run.progress(len(run.snapshot.items)) if run.progress else None
    apply(planned_and_kept(), session.vault, state, run.result, tick)
    _count_unplanned(run.result, state, run.notes, run.actions)
    run.written = {
        a.note_id
        for a in run.actions
        if a.kind != ActionKind.UNCHANGED and a.state is not None and a.state.kind == "paper"
    }


def dry_run_stage(session: Session, run: SyncRun) -> None:
    """`--dry-run`: plan the paper and method notes, count the actions, write nothing."""
    actions: list[Action] = list(_plan_papers(session, run))
    _count_unplanned(run.result, session.state, run.notes, actions)
    actions += _plan_methods(session, run.result, write_cache=False)[0]
    for action in actions:
        run.result.count(action)
    run.result.actions = actions


def _sweep_temps(session: Session, result: SyncResult, *, interrupted: bool) -> None:
    """Delete the hidden temp files a killed write leaves (`Vault.remove_stale_temps`).

    Walking the whole vault is a noticeable share of a sync that changes one note, and temps
    are rare: the vault is swept after an interrupted sync (PENDING was left
    set), and otherwise once every `SWEEP_EVERY_S` (a `zob new` killed mid-write)."""
    due = time.time() - session.marks.temps_swept >= SWEEP_EVERY_S
    if interrupted or due:
        _, recovered = session.vault.remove_stale_temps()
        for path in recovered:
            result.warnings.append(
                f"an interrupted sync left a copy of a note; it was kept as {path}: compare it"
                " with the note of the same zotero_key and delete it when done"
            )
        session.marks.swept_temps_now()


def _count_unplanned(
    result: SyncResult,
    state: State,
    notes: Mapping[str, NoteState] | None,
    actions: Sequence[Action | Receipt],
) -> None:
    """Paper notes the snapshot did not mention (incremental reads) are unchanged too."""
    if notes is None:  # nothing was planned
        result.unchanged += state.count_notes("paper", include_user_deleted=True)
        return
    if isinstance(notes, NoteIndex) and not notes.loaded:  # count without reading them all
        planned_ids = {a.note_id for a in actions}
        mentioned = sum(
            1 for note_id in planned_ids if (n := notes.get(note_id)) and n.kind == "paper"
        )
        result.unchanged += state.count_notes("paper", include_user_deleted=True) - mentioned
        return
    planned = {a.note_id for a in actions}
    result.unchanged += sum(
        1 for n in notes.values() if n.kind == "paper" and n.note_id not in planned
    )


def _keys_digest(snapshot: LibrarySnapshot) -> str | None:
    if snapshot.all_keys is None:
        return None
    text = "\n".join(sorted(snapshot.all_keys))
    return text_hash(text)


def _source_id(config: Config) -> str:
    if config.source == "sqlite":
        return str(config.zotero_dir)
    if config.source in ("web", "local"):
        return f"{config.library_type}:{config.library_id}:{config.api_url}"
    return config.source


# --- 3. methods -------------------------------------------------------------------------------


def methods_stage(session: Session, run: SyncRun) -> None:
    """Method notes follow the paper notes as they are on disk now (user edits included)."""
    run.method_actions, run.papers, run.changed = _plan_methods(
        session, run.result, write_cache=True, everything=run.everything, written=run.written
    )
    apply(run.method_actions, session.vault, session.state, run.result)
    run.result.actions = run.actions + run.method_actions


def _plan_methods(
    session: Session,
    result: SyncResult,
    *,
    write_cache: bool,
    everything: bool = True,
    written: set[str] | None = None,
) -> tuple[list[Action], list[PaperInfo] | None, set[str]]:
    """Returns the method actions, every paper's facts when they were collected (the reading
    queue and history reuse them; None when they were not needed), and the paper notes whose
    facts may have changed: `written` by this sync, edited, or gone.

    Work is skipped by what changed (`everything` or no `write_cache` turns that off):
    - no paper note written, every cached fact valid, no method note edited: nothing is
      parsed or rendered (a no-op sync);
    - else the edited notes are re-read, and method notes are rendered again only when the
      cached facts of the papers with a lineage (all a method note shows) changed."""
    config, state, vault, marks = session.config, session.state, session.vault, session.marks
    written = written or set()
    scan = scan_papers(vault, state)
    incremental = write_cache and not everything
    # never rendered, a write failed, or other settings (folder, diagram depth) since
    behind = not _same_lineage_settings(marks.lineage_digest, config)
    nothing_new = incremental and scan.unchanged and not written and not behind
    if nothing_new and _methods_untouched(session):
        remember_missing(state, scan)  # the names looked into, while a note is missing
        _replay_lineage_problems(session, result, [])
        return [], None, set()
    fresh, problems = refresh_papers(vault, state, scan, write_cache=write_cache)
    changed = written | set(fresh) | set(scan.dropped)
    digest = _lineage_digest(session) if write_cache else ""
    if incremental and marks.lineage_digest == digest and _methods_untouched(session):
        _replay_lineage_problems(session, result, problems)
        return [], None, changed
    papers = all_papers(state, scan, fresh)
    result.warnings.extend(problems)
    actions, graph = plan_lineage(
        config, state, vault, session.plan_context, papers, changed, result, write=write_cache
    )  # bridge/lineage_stage.py: method notes, paper Lineage regions, canvases
    if write_cache:
        marks.lineage_problems = graph.problems
        marks.lineage_digest = digest  # forgotten again if a note fails to write
    return actions, papers, changed


def _lineage_digest(session: Session) -> str:
    """What method notes are rendered from: two settings, the lineage papers' facts, and the
    method notes' own facts and aliases (`lineage_stage.lineage_inputs`)."""
    config, state = session.config, session.state
    facts = state.lineage_facts_digest()
    inputs = lineage_inputs(config, state, session.vault)
    return json.dumps([config.methods_folder, config.mermaid_depth, facts, inputs])


def _same_lineage_settings(digest: str | None, config: Config) -> bool:
    try:
        return json.loads(digest or "null")[:2] == [config.methods_folder, config.mermaid_depth]
    except (ValueError, TypeError):
        return False


def _replay_lineage_problems(session: Session, result: SyncResult, problems: list[str]) -> None:
    """The method graph was not rebuilt: its problems were said when it last was (`zob
    status` lists them); only the paper notes' own problems are said again."""
    result.warnings.extend(problems)
    result.unchanged += session.state.count_notes("method")


def _methods_untouched(session: Session) -> bool:
    """Every method note is where and as the bridge last left it (one stat each)."""
    unchanged = session.vault.unchanged_since
    notes = session.state.live_notes("method")
    return all(unchanged(path, etag, content) for _, path, etag, content in notes)


# --- 4. after the sync ------------------------------------------------------------------------


def after_sync_stage(session: Session, run: SyncRun) -> None:
    """Reading history, the queue, writeback (`bridge.workflow.hooks`)."""
    update_reading_workflow(
        session, run.result, run.seen, now=run.options.now, papers=run.papers,
        changed=None if run.papers is not None else run.changed,
    )  # fmt: skip
    # Obsidian's property types for the bridge's own properties (never the user's types)
    types_warning = declare_types(session.vault)
    if types_warning and types_warning not in run.result.warnings:
        run.result.warnings.append(types_warning)


# --- 5. marks ---------------------------------------------------------------------------------


def marks_stage(session: Session, run: SyncRun) -> None:
    """Move the cursor on, hold it for the notes that failed, record the sync: at once."""
    state, marks, result, read = session.state, session.marks, run.result, run.read
    assert read is not None and run.snapshot is not None and run.opened is not None
    # problems met while a streaming source built its items (after `read` returned)
    late = run.opened.items.warnings
    result.warnings.extend(w for w in dict.fromkeys(late) if w not in result.warnings)
    failed = result.failed_paths()
    # A paper note that could not be written (changed in Obsidian meanwhile, read-only, a
    # name taken, broken YAML) or marked deleted-in-zotero gets Zotero's change again: the
    # cursor read before it failed is held (`bridge.retries`), and read from once more, and
    # again whenever the user changes that note. Moving on would leave the note behind
    # Zotero until its item changed again, whatever the user fixed.
    behind = {action.path for action in run.actions if action.retry and action.path in failed}
    with state.transaction():
        if any(action.path in failed for action in run.method_actions):
            marks.lineage_digest = None  # a method note is behind: render them again
        if run.snapshot.cursor is not None:
            marks.set_cursor(read.cursor_key, run.snapshot.cursor)
        update_held_cursor(
            state, read.cursor_key, session.vault_root, held=read.held, read_from=read.since,
            retried=read.everything, failed=behind,
            settled=(action.path for action in run.actions if action.path not in failed),
            deferred={d["path"] for d in result.deferred}, settle_s=session.config.settle_seconds,
        )  # fmt: skip
        marks.render_fingerprint = session.render_fingerprint
        marks.source = run.source.name
        marks.source_settings = source_settings(session.config)  # for later commands here
        marks.last_warnings = result.warnings
        state.record_sync(run.started, run.source.name, result.counts())
        if run.keys is not None:
            marks.keys_digest = None if behind else run.keys
        marks.pending = False


def search_index_stage(session: Session, run: SyncRun) -> None:
    """The search index (`.zotero-bridge/search.sqlite`), when one was built: the notes
    changed since it last looked re-indexed (`bridge/search/hook.py`)."""
    keep_search_index_current(session.config, session.vault_root, run.result)


def library_index_stage(session: Session, run: SyncRun) -> None:
    """The Obsidian plugin's item index (`.zotero-bridge/library.json`): every item read,
    before `[filters]` (every item is citable). Its problems are warnings, never a failure.
    Only for a vault the plugin is installed in (or that has an index already)."""
    assert run.opened is not None and run.read is not None
    if not library_index.wanted(session.vault_root):
        return
    run.result.warnings += library_index.after_sync(
        run.source, session.vault_root, session.state, run.opened.items, run.opened.all_keys,
        complete=run.read.since is None, source_id=_source_id(session.config),
    )  # fmt: skip


# the stages of a sync, in order; feature hooks go in as stages of their own
SYNC_STAGES: tuple[Stage, ...] = (
    read_stage,
    papers_stage,
    methods_stage,
    after_sync_stage,
    search_index_stage,
    library_index_stage,
    marks_stage,
)
DRY_RUN_STAGES: tuple[Stage, ...] = (read_stage, dry_run_stage)
