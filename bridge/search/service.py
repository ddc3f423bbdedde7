"""What the commands (and the daemon's API, the plugin) call: an up-to-date index of a
configured vault, and the searches over it, as plain dicts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bridge.config import Config, require_vault
from bridge.search import engine
from bridge.search.indexer import RefreshStats, refresh
from bridge.search.store import (
    INDEX_NAME,
    SearchIndex,
    SearchIndexDamagedError,
    index_error,
    remove_index,
)
from bridge.statefolder import STATE_DIRNAME

Progress = Callable[[int, str], Callable[[int], None]]


@contextmanager
def open_index(
    config: Config,
    *,
    progress: Progress | None = None,
    reindex: bool = False,
    on_build: Callable[[], None] | None = None,
) -> Iterator[SearchIndex]:
    """The vault's index, built first when the vault has none (or `reindex`; a damaged one
    is then deleted first). An SQLite failure (damaged, busy) becomes a message."""
    vault_root = require_vault(config)
    path = vault_root / STATE_DIRNAME / INDEX_NAME
    fresh = reindex or not path.exists()
    try:
        if reindex:
            try:
                SearchIndex(vault_root).close()
            except SearchIndexDamagedError:
                remove_index(vault_root)
        with SearchIndex(vault_root) as index:
            if reindex:
                index.clear()
            if fresh or index.get_meta("built") is None:  # never finished building: go on
                if on_build:
                    on_build()
                refresh(index, config.zotero_dir, progress=progress)
                with index.transaction():
                    index.set_meta("built", "1")
            yield index
    except sqlite3.Error as exc:
        error = index_error(vault_root, exc)
        if error is None:
            raise
        raise error from exc


def update(config: Config) -> RefreshStats:
    """Re-index what changed (what `zob sync` does after writing, for any caller)."""
    with open_index(config) as index:
        return refresh(index, config.zotero_dir)


def search_json(
    index: SearchIndex, query: str, filters: engine.Filters, limit: int, embedder: Any = None
) -> list[dict[str, Any]]:
    results = engine.search(index, query, filters, limit=limit, embedder=embedder)
    return [engine.result_json(r, query) for r in results]
