"""The one call a sync makes into search: keep an existing index in step with the vault.

`zob sync` and `zob watch` (every trigger ends in `sync()`) call `keep_search_index_current`
once the notes are written, under the sync lock. Only a vault that has an index (someone ran
`zob search` once) pays for it, and only for the notes that changed. A problem here is a
warning: the notes are written already.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from bridge.errors import BridgeError
from bridge.search.indexer import FULL_TEXT_EVERY, refresh
from bridge.search.store import INDEX_NAME, SearchIndex
from bridge.statefolder import STATE_DIRNAME


def keep_search_index_current(config: Any, vault_root: Path, result: Any) -> None:
    """Re-index the notes (and full texts) that changed since the last refresh, if indexed."""
    if getattr(result, "dry_run", False) or not (vault_root / STATE_DIRNAME / INDEX_NAME).exists():
        return
    try:
        with SearchIndex(vault_root, create=False) as index:
            refresh(index, getattr(config, "zotero_dir", None), full_text_every=FULL_TEXT_EVERY)
    except (BridgeError, OSError, sqlite3.Error) as exc:
        result.warnings.append(
            f"search index not updated ({exc}); `zob search --reindex` builds it again"
        )
