"""Zotero Web/Local API JSON → the typed model (`bridge.model`).

The web API, Zotero's local API (same JSON) and the bundled sample library all speak this one
format, so it is converted in exactly one place: whatever reads it gives the same notes.

Input is the flat list `GET /users/X/items` returns: regular items, attachments (their
`data.parentItem` is the item), annotations (`data.parentItem` is the attachment) and notes,
each `{key, version, library, data:{...}}`. Bare `data` dicts are accepted too. Child notes
come with their item (`Item.notes`); a standalone PDF, EPUB or snapshot (an attachment with no
parent) is an item of its own, its own one attachment; standalone notes belong to no item.

Robustness is the point of most of this code: the JSON comes from a network or a user's file,
so a missing or wrong-typed value drops only that value (or, at worst, that one object) and
leaves a human-readable line in `warnings`; it never stops the other objects from converting.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bridge.model import (
    ANNOTATION_TYPES,
    Annotation,
    Attachment,
    ChildNote,
    Creator,
    Item,
    Library,
)

__all__ = [
    "FILE_ITEM_TYPES",
    "collection_paths",
    "is_file_item",
    "extract_citation_key",
    "items_from_api",
    "normalise_timestamp",
]

CHILD_TYPES = frozenset({"attachment", "note", "annotation"})
# Keys of an attachment's `data` that are no item field in zotero.sqlite's itemData
FILE_ONLY_KEYS = frozenset(
    {"contentType", "linkMode", "filename", "md5", "mtime", "path", "charset", "note"}
)
# A standalone attachment (no parent item) of these content types is an item of its own
# (as in the sqlite source, `FILE_ITEM_TYPES` there): its annotations need a note.
FILE_ITEM_TYPES = ("application/pdf", "application/epub+zip", "text/html")

# Keys of `data` that are structure, not the text a user typed; everything else is a field.
NON_FIELD_KEYS = frozenset(
    {
        "key",
        "version",
        "itemType",
        "creators",
        "tags",
        "collections",
        "relations",
        "dateAdded",
        "dateModified",
        "deleted",
        "parentItem",
        "inPublications",
    }
)

DEFAULT_COLOR = "#ffd400"
_COLOR_RE = re.compile(r"^#[0-9a-f]{6}$")
_CITATION_KEY_RE = re.compile(r"^\s*citation key\s*:\s*(\S.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_ITEM_URI_RE = re.compile(r"/items/([A-Za-z0-9]+)/?$")
_FALSE_TEXT = frozenset({"", "0", "false", "no"})

Warnings = list[str]


# ── public helpers ───────────────────────────────────────────────────────────────────────────


def normalise_timestamp(value: str) -> str:
    """Any Zotero timestamp → `YYYY-MM-DDTHH:MM:SSZ` (UTC).

    The API sends `2024-03-12T09:15:22Z`, sqlite `2024-03-12 09:15:22` (UTC without a zone);
    both must end as the same text so sources agree. Raises ValueError for anything else.
    """
    text = value.strip()
    if not text:
        raise ValueError("empty timestamp")
    moment = datetime.fromisoformat(text.replace(" ", "T", 1))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def extract_citation_key(fields: Mapping[str, str]) -> str:
    """The citation key: the native `citationKey` field, else a `Citation Key: …` Extra line.

    Better BibTeX 7 users (and many imports) only have the Extra line, so both are honoured.
    """
    native = fields.get("citationKey", "").strip()
    if native:
        return native
    match = _CITATION_KEY_RE.search(fields.get("extra", ""))
    return match.group(1) if match else ""


def collection_paths(
    collections: Iterable[Any], warnings: Warnings | None = None
) -> dict[str, str]:
    """Collection key → full path `Parent/Child`, from API collection objects.

    Paths, not keys, are what users recognise in a note; a parent that is missing from the
    data (or a cycle) ends the path where it breaks, with a warning.
    """
    sink = warnings if warnings is not None else []
    nodes: dict[str, tuple[str, str]] = {}
    for raw in collections:
        data = _data_of(raw)
        key = data.get("key") if data is not None else None
        if not isinstance(key, str) or not key or not isinstance(data.get("name"), str):
            sink.append(f"collection {_describe(raw)}: no usable key/name; left out")
            continue
        parent = data.get("parentCollection")
        nodes[key] = (data["name"], parent if isinstance(parent, str) else "")
    return {key: _collection_path(key, nodes, sink) for key in nodes}


def items_from_api(
    objects: list[dict],
    collections: list[dict] | None = None,
    library: Library | None = None,
    warnings: Warnings | None = None,
) -> list[Item]:
    """Regular items (in input order) with their attachments and annotations.

    `collections` are the API collection objects used to turn keys into paths (unknown keys
    are left out). `library` overrides what each object's `library` says. Problems are
    appended to `warnings` as text; nothing here raises on bad data.
    """
    sink = warnings if warnings is not None else []
    paths = collection_paths(collections or [], sink)
    regular, attachments, annotations, notes = _split_objects(objects, sink)
    by_attachment = _annotations_by_attachment(annotations, attachments, sink)
    by_parent = _attachments_by_parent(attachments, by_attachment, regular, sink)
    notes_by_parent = _notes_by_parent(notes, regular)
    items: list[Item] = []
    for key, (raw, data) in regular.items():
        try:
            item = _item(key, raw, data, paths, by_parent, library, sink)
            if data.get("itemType") == "attachment":  # a standalone file is its own attachment
                own = _attachment(key, data, tuple(by_attachment.get(key, ())), sink)
                fields = {k: v for k, v in item.fields.items() if k not in FILE_ONLY_KEYS}
                item = replace(item, attachments=(own,), fields=fields)
            items.append(replace(item, notes=notes_by_parent.get(key, ())))
        except Exception as exc:  # the backstop: one broken object never stops the rest
            sink.append(f"item {key}: not converted ({type(exc).__name__}: {exc})")
    return items


def _notes_by_parent(notes: Split, regular: Split) -> dict[str, tuple[ChildNote, ...]]:
    """Child notes not in the trash by parent item key, oldest first (as the sqlite source
    orders them: date added, then key). Standalone notes belong to no item."""
    grouped: dict[str, list[tuple[str, ChildNote]]] = {}
    for key, (_raw, data) in notes.items():
        parent = data.get("parentItem")
        if not isinstance(parent, str) or parent not in regular or _truthy(data.get("deleted")):
            continue
        html = data.get("note") if isinstance(data.get("note"), str) else ""
        added = _sortable_date(data.get("dateAdded"))
        note = ChildNote(key, html, added, _sortable_date(data.get("dateModified")))
        grouped.setdefault(parent, []).append((added, note))
    return {
        parent: tuple(note for _, note in sorted(found, key=lambda pair: (pair[0], pair[1].key)))
        for parent, found in grouped.items()
    }


def is_file_item(raw: Any) -> bool:
    """Whether an API object is a standalone file: an attachment with no parent item, of
    one of `FILE_ITEM_TYPES`."""
    data = _data_of(raw)
    return (
        data is not None
        and data.get("itemType") == "attachment"
        and not data.get("parentItem")
        and data.get("contentType") in FILE_ITEM_TYPES
    )


# ── sorting the flat list ────────────────────────────────────────────────────────────────────


def _data_of(raw: Any) -> dict | None:
    """The `data` dict of an API object, or the object itself when it is a bare data dict."""
    if not isinstance(raw, dict):
        return None
    data = raw.get("data")
    if isinstance(data, dict):
        return data
    return raw if "itemType" in raw or "name" in raw else None


def _describe(raw: Any) -> str:
    """A short name for an object in a warning (its key when there is one)."""
    if isinstance(raw, dict) and isinstance(raw.get("key"), str):
        return raw["key"]
    return repr(raw)[:40]


Split = dict[str, tuple[dict, dict]]


def _split_objects(objects: Iterable[Any], sink: Warnings) -> tuple[Split, Split, Split, Split]:
    """Regular items (standalone files among them), attachments, annotations and notes by
    key; garbage is dropped."""
    regular: Split = {}
    attachments: Split = {}
    annotations: Split = {}
    notes: Split = {}
    if not isinstance(objects, list | tuple):
        sink.append(f"expected a list of API objects, got {type(objects).__name__}")
        return regular, attachments, annotations, notes
    targets = {"attachment": attachments, "annotation": annotations, "note": notes}
    for raw in objects:
        data = _data_of(raw)
        key = (data.get("key") or raw.get("key")) if data is not None else None
        item_type = data.get("itemType") if data is not None else None
        if not isinstance(key, str) or not key or not isinstance(item_type, str) or not item_type:
            sink.append(f"object {_describe(raw)}: no usable key/itemType; left out")
            continue
        target = targets.get(item_type, regular)
        if key in target:
            sink.append(f"{item_type} {key}: appears twice; the later copy wins")
        target[key] = (raw, data)
        if is_file_item(data):
            regular[key] = (raw, data)
    return regular, attachments, annotations, notes


def _annotations_by_attachment(
    annotations: Split, attachments: Split, sink: Warnings
) -> dict[str, list[Annotation]]:
    """Converted annotations grouped by attachment key, each group in reading order."""
    grouped: dict[str, list[Annotation]] = {}
    for key, (_raw, data) in annotations.items():
        parent = data.get("parentItem")
        if not isinstance(parent, str) or parent not in attachments:
            sink.append(f"annotation {key}: its attachment {parent!s} is not in the data; left out")
            continue
        try:
            annotation = _annotation(key, parent, data, sink)
        except Exception as exc:
            sink.append(f"annotation {key}: not converted ({type(exc).__name__}: {exc})")
            continue
        if annotation is not None:
            grouped.setdefault(parent, []).append(annotation)
    for group in grouped.values():
        group.sort(key=lambda a: (a.sort_index, a.key))
    return grouped


def _sortable_date(value: object) -> str:
    try:
        return normalise_timestamp(value) if isinstance(value, str) else ""
    except ValueError:
        return ""


def _attachments_by_parent(
    attachments: Split,
    annotations: dict[str, list[Annotation]],
    regular: Split,
    sink: Warnings,
) -> dict[str, list[Attachment]]:
    """Converted attachments grouped by parent item key, each group by (dateAdded, key).

    The order the sqlite source uses, so that every source lists an item's files the same way.
    Standalone attachments (no parent) are not regular items and are dropped silently.
    """
    grouped: dict[str, list[Attachment]] = {}
    added: dict[str, str] = {}
    for key, (_raw, data) in attachments.items():
        parent = data.get("parentItem")
        if not parent:
            continue
        if not isinstance(parent, str) or parent not in regular:
            sink.append(f"attachment {key}: its parent item {parent!s} is not in the data")
            continue
        try:
            attachment = _attachment(key, data, tuple(annotations.get(key, ())), sink)
        except Exception as exc:
            sink.append(f"attachment {key}: not converted ({type(exc).__name__}: {exc})")
            continue
        grouped.setdefault(parent, []).append(attachment)
        added[key] = _sortable_date(data.get("dateAdded"))
    for group in grouped.values():
        group.sort(key=lambda a: (added[a.key], a.key))
    return grouped


# ── one object each ──────────────────────────────────────────────────────────────────────────


def _item(
    key: str,
    raw: dict,
    data: dict,
    paths: Mapping[str, str],
    attachments: Mapping[str, list[Attachment]],
    library: Library | None,
    sink: Warnings,
) -> Item:
    where = f"item {key}"
    fields = _fields(data, where, sink)
    return Item(
        key=key,
        item_type=data["itemType"],
        fields=fields,
        creators=_creators(data, where, sink),
        tags=_tags(data, where, sink),
        collections=_collections(data, paths, where, sink),
        attachments=tuple(attachments.get(key, ())),
        related=_related(data, key, where, sink),
        citation_key=extract_citation_key(fields),
        trashed=_truthy(data.get("deleted")),
        date_added=_timestamp(data, "dateAdded", where, sink),
        date_modified=_timestamp(data, "dateModified", where, sink),
        library=library or _library(raw, where, sink),
        version=_version(raw, data, where, sink),
    )


def _attachment(
    key: str, data: dict, annotations: tuple[Annotation, ...], sink: Warnings
) -> Attachment:
    where = f"attachment {key}"
    link_mode = _text(data, "linkMode", where, sink)
    path = _text(data, "path", where, sink)
    filename = _text(data, "filename", where, sink)
    if not path and filename and link_mode.startswith("imported"):
        path = f"storage:{filename}"  # what zotero.sqlite stores, so both sources agree
    return Attachment(
        key=key,
        title=_text(data, "title", where, sink),
        content_type=_text(data, "contentType", where, sink),
        link_mode=link_mode,
        path=path,
        annotations=annotations,
    )


def _annotation(key: str, attachment_key: str, data: dict, sink: Warnings) -> Annotation | None:
    where = f"annotation {key}"
    kind = _text(data, "annotationType", where, sink)
    if kind not in ANNOTATION_TYPES:
        sink.append(f"{where}: unknown annotationType {kind!r}; left out")
        return None
    return Annotation(
        key=key,
        attachment_key=attachment_key,
        annotation_type=kind,
        text=_text(data, "annotationText", where, sink),
        comment=_text(data, "annotationComment", where, sink),
        color=_color(data, where, sink),
        page_label=_text(data, "annotationPageLabel", where, sink),
        sort_index=_text(data, "annotationSortIndex", where, sink),
        position=_position(data, where, sink),
        tags=_tags(data, where, sink),
        date_added=_timestamp(data, "dateAdded", where, sink),
        date_modified=_timestamp(data, "dateModified", where, sink),
    )


# ── one value each ───────────────────────────────────────────────────────────────────────────


def _text(data: Mapping[str, Any], name: str, where: str, sink: Warnings) -> str:
    """A text value; numbers are taken as their text, other types are dropped with a warning."""
    value = data.get(name)
    if value is None or isinstance(value, bool):
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    sink.append(f"{where}: {name} should be text, got {type(value).__name__}; ignored")
    return ""


def _list(data: Mapping[str, Any], name: str, where: str, sink: Warnings) -> list:
    value = data.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    sink.append(f"{where}: {name} should be a list, got {type(value).__name__}; ignored")
    return []


def _fields(data: Mapping[str, Any], where: str, sink: Warnings) -> dict[str, str]:
    """Every non-empty text field, under Zotero's field name, exactly as typed."""
    fields: dict[str, str] = {}
    for name in data:
        if name in NON_FIELD_KEYS or not isinstance(name, str):
            continue
        text = _text(data, name, where, sink)
        if text.strip():
            fields[name] = text
    return fields


