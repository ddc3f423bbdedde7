"""One sync: source.read → plan → apply. `zob sync`, `zob demo` and the daemon all call this."""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import obsidian_templates
from bridge import __version__
from bridge.actions import Action, ActionKind, Receipt
from bridge.apply import SyncResult, apply
from bridge.config import APP_NAME, Config, require_vault
from bridge.errors import ConfigError, NoSpaceError, is_no_space
from bridge.lineage import MethodGraph, PaperInfo
from bridge.model import LibrarySnapshot
from bridge.plan import PlanContext, plan_iter, plan_methods
from bridge.retries import Held, update_held_cursor
from bridge.session import Writing, writing
from bridge.sources import Source
from bridge.stamps import digest, iso, text_hash
from bridge.state import NoteIndex, NoteState, State
from bridge.vault.fs import Vault
from bridge.vault.papers import all_papers, refresh_papers, remember_missing, scan_papers
from bridge.vault.render import Renderer
from bridge.workflow.filters import SyncFilter, filter_snapshot
from bridge.workflow.hooks import update_reading_workflow
from bridge.workflow.progress import annotation_rows

ProgressFactory = Callable[[int], Callable[[int], None]]

# state meta keys
PENDING = "sync_pending"  # set while a sync writes notes; left set when it was interrupted
LINEAGE_DIGEST = "lineage_inputs"  # what the method notes were last rendered from
LINEAGE_PROBLEMS = "lineage_problems"  # the method graph's problems, then
KEYS_DIGEST = "item_keys"  # a hash of every item key the last finished sync saw
TEMPS_SWEPT = "temps_swept"  # when the vault was last swept for stale temp files (epoch s)
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
            raise ConfigError(
                "no Zotero data directory given",
                hint="pass --zotero-dir (usually ~/Zotero) or set source.zotero_dir",
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


def template_cache_dir() -> Path:
    """Where compiled templates are kept between runs: the user's cache folder."""
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME)) / "templates"


def make_renderer(config: Config, *, cached: bool = False) -> Renderer:
    """`cached`: keep compiled templates in the user's cache folder (`template_cache_dir`)."""
    return Renderer(
        cache_dir=template_cache_dir() if cached else None,
        language=config.language,
        templates_dir=config.templates_dir,
        color_sections=config.color_sections,
        proposes_prefix=config.proposes_prefix,
        extends_prefix=config.extends_prefix,
        attachments_folder=config.attachments_folder,
        type_templates=config.type_templates,
    )


def plan_context(
    config: Config, state: State, renderer: Renderer, *, force: bool = False, wait: bool = True
) -> PlanContext:
    """What planning a note needs beside the note: settings, and the texts last seen.
    `wait`: wait for a note being saved before planning it again (`plan.when_quiet`)."""
    return PlanContext(
        config.papers_folder, renderer, force=force,
        settle_ns=int(config.settle_seconds * 1e9), seen=state.seen_text, wait_for_saves=wait,
        citekey_pattern=config.citekey_pattern,
    )  # fmt: skip


def render_fingerprint(config: Config) -> str:
    """Changes when anything that shapes a note changes, so a sync then re-reads everything."""
    parts = [
        config.language,
        repr(sorted(config.color_sections.items())),
        config.proposes_prefix,
        config.extends_prefix,
        config.papers_folder,
        config.attachments_folder,
        repr((config.filter_collections, config.filter_tags)),  # filters changed → full read
        repr(sorted(config.type_templates.items())),  # which template each item type gets
    ]
    template_dirs = [Path(obsidian_templates.__file__).parent]
    if config.templates_dir:
        template_dirs.append(config.templates_dir)
    for folder in template_dirs:
        for path in sorted(folder.rglob("*.j2")) if folder.is_dir() else []:
            parts.append(path.name + path.read_text(encoding="utf-8", errors="replace"))
    parts.append(__version__)
    return digest("\0".join(parts).encode(), size=12)


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
        return _sync(config, options, source=source, progress=progress)
    except OSError as exc:
        if is_no_space(exc):  # a method note, the queue, an index: the disk is full
            raise NoSpaceError.from_os_error(exc) from exc
        raise
    finally:
        gc.unfreeze()


def _sync(
    config: Config,
    options: SyncOptions,
    *,
    source: Source,
    progress: ProgressFactory | None,
) -> SyncResult:
    assert options is not None and source is not None
    started = iso()
    with writing(config) as session:
        vault_root, state = session.vault_root, session.state
        cursor_key = f"cursor:{source.name}:{_source_id(config)}"
        fingerprint = render_fingerprint(config)
        full = options.full or state.get_meta("render_fingerprint") != fingerprint
        held = Held.load(state, cursor_key)
        # `due` also notes what the held notes are like now (for a full read too)
        due = held is not None and held.due(vault_root)
        retry = not full and due
        cursor = None if full else held.cursor if retry and held else state.get_meta(cursor_key)
        snapshot = source.read(since=cursor)
        read = _Read(cursor_key, cursor, held, full or retry)
        try:
            return _sync_snapshot(
                config, options, source, session, snapshot, full, fingerprint, started,
                progress, read,
            )  # fmt: skip
        finally:
            snapshot.close()  # a streaming source holds its copy of Zotero's database open


