"""A vault remembers the source it was synced from, so later commands find it again.

`zob demo ./demo-vault` then `zob sync --vault demo-vault` failed with "no Zotero data
directory given": the vault came from the sample library, but without a config file every
command assumed Zotero's database. Each sync now records its source settings in the vault's
state DB (no secrets: the API key stays in its file or the environment), and a command run on
a vault the config file does not describe — or with no config file at all — and without
`--source`/`--zotero-dir` takes them from there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bridge.config import Config
from bridge.errors import BridgeError
from bridge.state.db import peek_meta
from bridge.state.marks import SOURCE
from bridge.state.marks import SOURCE_SETTINGS as SOURCE_META

_FIELDS = ("source", "zotero_dir", "library_id", "library_type", "api_url", "api_key_file")
_PATHS = frozenset({"zotero_dir", "api_key_file"})
_CHOOSING = ("source", "zotero_dir", "library_id", "api_url")  # flags that pick a source
# Never taken from a state DB: the DB travels with the vault (git, a sync service, a shared
# folder), so whoever wrote it could name the server the API key is sent to, or the file it
# is read from. A remembered `api_url` is kept only for the local API on this machine.
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


def source_settings(config: Config) -> str:
    """The settings to remember, as JSON."""
    values = {name: getattr(config, name) for name in _FIELDS}
    return json.dumps({k: str(v) if v is not None else None for k, v in values.items()})


def recall(config: Config, file_config: Config, overrides: dict[str, Any]) -> Config:
    """`config` with the vault's remembered source, when nothing chose one for this vault:
    no source flag was given, and no config file describes this vault."""
    if "source" not in overrides:
        return config  # a command that reads no source (queue, report, lineage, …)
    if config.vault is None or any(overrides.get(name) for name in _CHOOSING):
        return config
    if file_config.config_file is not None and _same_folder(file_config.vault, config.vault):
        return config
    remembered = _read(config.vault)
    if not remembered or remembered.get("source") not in ("sqlite", "sample", "web", "local"):
        return config
    values = {k: remembered.get(k) for k in _FIELDS if k != "api_key_file"}
    if not (remembered.get("source") == "local" and _loopback(values.get("api_url"))):
        values["api_url"] = None
    values = {k: (Path(v) if k in _PATHS and v else v) for k, v in values.items()}
    try:
        return config.with_overrides(**{k: v for k, v in values.items() if v is not None})
    except BridgeError:
        return config  # remembered settings that no longer hold: the flags' error says why


def _same_folder(a: Path | None, b: Path) -> bool:
    """The same vault, however each path reaches it (a link, `..`, `--vault .`)."""
    if a is None:
        return False
    try:
        return a == b or os.path.samefile(a, b)
    except OSError:
        return False


def _loopback(url: Any) -> bool:
    try:
        return isinstance(url, str) and urlsplit(url).hostname in _LOOPBACK
    except ValueError:
        return False


def _read(vault: Path) -> dict[str, Any] | None:
    """The remembered settings, read without writing a byte (a command run while a sync holds
    the vault must change nothing before it has the lock): the state DB opened read-only,
    never through a link."""
    rows = peek_meta(vault, (SOURCE_META, SOURCE))
    text = rows.get(SOURCE_META)
    if text is None and rows.get(SOURCE) == "sample":
        text = '{"source": "sample"}'  # synced before the settings were remembered
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