def _creators(data: Mapping[str, Any], where: str, sink: Warnings) -> tuple[Creator, ...]:
    creators = []
    for index, raw in enumerate(_list(data, "creators", where, sink)):
        creator = _creator(raw, f"{where} creator {index}", sink)
        if creator is not None:
            creators.append(creator)
    return tuple(creators)


def _creator(raw: Any, where: str, sink: Warnings) -> Creator | None:
    """`{creatorType, firstName, lastName}` or the single-field `{creatorType, name}`."""
    if not isinstance(raw, dict):
        sink.append(f"{where}: expected an object, got {type(raw).__name__}; left out")
        return None
    creator_type = _text(raw, "creatorType", where, sink) or "author"
    if "name" in raw:
        name = _text(raw, "name", where, sink).strip()
        if name:
            return Creator(creator_type, "", name, name_only=True)
    first = _text(raw, "firstName", where, sink).strip()
    last = _text(raw, "lastName", where, sink).strip()
    if not (first or last):
        sink.append(f"{where}: no name; left out")
        return None
    return Creator(creator_type, first, last)


def _tags(data: Mapping[str, Any], where: str, sink: Warnings) -> tuple[str, ...]:
    """Tag names sorted, each once (`{tag, type}` objects or bare strings).

    Sorted like the sqlite source, so both sources give identical items and notes."""
    seen: dict[str, None] = {}
    for raw in _list(data, "tags", where, sink):
        name = raw.get("tag") if isinstance(raw, dict) else raw
        if not isinstance(name, str):
            sink.append(f"{where}: tag {raw!r} is not text; left out")
            continue
        if name.strip():
            seen.setdefault(name.strip(), None)
    return tuple(sorted(seen))