@dataclass(frozen=True)
class _Read:
    """Where this sync read from: the cursor, or the one held for notes that failed
    (`bridge.retries`); `everything`: every change since the held cursor was planned."""

    cursor_key: str
    since: str | None
    held: Held | None
    everything: bool


def _sync_snapshot(
    config: Config,
    options: SyncOptions,
    source: Source,
    session: Writing,
    snapshot: LibrarySnapshot,
    full: bool,
    fingerprint: str,
    started: str,
    progress: ProgressFactory | None,
    read: _Read,
) -> SyncResult:
    """The sync of one snapshot read under the sync lock (`_sync`)."""
    vault_root, state, vault = session
    read_items = snapshot.items  # a filter may replace them; a stream's late warnings stay
    snapshot = filter_snapshot(snapshot, SyncFilter.from_config(config), state.pinned())
    gc.freeze()  # the snapshot lives all sync long: keep the collector from rescanning it
    renderer = make_renderer(config, cached=True)
    ctx = plan_context(config, state, renderer, force=options.force, wait=False)
    # state.notices: the vault was found moved or copied (`State._claim_vault`)
    result = SyncResult(dry_run=options.dry_run, warnings=[*state.notices, *snapshot.warnings])
    for path, settles in (read.held.blocked if read.held else {}).items():
        # a held note still being saved: its change is read once it settles (`Held.due`)
        result.defer(path, "", f"{path}: being saved; merged once it settles", settles)
    notes: Mapping[str, NoteState] | None = None
    planned: Iterable[Action] = ()
    seen: list[tuple[str, str, str]] = []  # the items' annotations, for the history
    keys = _keys_digest(snapshot)
    # the same item keys as at the last finished sync: no new note to name, nothing erased
    same_keys = (
        keys is not None
        and snapshot.incremental  # a few items: looked up one by one
        and not read.everything  # a retry: the notes that failed may be missing or erased
        and state.get_meta(PENDING) is None
        and state.get_meta(KEYS_DIGEST) == keys
    )
    if snapshot.items or snapshot.all_keys is not None:
        notes = NoteIndex(state) if same_keys else state.notes()
        planned = plan_iter(
            snapshot, notes, vault, ctx, lambda item: seen.extend(annotation_rows([item])),
            keys_unchanged=same_keys,
        )  # fmt: skip
    # else the source saw nothing new (its files did not change): nothing to plan
    if options.dry_run:
        actions = list(planned)
        _count_unplanned(result, state, notes, actions)
        actions += _plan_methods(config, state, vault, ctx, result, write_cache=False)[0]
        for action in actions:
            result.count(action)
        result.actions = actions
        return result
    # an interrupted sync's history and queue are caught up from every paper next time
    interrupted = state.get_meta(PENDING) is not None
    everything = full or interrupted
    _sweep_temps(state, vault, result, interrupted=interrupted)
    state.set_meta(PENDING, "1")
    actions: list[Action | Receipt] = []  # what is kept of each: not its text or state

    def planned_and_kept() -> Iterator[Action]:
        for action in planned:  # each is written, then let go, by `apply`
            actions.append(action.receipt())
            yield action

    tick = progress(len(snapshot.items)) if progress else None
    apply(planned_and_kept(), vault, state, result, tick)
    _count_unplanned(result, state, notes, actions)
    written = {
        a.note_id
        for a in actions
        if a.kind != ActionKind.UNCHANGED and a.state is not None and a.state.kind == "paper"
    }
    method_actions, papers, changed = _plan_methods(
        config, state, vault, ctx, result, write_cache=True, everything=everything,
        written=written,
    )  # fmt: skip
    apply(method_actions, vault, state, result)
    result.actions = actions + method_actions
    update_reading_workflow(
        config,
        state,
        vault,
        ctx,
        result,
        seen,
        now=options.now,
        papers=papers,
        changed=None if papers is not None else changed,
    )
    # problems met while a streaming source built its items (after `read` returned)
    late = getattr(read_items, "warnings", ())
    result.warnings.extend(w for w in dict.fromkeys(late) if w not in result.warnings)
    failed = result.failed_paths()
    # A paper note that could not be written (changed in Obsidian meanwhile, read-only, a
    # name taken, broken YAML) or marked deleted-in-zotero gets Zotero's change again: the
    # cursor read before it failed is held (`bridge.retries`), and read from once more, and
    # again whenever the user changes that note. Moving on would leave the note behind
    # Zotero until its item changed again, whatever the user fixed.
    behind = {action.path for action in actions if action.retry and action.path in failed}
    with state.transaction():
        if any(action.path in failed for action in method_actions):
            state.set_meta(LINEAGE_DIGEST, None)  # a method note is behind: render them again
        if snapshot.cursor is not None:
            state.set_meta(read.cursor_key, snapshot.cursor)
        update_held_cursor(
            state, read.cursor_key, vault_root, held=read.held, read_from=read.since,
            retried=read.everything, failed=behind,
            settled=(action.path for action in actions if action.path not in failed),
            deferred={d["path"] for d in result.deferred}, settle_s=config.settle_seconds,
        )  # fmt: skip
        state.set_meta("render_fingerprint", fingerprint)
        state.set_meta("source", source.name)
        state.set_meta("last_warnings", json.dumps(result.warnings, ensure_ascii=False))
        state.record_sync(started, source.name, result.counts())
        if keys is not None:
            state.set_meta(KEYS_DIGEST, None if behind else keys)
        state.set_meta(PENDING, None)
    return result


