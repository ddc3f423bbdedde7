"""Incremental web reads: what changed since a cursor (`WebCursor`).

A sync costs one request when nothing changed (`If-Modified-Since-Version` → 304), and
otherwise: changed keys (`format=versions`), `/deleted` (a 409 falls back to comparing with
`format=keys`), the collections, and the changed objects plus the full subtree of every
regular item they belong to (an edited or deleted highlight re-renders its paper). The
cursor's tree is what makes a deleted annotation findable: `/deleted` names only its key.
"""

from __future__ import annotations

from typing import Any

from bridge.model import LibrarySnapshot
from bridge.sources.api.answers import shape_problem, short
from bridge.sources.api.client import ApiClient
from bridge.sources.api.cursor import LibraryChanged, WebCursor
from bridge.sources.api.objects import (
    KEY_RE,
    as_int,
    item_tree,
    kind_of,
    live_collections,
    live_objects,
    moved_collections,
    parent_of,
    top_item,
)
from bridge.sources.api.paging import KEY_BATCH, fetch_by_key, listing
from bridge.sources.api.transport import HttpFailure
from bridge.sources.apijson import CHILD_TYPES, is_file_item, items_from_api


def read_changes(client: ApiClient, cursor: WebCursor) -> LibrarySnapshot | None:
    """What changed since the cursor; None when only a full read can tell."""
    probe = _changed_versions(client, cursor.version)
    if probe is None:  # 304: the library version has not moved
        return client.snapshot((), frozenset(cursor.tree), cursor.encode(), True, [])
    changed, version = probe
    collections, _ = listing(client, client.zot.collections, "the collection list", collection=True)
    current = {c["key"]: c for c in collections}
    if set(cursor.collections) - current.keys():
        return None  # a collection was deleted: its former members cannot be listed
    deleted = _deleted_keys(client, cursor)
    tree = {k: list(v) for k, v in cursor.tree.items()}
    fetched = _fetch_changed(client, cursor.version, set(changed))
    affected = _affected(client, cursor, fetched, deleted)
    affected |= _members(client, moved_collections(collections, cursor.version))
    affected -= deleted
    objects = _subtrees(client, affected, tree, fetched)
    for key in deleted:
        tree.pop(key, None)
    known_children = cursor.child_parents()
    for key in client.kept - deleted:  # unreadable now; its note must not look erased
        if key not in known_children:
            tree.setdefault(key, [])
    warnings: list[str] = []
    if version is None:
        version = cursor.version  # ask again from where we know: nothing is skipped
        warnings.append(
            "the API sent no usable Last-Modified-Version header; changes are read again next time"
        )
    items = items_from_api(objects, live_collections(collections), client.library, warnings)
    new_cursor = WebCursor(version, tree, list(current))
    return client.snapshot(items, frozenset(tree), new_cursor.encode(), True, warnings)


def _changed_versions(client: ApiClient, since: int) -> tuple[dict[str, Any], int | None] | None:
    """Keys → versions of every object changed since `since`, or None for a 304.

    Raises `LibraryChanged` when the library's version went *back* (a restored or
    replaced library, another server behind the same URL): only a full read is safe.
    """
    response = client.get(
        f"{client.prefix}/items",
        {"since": since, "format": "versions", "includeTrashed": 1},
        {"If-Modified-Since-Version": str(since)},
    )
    version = as_int(response.headers.get("Last-Modified-Version"))
    if version is not None and version < since:
        raise LibraryChanged
    if response.status_code == 304:
        return None
    what = "the list of changed items"
    body = client.json(response, what)
    if not isinstance(body, dict):
        raise client.unusable(what, shape_problem(body, "a JSON object"), response)
    changed = {}
    for key, object_version in body.items():
        if KEY_RE.match(key):
            changed[key] = object_version
        else:
            client.skip(f"{what} names {short(key)}, which is not a Zotero key", None)
    return changed, version