def _collections(
    data: Mapping[str, Any], paths: Mapping[str, str], where: str, sink: Warnings
) -> tuple[str, ...]:
    """Full collection paths, sorted; keys without a known collection are left out."""
    found = set()
    for key in _list(data, "collections", where, sink):
        if not isinstance(key, str):
            sink.append(f"{where}: collection {key!r} is not a key; left out")
        elif key in paths:
            found.add(paths[key])
    return tuple(sorted(found))


def _related(data: Mapping[str, Any], own_key: str, where: str, sink: Warnings) -> tuple[str, ...]:
    """Keys of `dc:relation` items (one URI or a list of them), sorted, without the item itself."""
    relations = data.get("relations") or {}
    if not isinstance(relations, dict):
        sink.append(f"{where}: relations should be an object; ignored")
        return ()
    uris = relations.get("dc:relation") or []
    if isinstance(uris, str):
        uris = [uris]
    if not isinstance(uris, list):
        sink.append(f"{where}: dc:relation should be a URI or a list of URIs; ignored")
        return ()
    keys = set()
    for uri in uris:
        match = _ITEM_URI_RE.search(uri) if isinstance(uri, str) else None
        if match is None:
            sink.append(f"{where}: related {uri!r} is not an item URI; left out")
        elif match.group(1) != own_key:
            keys.add(match.group(1))
    return tuple(sorted(keys))


