"""What a command opens, once: the config, the vault, the state DB, the renderer, the planning.

Every command that touches a vault opens one `Session` and passes it on; no entry point builds
the chain require_vault → State → Vault → Renderer → PlanContext itself:

- `writing(config)`: `zob sync` (each round of it), the daemon's syncs, `zob new`, `zob queue`
  and `zob report`. They all write notes and the state DB; two of them at once would
  interleave writes (the same note planned twice, a state row written from a stale scan). So
  `writing` takes the vault's sync lock (`bridge.locks.sync_lock`) before the state DB is
  opened and holds it until the command's last write: the commands take turns, and one that
  cannot get the lock in `timeout` seconds exits 6 (`SyncBusyError`) having written nothing.
- `reading(config)`: no lock, for what reads (`zob status`, the queries, a local API or a
  search built on the session) and for the daemon's own bookkeeping (its status mark, the
  etags it filters events by), which must not wait for a sync. Callers that must not create a
  state DB ask `state_exists` first.

The renderer, the plan context and the render fingerprint are built when first asked for: a
sync that finds nothing to do renders nothing. What a run accumulates (a `SyncResult`, or the
sync's `SyncRun`) travels beside the session, not in it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import obsidian_templates
from bridge import __version__
from bridge.config import APP_NAME, Config, require_vault
from bridge.lineage_stage import method_links
from bridge.locks import sync_lock
from bridge.plan import PlanContext
from bridge.stamps import digest
from bridge.state import DB_NAME, STATE_DIRNAME, State, SyncMarks
from bridge.vault.fs import Vault
from bridge.vault.render import Renderer

LOCK_TIMEOUT = 120.0  # seconds a command waits for another one (a long first sync) to finish


@dataclass(frozen=True)
class Planning:
    """How a session plans notes.

    `force`: re-render every note (`zob sync --force`). `wait_for_saves`: a command writing a
    note or two waits for one being saved (`plan.when_quiet`); a sync does not (it defers,
    then syncs again or leaves it to `zob watch`). `cached_templates`: keep compiled templates
    in the user's cache folder (`template_cache_dir`), as a sync does."""

    force: bool = False
    wait_for_saves: bool = True
    cached_templates: bool = False


@dataclass(eq=False)
class Session:
    """One command's view of one vault. Open it with `writing` or `reading`."""

    config: Config
    vault_root: Path
    state: State
    vault: Vault
    planning: Planning = Planning()
    locked: bool = False  # opened by `writing`: the sync lock is held
    _renderer: Renderer | None = field(default=None, init=False, repr=False)
    _plan_context: PlanContext | None = field(default=None, init=False, repr=False)
    _fingerprint: str | None = field(default=None, init=False, repr=False)

    def __iter__(self) -> Iterator[object]:
        """`with writing(config) as (vault_root, state, vault):` as before sessions."""
        return iter((self.vault_root, self.state, self.vault))

    @property
    def marks(self) -> SyncMarks:
        """The state DB's marks (`bridge.state.marks`)."""
        return self.state.marks

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            self._renderer = make_renderer(self.config, cached=self.planning.cached_templates)
        return self._renderer

    @property
    def plan_context(self) -> PlanContext:
        """What planning a note needs beside the note: settings, and the texts last seen."""
        if self._plan_context is None:
            self._plan_context = plan_context(
                self.config, self.state, self.renderer,
                force=self.planning.force, wait=self.planning.wait_for_saves,
            )  # fmt: skip
        return self._plan_context

    @property
    def render_fingerprint(self) -> str:
        """`render_fingerprint(config)`, read from the templates once per session."""
        if self._fingerprint is None:
            self._fingerprint = render_fingerprint(self.config)
        return self._fingerprint


@contextmanager
def writing(
    config: Config, *, timeout: float = LOCK_TIMEOUT, planning: Planning = Planning()
) -> Iterator[Session]:
    """Take the vault's sync lock, then open its state DB and the vault; release in order."""
    vault_root = require_vault(config)
    with sync_lock(vault_root / STATE_DIRNAME, timeout), State(vault_root) as state:
        yield Session(config, vault_root, state, Vault(vault_root), planning, locked=True)


@contextmanager
def reading(config: Config, *, root: Path | None = None) -> Iterator[Session]:
    """Open the state DB and the vault without the sync lock. `root`: the vault, already
    checked by `require_vault` (the daemon's, resolved once)."""
    vault_root = require_vault(config) if root is None else root
    with State(vault_root) as state:
        yield Session(config, vault_root, state, Vault(vault_root))


def state_exists(vault_root: Path) -> bool:
    """Whether a sync has made the vault's state DB (`reading` would create it)."""
    return (vault_root / STATE_DIRNAME / DB_NAME).exists()


# --- what a session builds --------------------------------------------------------------------


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
        color_sections_by_language={lang: config.color_sections_for(lang) for lang in ("en", "zh")},
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
    renderer.method_links = method_links(state)  # links to methods: aliases, renamed notes
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
        repr(sorted(config.color_sections_for("zh").items())),
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
