"""What the API's JSON objects say about each other: kinds, parents, the trash, and the tree
of regular items → attachments → annotations the incremental reads rely on.

Every function reads the objects as they are (a missing or odd field is treated as absent);
the objects have already passed the boundary (`ApiClient.objects`).
"""

from __future__ import annotations

import re
from typing import Any

from bridge.sources.apijson import CHILD_TYPES, is_file_item

KEY_RE = re.compile(r"^[A-Z0-9]{8}$")  # Zotero object keys: 8 of [23456789A-Z]


def as_int(value: Any) -> int | None:
    """A version or count from a header or a field; None for anything else (negatives too)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def as_text(value: Any) -> str:
    """pyzotero hands `format=keys` answers over as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def data_of(obj: dict) -> dict:
    data = obj.get("data")
    return data if isinstance(data, dict) else obj


def kind_of(obj: dict) -> str:
    return str(data_of(obj).get("itemType", ""))


def parent_of(obj: dict) -> str:
    parent = data_of(obj).get("parentItem")
    return parent if isinstance(parent, str) else ""


def is_trashed(obj: dict) -> bool:
    value = data_of(obj).get("deleted")
    return value not in (None, False, 0, "", "0", "false")


def top_item(
    key: str, fetched: dict[str, dict], old_parent: dict[str, str], tree: dict[str, list[str]]
) -> str:
    """The item an object belongs to (itself, or annotation → attachment → parent, or note →
    parent); a standalone file is an item of its own."""
    for _ in range(3):
        obj = fetched.get(key)
        if obj is None:
            return key if key in tree else old_parent.get(key, "")
        if kind_of(obj) not in CHILD_TYPES or is_file_item(obj):
            return key
        key = parent_of(obj)
        if not key:
            return ""  # a standalone note, or a standalone attachment that is not a file
    return ""


def live_objects(objects: list[dict]) -> list[dict]:
    """Objects as the sqlite source sees them: no standalone or trashed notes, no trashed
    child attachments (nor their annotations). Trashed *regular* items (and standalone
    files) stay: their notes get `status: deleted-in-zotero`."""
    dropped = {
        o.get("key")
        for o in objects
        if kind_of(o) == "attachment" and is_trashed(o) and not is_file_item(o)
    }
    return [
        o
        for o in objects
        if not (kind_of(o) == "note" and (not parent_of(o) or is_trashed(o)))
        and o.get("key") not in dropped
        and not (kind_of(o) == "annotation" and parent_of(o) in dropped)
    ]


def live_collections(collections: list[dict]) -> list[dict]:
    """Collections in Zotero's trash (and below them) name no path, as in the sqlite source."""
    trashed = {c.get("key") for c in collections if is_trashed(c)}
    parents = {c.get("key"): data_of(c).get("parentCollection") for c in collections}

    def in_trash(key: Any) -> bool:
        for _ in range(100):
            if key in trashed:
                return True
            key = parents.get(key)
            if not key:
                return False
        return False

    return [c for c in collections if not in_trash(c.get("key"))]


def regular_keys(objects: list[dict]) -> list[str]:
    """Keys of the items that get notes: regular items and standalone files."""
    return [
        str(o["key"])
        for o in objects
        if (kind_of(o) and kind_of(o) not in CHILD_TYPES) or is_file_item(o)
    ]


def item_tree(objects: list[dict]) -> dict[str, list[str]]:
    """Item key → keys of its attachments, their annotations and its child notes (a
    standalone file owns its own annotations)."""
    tree: dict[str, list[str]] = {key: [] for key in regular_keys(objects)}
    owner: dict[str, str] = {key: key for key in tree}
    for obj in objects:
        if kind_of(obj) in ("attachment", "note") and parent_of(obj) in tree:
            owner[obj["key"]] = parent_of(obj)
            tree[parent_of(obj)].append(obj["key"])
    for obj in objects:
        if kind_of(obj) == "annotation" and parent_of(obj) in owner:
            tree[owner[parent_of(obj)]].append(obj["key"])
    return tree


def moved_collections(collections: list[dict], since: int) -> set[str]:
    """Collections changed since `since` (renamed, moved, trashed) and everything below them:
    the paths of their items changed although the items did not."""
    children: dict[str, list[str]] = {}
    for col in collections:
        parent = data_of(col).get("parentCollection")
        if isinstance(parent, str) and parent:
            children.setdefault(parent, []).append(col["key"])
    todo = [c["key"] for c in collections if (as_int(c.get("version")) or 0) > since]
    found: set[str] = set()
    while todo:
        key = todo.pop()
        if key not in found:
            found.add(key)
            todo.extend(children.get(key, ()))
    return found
