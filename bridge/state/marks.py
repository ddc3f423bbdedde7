"""The marks the bridge keeps between runs (the state DB's `meta` table), typed.

Every `meta` key is spelled here and nowhere else: a stage of the sync, the daemon or the
reading queue reads and writes its marks through `State.marks` (`SyncMarks`), each with its
own type, instead of strings under a key of its own making. A mark set inside
`State.transaction()` commits with the rest of that transaction.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

# --- the keys ---------------------------------------------------------------------------------
# a sync
PENDING = "sync_pending"  # set while a sync writes notes; left set when it was interrupted
KEYS_DIGEST = "item_keys"  # a hash of every item key the last finished sync saw
RENDER_FINGERPRINT = "render_fingerprint"  # what shaped the notes (`Session.render_fingerprint`)
SOURCE = "source"  # the source the last sync read
SOURCE_SETTINGS = "source_settings"  # its settings, no secrets (JSON; `bridge.remembered`)
LAST_WARNINGS = "last_warnings"  # the last sync's warnings (JSON list)
TEMPS_SWEPT = "temps_swept"  # when the vault was last swept for stale temp files (epoch s)
CURSOR_PREFIX = "cursor:"  # + source name + ":" + source id → that source's cursor
# method notes
LINEAGE_DIGEST = "lineage_inputs"  # what the method notes were last rendered from
LINEAGE_PROBLEMS = "lineage_problems"  # the method graph's problems, then (JSON list)
METHOD_FACTS = "method_note_facts"  # the last facts read of each method note (JSON)
METHOD_LINKS = "method_links"  # method name/alias → note name, from the last rebuild (JSON)
PAPER_EDGES = "paper_lineage_edges"  # the edges each paper's Lineage region was checked for
CANVASES = "lineage_canvases"  # canvas path → hash of the text last written (JSON)
# paper notes not where the state DB says (`bridge.vault.papers.PaperScan`)
MISSING_PAPERS = "missing_papers"  # the digest of the missing notes' ids, once looked for
MISSING_NAMES = "missing_names"  # the vault's note names then
MISSING_WATCH = "missing_watch"  # notes watched for a missing note's text (JSON)
# notes that failed to take Zotero's change (`bridge.retries`)
HELD_PREFIX = "held:"  # + cursor key → JSON of `Held`
HELD_LAST_KEY = "held_cursor_key"  # the cursor key of the last finished sync
# the reading queue (`bridge.workflow.queue`)
QUEUE_DIGEST = "reading_queue_inputs"  # a hash of what the queue was made from
QUEUE_SETTINGS = "reading_queue_settings"  # the settings it was made with
# the daemon (`bridge.daemon`)
LIBRARY_INDEX = "library_index_mark"  # what the plugin's library.json was built from
DAEMON = "daemon"  # its status, kept after it stops (JSON)
# the vault this state belongs to (`State._claim_vault`)
VAULT_ID, VAULT_PATH = "vault_id", "vault_path"


class Meta:
    """The `meta` table, key by key (a part of `State`, which supplies `db`). Only the state
    layer names keys: other modules go through `SyncMarks`."""

    db: sqlite3.Connection

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str | None) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))


def cursor_key(source: str, source_id: str) -> str:
    """The mark a source's cursor is kept under: one per source and library."""
    return f"{CURSOR_PREFIX}{source}:{source_id}"


def _json_list(text: str | None) -> list[str]:
    return list(json.loads(text or "[]"))


