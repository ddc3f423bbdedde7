"""Declare the bridge's property types in the vault's `.obsidian/types.json`.

Without a declared type Obsidian guesses one from the first value it meets, so `year` may
become text, and `date_added` text rather than Date & time (no date widget, no date sorting
or filtering). When the vault has an `.obsidian/` folder (Obsidian opened it once), the bridge
adds the types of its own properties that the file does not declare yet: a type the user (or a
plugin) set is never changed, other keys of the file are kept, and the file is replaced
atomically through the vault's write path (never over a save Obsidian makes meanwhile). A
`types.json` that is not a JSON object with a `types` object is reported and left alone.
"""

from __future__ import annotations

import json
from typing import Any

from bridge.errors import NoteError
from bridge.stamps import text_hash
from bridge.vault.fs import Vault

TYPES_FILE = ".obsidian/types.json"
# Obsidian's type names: text, multitext, number, checkbox, date, datetime, aliases, tags
BRIDGE_TYPES: dict[str, str] = {
    "year": "number",
    "pass": "number",
    "date_added": "datetime",
    "date_modified": "datetime",
    "authors": "multitext",
    "collections": "multitext",
    "proposes": "multitext",
    "extends": "multitext",
    "related": "multitext",
    "proposed_in": "multitext",
    "tags": "tags",
}


def declare_types(vault: Vault) -> str | None:
    """Add the missing declarations; returns a warning to show, or None."""
    try:
        if not vault.abs(".obsidian").is_dir():
            return None  # not opened in Obsidian yet (or a plain folder): nothing to declare into
    except NoteError as exc:  # `.obsidian` links outside the vault: never written through
        return f"{TYPES_FILE}: {exc.message}; property types were not declared"
    etag = vault.etag(TYPES_FILE)
    if etag is None:
        text = json.dumps({"types": BRIDGE_TYPES}, indent=2, ensure_ascii=False) + "\n"
        return _write(vault, text, None, None)
    try:
        before = vault.read(TYPES_FILE)
    except NoteError as exc:
        return f"{TYPES_FILE}: {exc.message}; property types were not declared"
    data = _parse(before)
    if data is None:
        return (
            f'{TYPES_FILE} is not a JSON object with a "types" object, so the bridge left it'
            " alone and declared no property types; fix or delete it (Obsidian rewrites it)"
        )
    missing = {k: v for k, v in BRIDGE_TYPES.items() if k not in data["types"]}
    if not missing:
        return None
    data["types"].update(missing)
    try:
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    except RecursionError:  # nested deeper than json.dumps goes, though json.loads did
        return f"{TYPES_FILE} is nested too deeply to rewrite; property types were not declared"
    return _write(vault, text, etag, text_hash(before))


def _parse(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: arrays nested 100,000 deep
        return None
    if not isinstance(data, dict) or not isinstance(data.get("types", {}), dict):
        return None
    data.setdefault("types", {})
    return data


def _write(vault: Vault, text: str, etag: str | None, expected_hash: str | None) -> str | None:
    try:
        if etag is None:
            vault.create(TYPES_FILE, text)
        else:
            vault.replace(TYPES_FILE, text, etag, expected_hash)
        vault.sync_dirs()
    except NoteError as exc:  # Obsidian wrote it meanwhile, read-only, …: next sync
        return f"{TYPES_FILE}: {exc.message}; property types are declared at the next sync"
    except OSError as exc:
        return f"{TYPES_FILE}: {exc.strerror or exc}; property types were not declared"
    return None
