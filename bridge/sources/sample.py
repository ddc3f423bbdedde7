"""The bundled demo library: 19 real papers and books, shipped as Zotero API JSON.

It lets someone try the bridge (and the tests exercise every later stage) without a Zotero
installation. The data is the very JSON the web/local API returns, read through the same
converter (`apijson`), so the demo cannot drift from what real API sources produce.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from typing import Any

from bridge.errors import SourceError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.apijson import items_from_api

__all__ = ["SampleSource", "load_sample_json"]

DATA_PACKAGE = "bridge.sources"
DATA_DIR = "sample_data"
ITEMS_FILE = "library.json"
COLLECTIONS_FILE = "collections.json"


def _read_bytes(name: str) -> bytes:
    """One bundled file, via importlib.resources so zip/wheel installs work too."""
    try:
        return resources.files(DATA_PACKAGE).joinpath(DATA_DIR).joinpath(name).read_bytes()
    except OSError as exc:
        raise SourceError(
            f"bundled sample data {DATA_DIR}/{name} is missing ({exc})",
            "reinstall zotero-obsidian-bridge; the package data was not installed",
        ) from exc


def _parse(name: str, raw: bytes) -> list[Any]:
    try:
        value = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(
            f"bundled sample data {DATA_DIR}/{name} is not valid JSON: {exc}"
        ) from exc
    if not isinstance(value, list):
        raise SourceError(f"bundled sample data {DATA_DIR}/{name} is not a JSON list")
    return value


def load_sample_json() -> tuple[list[dict], list[dict], str]:
    """(item objects, collection objects, content hash) of the bundled sample.

    The hash covers both files, so it changes exactly when the data does.
    """
    items_raw = _read_bytes(ITEMS_FILE)
    collections_raw = _read_bytes(COLLECTIONS_FILE)
    digest = hashlib.sha256(items_raw + b"\0" + collections_raw).hexdigest()[:16]
    return _parse(ITEMS_FILE, items_raw), _parse(COLLECTIONS_FILE, collections_raw), digest


class SampleSource:
    """A `Source` over the bundled demo library (`name = "sample"`).

    The cursor is a hash of the data: passing it back as `since` yields an empty incremental
    snapshot, which is what a real source says when nothing changed.
    """

    name = "sample"

    def read(self, since: str | None = None) -> LibrarySnapshot:
        objects, collections, digest = load_sample_json()
        cursor = f"sample:{digest}"
        warnings: list[str] = []
        items = items_from_api(objects, collections, Library(), warnings)
        all_keys = frozenset(item.key for item in items)
        unchanged = since is not None and since == cursor
        return LibrarySnapshot(
            items=() if unchanged else tuple(items),
            all_keys=all_keys,
            cursor=cursor,
            library=Library(),
            incremental=unchanged,
            warnings=tuple(warnings),
        )