def _json_dict(text: str | None) -> dict[str, Any]:
    """A JSON object mark; a damaged one reads as empty (it is a cache, rebuilt)."""
    try:
        found = json.loads(text or "{}")
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class SyncMarks:
    """Every mark of `meta`, typed: `state.marks.pending = True`."""

    def __init__(self, meta: Meta) -> None:
        self._meta = meta

    def _get(self, key: str) -> str | None:
        return self._meta.get_meta(key)

    def _set(self, key: str, value: str | None) -> None:
        self._meta.set_meta(key, value)

    # --- a sync --------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """A sync is writing notes (or was killed while it did)."""
        return self._get(PENDING) is not None

    @pending.setter
    def pending(self, value: bool) -> None:
        self._set(PENDING, "1" if value else None)

    @property
    def keys_digest(self) -> str | None:
        return self._get(KEYS_DIGEST)

    @keys_digest.setter
    def keys_digest(self, value: str | None) -> None:
        self._set(KEYS_DIGEST, value)

    @property
    def render_fingerprint(self) -> str | None:
        return self._get(RENDER_FINGERPRINT)

    @render_fingerprint.setter
    def render_fingerprint(self, value: str) -> None:
        self._set(RENDER_FINGERPRINT, value)

    @property
    def source(self) -> str | None:
        return self._get(SOURCE)

    @source.setter
    def source(self, value: str) -> None:
        self._set(SOURCE, value)

    @property
    def source_settings(self) -> str | None:
        return self._get(SOURCE_SETTINGS)

    @source_settings.setter
    def source_settings(self, value: str) -> None:
        self._set(SOURCE_SETTINGS, value)

    @property
    def last_warnings(self) -> list[str]:
        return _json_list(self._get(LAST_WARNINGS))

    @last_warnings.setter
    def last_warnings(self, value: list[str]) -> None:
        self._set(LAST_WARNINGS, json.dumps(value, ensure_ascii=False))

    @property
    def temps_swept(self) -> float:
        """When the vault was last swept for stale temp files (epoch s; 0: never, or an
        unreadable mark)."""
        try:
            return float(self._get(TEMPS_SWEPT) or "0")
        except ValueError:
            return 0.0

    def swept_temps_now(self) -> None:
        self._set(TEMPS_SWEPT, repr(time.time()))

    def cursor(self, key: str) -> str | None:
        """The cursor kept under `key` (`cursor_key`)."""
        return self._get(key)

    def set_cursor(self, key: str, value: str) -> None:
        self._set(key, value)

    # --- method notes --------------------------------------------------------------------

    @property
    def lineage_digest(self) -> str | None:
        return self._get(LINEAGE_DIGEST)

    @lineage_digest.setter
    def lineage_digest(self, value: str | None) -> None:
        self._set(LINEAGE_DIGEST, value)

    @property
    def lineage_problems(self) -> list[str]:
        try:
            return [str(p) for p in _json_list(self._get(LINEAGE_PROBLEMS))]
        except (ValueError, TypeError):
            return []

    @lineage_problems.setter
    def lineage_problems(self, value: list[str]) -> None:
        self._set(LINEAGE_PROBLEMS, json.dumps(value))

    def _set_dict(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
        if text != self._get(key):  # written only when it changed
            self._set(key, text)

    @property
    def method_facts(self) -> dict[str, Any]:
        """Method note id → [path, declared parents, aliases, etag], as last read."""
        return _json_dict(self._get(METHOD_FACTS))

    @method_facts.setter
    def method_facts(self, value: dict[str, Any]) -> None:
        self._set_dict(METHOD_FACTS, value)

    @property
    def method_links(self) -> dict[str, str]:
        """Method name or alias (casefolded) → its note's name, where they differ."""
        return _json_dict(self._get(METHOD_LINKS))

    @method_links.setter
    def method_links(self, value: dict[str, str]) -> None:
        self._set_dict(METHOD_LINKS, value)

    @property
    def paper_edges(self) -> dict[str, Any]:
        """Paper note id → the edges its Lineage region was last checked against."""
        return _json_dict(self._get(PAPER_EDGES))

    @paper_edges.setter
    def paper_edges(self, value: dict[str, Any]) -> None:
        self._set_dict(PAPER_EDGES, value)

    @property
    def canvases(self) -> dict[str, str]:
        """Lineage canvas path → the hash of the text the bridge last wrote there."""
        return _json_dict(self._get(CANVASES))

    @canvases.setter
    def canvases(self, value: dict[str, str]) -> None:
        self._set_dict(CANVASES, value)

    # --- missing paper notes -------------------------------------------------------------

    @property
    def missing_papers(self) -> str | None:
        return self._get(MISSING_PAPERS)

    @missing_papers.setter
    def missing_papers(self, value: str | None) -> None:
        self._set(MISSING_PAPERS, value)

    @property
    def missing_names(self) -> str | None:
        return self._get(MISSING_NAMES)

    @missing_names.setter
    def missing_names(self, value: str | None) -> None:
        self._set(MISSING_NAMES, value)

    @property
    def missing_watch(self) -> str | None:
        """JSON: note name → etag (`PaperScan.missing_watch`)."""
        return self._get(MISSING_WATCH)

    @missing_watch.setter
    def missing_watch(self, value: str | None) -> None:
        self._set(MISSING_WATCH, value)

    # --- held cursors --------------------------------------------------------------------

    def held(self, key: str) -> str | None:
        """The JSON of the `Held` kept beside the cursor `key` (`bridge.retries`)."""
        return self._get(HELD_PREFIX + key)

    def set_held(self, key: str, value: str | None) -> None:
        self._set(HELD_PREFIX + key, value)

    @property
    def last_cursor_key(self) -> str | None:
        """The cursor key of the last finished sync."""
        return self._get(HELD_LAST_KEY)

    @last_cursor_key.setter
    def last_cursor_key(self, value: str) -> None:
        self._set(HELD_LAST_KEY, value)

    # --- the reading queue ---------------------------------------------------------------

    @property
    def queue_digest(self) -> str | None:
        return self._get(QUEUE_DIGEST)

    @queue_digest.setter
    def queue_digest(self, value: str | None) -> None:
        self._set(QUEUE_DIGEST, value)

    @property
    def queue_settings(self) -> str | None:
        return self._get(QUEUE_SETTINGS)

    @queue_settings.setter
    def queue_settings(self, value: str | None) -> None:
        self._set(QUEUE_SETTINGS, value)

    # --- the daemon ----------------------------------------------------------------------

    @property
    def library_index(self) -> str | None:
        return self._get(LIBRARY_INDEX)

    @library_index.setter
    def library_index(self, value: str | None) -> None:
        self._set(LIBRARY_INDEX, value)

    @property
    def daemon(self) -> dict[str, Any] | None:
        """The daemon's last published status (None: none, or unreadable)."""
        try:
            found = json.loads(self._get(DAEMON) or "null")
        except ValueError:
            return None
        return found if isinstance(found, dict) else None

    @daemon.setter
    def daemon(self, value: dict[str, Any]) -> None:
        self._set(DAEMON, json.dumps(value, ensure_ascii=False))

    # --- the vault -----------------------------------------------------------------------

    @property
    def vault_id(self) -> str | None:
        return self._get(VAULT_ID)

    @vault_id.setter
    def vault_id(self, value: str) -> None:
        self._set(VAULT_ID, value)

    @property
    def vault_path(self) -> str | None:
        return self._get(VAULT_PATH)

    @vault_path.setter
    def vault_path(self, value: str) -> None:
        self._set(VAULT_PATH, value)
