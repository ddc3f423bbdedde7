"""Full reads: every item object (trash included) and collection, at one library version,
turned into the model by `apijson` exactly as the bundled sample is.

The web source's full read leaves a cursor for the incremental reads (`changes`). The local
API has no `/deleted`, and its `since=` misses objects never synced (and local edits do not
move versions), so local reads are always full reads; the cursor is a digest of the data, and
an unchanged library yields an empty incremental snapshot.
"""

from __future__ import annotations

import hashlib
import json

from bridge.errors import SourceError
from bridge.model import LibrarySnapshot
from bridge.sources.api.client import ApiClient
from bridge.sources.api.cursor import LOCAL_CURSOR_PREFIX, LibraryChanged, WebCursor
from bridge.sources.api.objects import item_tree, live_collections, live_objects, regular_keys
from bridge.sources.api.paging import listing
from bridge.sources.apijson import items_from_api

READ_ATTEMPTS = 3  # whole listings restarted when the library changes while being read


def read_everything(client: ApiClient) -> tuple[list[dict], list[dict], int | None]:
    """Every item object (trash included) and collection, read at one library version."""
    zot = client.zot
    for _ in range(READ_ATTEMPTS):
        try:
            objects, version = listing(client, zot.items, "the item list", includeTrashed=1)
            collections, col_version = listing(
                client, zot.collections, "the collection list", collection=True
            )
        except LibraryChanged:
            continue
        if version is None or col_version is None or col_version == version:
            return objects, collections, version
    raise SourceError(
        f"the library at {client.where()} kept changing while it was read "
        f"({READ_ATTEMPTS} attempts)",
        "try again when Zotero has finished syncing or importing",
    )


def read_full(client: ApiClient, warnings: list[str]) -> LibrarySnapshot:
    """The whole library from the web API, with a cursor for the next (incremental) read."""
    objects, collections, version = read_everything(client)
    live = live_objects(objects)
    cursor = None
    if version is not None:
        tree = item_tree(live)
        for key in client.kept:  # unreadable now, but its note must not look erased later
            tree.setdefault(key, [])
        cursor = WebCursor(version, tree, [c["key"] for c in collections]).encode()
    else:
        warnings.append(
            "the API sent no usable Last-Modified-Version header, so the next sync reads "
            "the whole library again"
        )
    items = items_from_api(live, live_collections(collections), client.library, warnings)
    return client.snapshot(items, frozenset(regular_keys(live)), cursor, False, warnings)


def read_local(client: ApiClient, since: str | None) -> LibrarySnapshot:
    """The whole library from the local API; no items when its digest is `since`'s."""
    objects, collections, _ = read_everything(client)
    payload = json.dumps([objects, collections], sort_keys=True, separators=(",", ":"))
    cursor = LOCAL_CURSOR_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]
    live = live_objects(objects)
    warnings: list[str] = []
    all_keys = frozenset(regular_keys(live))
    if since is not None and since == cursor:
        return client.snapshot((), all_keys, cursor, True, warnings)
    items = items_from_api(live, live_collections(collections), client.library, warnings)
    return client.snapshot(items, all_keys, cursor, False, warnings)