def _sweep_temps(state: State, vault: Vault, result: SyncResult, *, interrupted: bool) -> None:
    """Delete the hidden temp files a killed write leaves (`Vault.remove_stale_temps`).

    Walking the whole vault is a noticeable share of a sync that changes one note, and temps
    are rare: the vault is swept after an interrupted sync (PENDING was left
    set), and otherwise once every `SWEEP_EVERY_S` (a `zob new` killed mid-write)."""
    last = state.get_meta(TEMPS_SWEPT)
    try:
        due = time.time() - float(last or "0") >= SWEEP_EVERY_S
    except ValueError:
        due = True
    if interrupted or due:
        _, recovered = vault.remove_stale_temps()
        for path in recovered:
            result.warnings.append(
                f"an interrupted sync left a copy of a note; it was kept as {path}: compare it"
                " with the note of the same zotero_key and delete it when done"
            )
        state.set_meta(TEMPS_SWEPT, repr(time.time()))


def _plan_methods(
    config: Config,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    result: SyncResult,
    *,
    write_cache: bool,
    everything: bool = True,
    written: set[str] | None = None,
) -> tuple[list[Action], list[PaperInfo] | None, set[str]]:
    """Method notes follow the paper notes as they are on disk now (user edits included).

    Returns the method actions, every paper's facts when they were collected (the reading
    queue and history reuse them; None when they were not needed), and the paper notes whose
    facts may have changed: `written` by this sync, edited, or gone.

    Work is skipped by what changed (`everything` or no `write_cache` turns that off):
    - no paper note written, every cached fact valid, no method note edited: nothing is
      parsed or rendered (a no-op sync);
    - else the edited notes are re-read, and method notes are rendered again only when the
      cached facts of the papers with a lineage (all a method note shows) changed."""
    written = written or set()
    scan = scan_papers(vault, state)
    incremental = write_cache and not everything
    # never rendered, a write failed, or other settings (folder, diagram depth) since
    behind = not _same_lineage_settings(state.get_meta(LINEAGE_DIGEST), config)
    if (
        incremental
        and scan.unchanged
        and not written
        and not behind
        and _methods_untouched(state, vault)
    ):
        remember_missing(state, scan)  # the names looked into, while a note is missing
        _replay_lineage_problems(state, result, [])
        return [], None, set()
    fresh, problems = refresh_papers(vault, state, scan, write_cache=write_cache)
    changed = written | set(fresh) | set(scan.dropped)
    digest = _lineage_digest(config, state) if write_cache else ""
    if (
        incremental
        and state.get_meta(LINEAGE_DIGEST) == digest
        and _methods_untouched(state, vault)
    ):
        _replay_lineage_problems(state, result, problems)
        return [], None, changed
    papers = all_papers(state, scan, fresh)
    graph = MethodGraph.build(papers)
    result.warnings.extend(problems + graph.problems)
    actions = plan_methods(
        graph, state.notes("method"), vault, ctx, config.methods_folder, config.mermaid_depth
    )
    if write_cache:
        state.set_meta(LINEAGE_PROBLEMS, json.dumps(graph.problems))
        state.set_meta(LINEAGE_DIGEST, digest)  # forgotten again if a note fails to write
    return actions, papers, changed


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


def _lineage_digest(config: Config, state: State) -> str:
    """What method notes are rendered from: two settings and the lineage papers' facts."""
    return json.dumps([config.methods_folder, config.mermaid_depth, state.lineage_facts_digest()])


def _same_lineage_settings(digest: str | None, config: Config) -> bool:
    try:
        return json.loads(digest or "null")[:2] == [config.methods_folder, config.mermaid_depth]
    except (ValueError, TypeError):
        return False


def _replay_lineage_problems(state: State, result: SyncResult, problems: list[str]) -> None:
    """The method graph was not rebuilt: its problems are those found when it last was."""
    result.warnings.extend(problems + json.loads(state.get_meta(LINEAGE_PROBLEMS) or "[]"))
    result.unchanged += state.count_notes("method")


def _source_id(config: Config) -> str:
    if config.source == "sqlite":
        return str(config.zotero_dir)
    if config.source in ("web", "local"):
        return f"{config.library_type}:{config.library_id}:{config.api_url}"
    return config.source


def _methods_untouched(state: State, vault: Vault) -> bool:
    """Every method note is where and as the bridge last left it (one stat each)."""
    rows = state.db.execute(
        "SELECT path, etag, content_hash FROM notes WHERE kind='method' AND user_deleted=0"
    ).fetchall()
    return all(vault.unchanged_since(path, etag, content) for path, etag, content in rows)