def _timestamp(data: Mapping[str, Any], name: str, where: str, sink: Warnings) -> str:
    text = _text(data, name, where, sink)
    if not text:
        return ""
    try:
        return normalise_timestamp(text)
    except ValueError:
        sink.append(f"{where}: {name} {text!r} is not a timestamp; ignored")
        return ""


def _color(data: Mapping[str, Any], where: str, sink: Warnings) -> str:
    color = _text(data, "annotationColor", where, sink).strip().lower()
    if not color:
        return DEFAULT_COLOR
    if not _COLOR_RE.match(color):
        sink.append(f"{where}: annotationColor {color!r} is not #rrggbb; using {DEFAULT_COLOR}")
        return DEFAULT_COLOR
    return color


def _position(data: Mapping[str, Any], where: str, sink: Warnings) -> str:
    """Zotero's position JSON as text (some clients hand it over already decoded)."""
    value = data.get("annotationPosition")
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return _text(data, "annotationPosition", where, sink)


def _truthy(value: Any) -> bool:
    """`deleted` arrives as true, 1 or "1"; text such as "0"/"false" means not deleted."""
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


def _library(raw: Mapping[str, Any], where: str, sink: Warnings) -> Library:
    info = raw.get("library")
    if not isinstance(info, dict) or info.get("type", "user") == "user":
        return Library()
    group_id = info.get("id")
    if info.get("type") == "group" and isinstance(group_id, int) and not isinstance(group_id, bool):
        return Library("group", group_id)
    sink.append(f"{where}: library {info!r} is not understood; taken as the user library")
    return Library()


def _version(raw: Mapping[str, Any], data: Mapping[str, Any], where: str, sink: Warnings) -> int:
    value = raw.get("version", data.get("version", 0))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    sink.append(f"{where}: version {value!r} is not a number; 0 used")
    return 0


def _collection_path(key: str, nodes: Mapping[str, tuple[str, str]], sink: Warnings) -> str:
    parts: list[str] = []
    seen: set[str] = set()
    current = key
    while current:
        if current in seen:
            sink.append(f"collection {key}: parent cycle through {current}; path cut there")
            break
        if current not in nodes:
            sink.append(f"collection {key}: parent collection {current} is not in the data")
            break
        seen.add(current)
        name, current = nodes[current]
        parts.append(name)
    return "/".join(reversed(parts))
