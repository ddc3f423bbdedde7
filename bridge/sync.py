"""One sync: source.read → plan → apply. `zob sync`, `zob demo` and the daemon all call this."""

from __future__ import annotations

import gc
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import obsidian_templates
from bridge import __version__
from bridge.apply import SyncResult, apply
from bridge.config import Config, require_vault
from bridge.errors import ConfigError
from bridge.lineage import MethodGraph, PaperInfo
from bridge.locks import sync_lock
from bridge.plan import Action, PlanContext, plan, plan_methods
from bridge.sources import Source
from bridge.state import STATE_DIRNAME, State, now_iso
from bridge.vault.fs import Vault
from bridge.vault.papers import collect_papers
from bridge.vault.render import Renderer
from bridge.workflow.filters import SyncFilter, filter_snapshot
from bridge.workflow.hooks import after_sync

ProgressFactory = Callable[[int], Callable[[int], None]]


@dataclass
class SyncOptions:
    dry_run: bool = False
    force: bool = False
    full: bool = False  # ignore the cursor and read everything
    now: datetime | None = None  # the reading history's clock (tests pass fixed dates)


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


def make_renderer(config: Config) -> Renderer:
    return Renderer(
        language=config.language,
        templates_dir=config.templates_dir,
        color_sections=config.color_sections,
        proposes_prefix=config.proposes_prefix,
        extends_prefix=config.extends_prefix,
        attachments_folder=config.attachments_folder,
    )


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
    ]
    template_dirs = [Path(obsidian_templates.__file__).parent]
    if config.templates_dir:
        template_dirs.append(config.templates_dir)
    for folder in template_dirs:
        for path in sorted(folder.rglob("*.j2")) if folder.is_dir() else []:
            parts.append(path.name + path.read_text(encoding="utf-8", errors="replace"))
    parts.append(__version__)
    return hashlib.blake2b("\0".join(parts).encode(), digest_size=12).hexdigest()


def sync(
    config: Config,
    options: SyncOptions | None = None,
    *,
    source: Source | None = None,
    progress: ProgressFactory | None = None,
) -> SyncResult:
    """Run the pipeline once. Raises BridgeError subclasses for whole-sync failures."""
    try:
        return _sync(config, options, source=source, progress=progress)
    finally:
        gc.unfreeze()


def _sync(
    config: Config,
    options: SyncOptions | None,
    *,
    source: Source | None,
    progress: ProgressFactory | None,
) -> SyncResult:
    options = options or SyncOptions()
    vault_root = require_vault(config)
    source = source or open_source(config)
    started = now_iso()
    with sync_lock(vault_root / STATE_DIRNAME), State(vault_root) as state:
        cursor_key = f"cursor:{source.name}:{_source_id(config)}"
        fingerprint = render_fingerprint(config)
        full = options.full or state.get_meta("render_fingerprint") != fingerprint
        cursor = None if full else state.get_meta(cursor_key)
        snapshot = source.read(since=cursor)
        snapshot = filter_snapshot(snapshot, SyncFilter.from_config(config), state.pinned())
        gc.freeze()  # the snapshot lives all sync long: keep the collector from rescanning it
        vault = Vault(vault_root)
        ctx = PlanContext(config.papers_folder, make_renderer(config), force=options.force)
        notes = state.notes()
        actions = plan(snapshot, notes, vault, ctx)
        result = SyncResult(dry_run=options.dry_run, warnings=list(snapshot.warnings))
        # notes the snapshot did not mention (incremental reads) are unchanged too
        planned = {a.note_id for a in actions}
        result.unchanged += sum(
            1 for n in notes.values() if n.kind == "paper" and n.note_id not in planned
        )
        if options.dry_run:
            actions += _plan_methods(config, state, vault, ctx, result, write_cache=False)[0]
            for action in actions:
                result.count(action)
            result.actions = actions
            return result
        vault.remove_stale_temps()
        tick = progress(len(actions)) if progress else None
        apply(actions, vault, state, result, tick)
        method_actions, papers = _plan_methods(
            config,
            state,
            vault,
            ctx,
            result,
            write_cache=True,
            papers_changed=full or any(a.kind != "unchanged" for a in actions),
        )
        apply(method_actions, vault, state, result)
        result.actions = actions + method_actions
        after_sync(
            config, state, vault, ctx, result, snapshot.items, now=options.now, papers=papers
        )
        with state.transaction():
            if snapshot.cursor is not None:
                state.set_meta(cursor_key, snapshot.cursor)
            state.set_meta("render_fingerprint", fingerprint)
            state.set_meta("source", source.name)
            state.set_meta("last_warnings", json.dumps(result.warnings, ensure_ascii=False))
            state.record_sync(started, source.name, result.counts())
    return result


def _plan_methods(
    config: Config,
    state: State,
    vault: Vault,
    ctx: PlanContext,
    result: SyncResult,
    *,
    write_cache: bool,
    papers_changed: bool = True,
) -> tuple[list[Action], list[PaperInfo]]:
    """Method notes follow the paper notes as they are on disk now (user edits included).

    Also returns the papers read, which the reading queue and history reuse. When no paper
    note changed (no action, every cached fact still valid), method notes cannot change
    either and are not re-rendered — most of a no-op sync's time otherwise."""
    stats: dict[str, int] = {}
    papers, problems = collect_papers(vault, state, write_cache=write_cache, stats=stats)
    if not papers_changed and not stats["reparsed"] and not stats["dropped"]:
        result.warnings.extend(json.loads(state.get_meta("lineage_problems") or "[]"))
        result.unchanged += state.count_notes("method")
        return [], papers
    graph = MethodGraph.build(papers)
    result.warnings.extend(problems + graph.problems)
    if write_cache:
        state.set_meta("lineage_problems", json.dumps(problems + graph.problems))
    actions = plan_methods(
        graph, state.notes(), vault, ctx, config.methods_folder, config.mermaid_depth
    )
    return actions, papers


def _source_id(config: Config) -> str:
    if config.source == "sqlite":
        return str(config.zotero_dir)
    if config.source in ("web", "local"):
        return f"{config.library_type}:{config.library_id}:{config.api_url}"
    return config.source