def _deleted_keys(client: ApiClient, cursor: WebCursor) -> set[str]:
    """Item keys erased since the cursor: `/deleted`, or a full key comparison on 409."""
    what = "the list of deleted objects"
    try:
        body = client.call(client.zot.deleted, what, since=cursor.version)
    except HttpFailure as exc:
        if exc.status != 409:
            raise
        client.reset()
    else:
        listed = body.get("items", []) if isinstance(body, dict) else None
        if not isinstance(listed, list):
            raise client.unusable(what, shape_problem(body, "a JSON object with `items`"))
        deleted = set()
        for key in listed:
            if isinstance(key, str) and KEY_RE.match(key):
                deleted.add(key)
            else:
                client.skip(f"{what} names {short(key)}, which is not a Zotero key", None)
        return deleted
    existing = client.keys(
        client.call(client.zot.items, "the list of all item keys", format="keys",
                    includeTrashed=1, limit=None),
        "the list of all item keys",
    )  # fmt: skip
    known = set(cursor.tree) | set(cursor.child_parents())
    return known - existing


def _fetch_changed(client: ApiClient, since: int, keys: set[str]) -> dict[str, dict]:
    """The changed objects: by key when few, else as one `since=` listing (100 a page
    instead of 50); a listing torn by a concurrent change falls back to keys."""
    if len(keys) > 2 * KEY_BATCH:
        try:
            objects, _ = listing(
                client, client.zot.items, "the list of changed items", since=since, includeTrashed=1
            )
            return {o["key"]: o for o in objects}
        except LibraryChanged:
            client.reset()
    return fetch_by_key(client, keys)


def _affected(
    client: ApiClient, cursor: WebCursor, fetched: dict[str, dict], deleted: set[str]
) -> set[str]:
    """Regular items whose note may change: changed items and the parents of changed or
    deleted attachments/annotations (annotation → attachment → parent)."""
    old_parent = cursor.child_parents()
    affected = {old_parent[k] for k in deleted if k in old_parent}
    unknown = {
        parent_of(obj)
        for obj in fetched.values()
        if kind_of(obj) == "annotation" and parent_of(obj) not in fetched
    }
    unknown -= set(old_parent) | set(cursor.tree) | {""}
    fetched.update(fetch_by_key(client, unknown))
    for key in list(fetched):
        top = top_item(key, fetched, old_parent, cursor.tree)
        if top:
            affected.add(top)
        if key in old_parent:  # moved away from (or trashed under) its old parent
            affected.add(old_parent[key])
    return affected


def _members(client: ApiClient, collection_keys: set[str]) -> set[str]:
    """Top-level item keys in these collections (renamed or moved: their paths changed)."""
    members: set[str] = set()
    for key in sorted(collection_keys):
        what = f"the items of collection {key}"
        answer = client.call(
            client.zot.collection_items_top, what, key, format="keys", includeTrashed=1,
            limit=None,
        )  # fmt: skip
        members |= client.keys(answer, what)
    return members


def _subtrees(
    client: ApiClient, affected: set[str], tree: dict[str, list[str]], fetched: dict[str, dict]
) -> list[dict]:
    """Objects of the affected items with all their attachments, annotations and notes; `tree`
    is updated in place (an affected item that no longer exists leaves it)."""
    wanted = set(affected)
    for key in affected:
        wanted.update(tree.get(key, ()))
    fetched.update(fetch_by_key(client, wanted - fetched.keys()))
    parents = {
        k: fetched[k]
        for k in affected
        if k in fetched and (kind_of(fetched[k]) not in CHILD_TYPES or is_file_item(fetched[k]))
    }
    kids = {
        o["key"]: o
        for o in fetched.values()
        if kind_of(o) in ("attachment", "annotation", "note") and o["key"] not in parents
    }
    live = live_objects([*parents.values(), *kids.values()])
    children = item_tree(live)
    for key in affected:
        if key in parents:
            tree[key] = children[key]
        elif key not in client.kept:  # gone (a kept key only came back unreadable)
            tree.pop(key, None)
    keep = set(parents) | {c for key in parents for c in children[key]}
    return [o for o in live if o["key"] in keep]
