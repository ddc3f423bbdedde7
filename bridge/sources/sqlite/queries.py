"""SQL that turns one library into grouped Python rows (`_Rows`): one scan per table for a
whole read, lookups by itemID (in chunks) for the few items a cursor or stream read builds.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field

from bridge.model import Creator
from bridge.sources.sqlite.schema import DATE_FIELDS, _has_table, _LibraryInfo, _Regular, field_text

IN_CHUNK = 900  # itemIDs per `IN (...)`: below SQLite's oldest limit of 999 parameters


ANNOTATION_COLUMNS = (
    "itemID, parentItemID, type, text, comment, color, pageLabel, sortIndex, position"
)


@dataclass
class _Rows:
    """Raw rows of one library, grouped by itemID; built with one query per table."""

    items: dict[int, tuple[str, str, str, str, str, int]] = field(default_factory=dict)
    fields: dict[int, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))
    creators: dict[int, list[Creator]] = field(default_factory=lambda: defaultdict(list))
    tags: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    collections: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    collection_paths: dict[int, str] = field(default_factory=dict)
    collection_times: dict[int, str] = field(default_factory=dict)
    collection_parents: dict[int, int | None] = field(default_factory=dict)
    attachments: dict[int, tuple[int | None, int | None, str, str]] = field(default_factory=dict)
    annotations: dict[int, tuple] = field(default_factory=dict)
    # itemNotes rows (child notes, and the notes attachments carry): itemID → (parent, HTML);
    # the HTML is None until `_query_details` reads it
    notes: dict[int, tuple[int | None, str | None]] = field(default_factory=dict)
    relations: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    trashed: dict[int, str] = field(default_factory=dict)


def _query_rows(conn: sqlite3.Connection, library_id: int, *, details: bool = True) -> _Rows:
    """One scan per table, filtered to the library in Python. Scanning in rowid order and
    looking names up in small dicts beats joining through the `items` index by ~5x.

    With `details=False` only the light tables are read (items, collections, attachments,
    annotations' parents and types, trash): enough to decide what changed since a cursor.
    `_query_details` then adds fields, creators, tags, relations and annotation contents."""
    rows = _Rows()
    q = conn.execute
    types = dict(q("SELECT itemTypeID, typeName FROM itemTypesCombined"))
    for item_id, type_id, key, added, modified, client_modified, version in q(
        "SELECT itemID, itemTypeID, key, dateAdded, dateModified, clientDateModified, version "
        "FROM items WHERE +libraryID = ?",
        (library_id,),
    ):
        type_name = types.get(type_id, str(type_id))
        rows.items[item_id] = (key, type_name, added, modified, client_modified, version or 0)
    mine = rows.items.keys()
    _query_collections(conn, library_id, rows)
    _query_children(conn, rows, contents=details)
    for item_id, when in q("SELECT itemID, dateDeleted FROM deletedItems"):
        if item_id in mine:
            rows.trashed[item_id] = str(when or "")
    if details:
        _query_details(conn, rows, None, annotations=False)
    return rows


def _chunks(ids: Iterable[int]) -> Iterable[tuple[str, list[int]]]:
    """`(placeholders, ids)` in chunks below SQLite's oldest limit on bound parameters."""
    ordered = sorted(ids)
    for start in range(0, len(ordered), IN_CHUNK):
        part = ordered[start : start + IN_CHUNK]
        yield ",".join("?" * len(part)), part


def _query_details(
    conn: sqlite3.Connection,
    rows: _Rows,
    ids: Collection[int] | None,
    *,
    annotations: bool = True,
    only_fields: Collection[str] | None = None,
) -> None:
    """Fields, creators, tags, relations and annotation contents: of every item of the library
    (`ids` None: one scan per table), or only of `ids` (looked up by itemID, in chunks).
    `only_fields`: these fields alone, and no relations (`NAMING_FIELDS`, for `heads`)."""
    mine = rows.items.keys() if ids is None else frozenset(ids) & rows.items.keys()
    if ids is None:
        parts: Iterable[tuple[str, list[int]]] = [("", [])]
    else:
        parts = list(_chunks(mine))
    select = _Select(conn, parts, whole=ids is None)
    _query_fields(conn, rows, mine, select, only_fields)
    _query_creators(conn, rows, mine, None if ids is None else parts)
    _query_tags(conn, rows, mine, select)
    relations = select(
        "SELECT r.itemID, r.object FROM itemRelations r "
        "JOIN relationPredicates p ON p.predicateID = r.predicateID "
        "WHERE p.predicate = 'dc:relation' AND {where}",
        "r.itemID",
    )
    for item_id, uri in () if only_fields is not None else relations:
        if item_id in mine:
            rows.relations[item_id].append(uri)
    if not annotations:  # `_query_children` read them whole
        return
    for row in select(
        f"SELECT {ANNOTATION_COLUMNS} FROM itemAnnotations WHERE {{where}}", "itemID"
    ):
        if row[0] in mine:
            rows.annotations[row[0]] = row[1:]
    for item_id, parent, html in select(
        "SELECT itemID, parentItemID, note FROM itemNotes WHERE {where}", "itemID"
    ):
        if item_id in mine:
            rows.notes[item_id] = (parent, html or "")


@dataclass(frozen=True)
class _Select:
    """`select(sql, where)`: the rows of `sql` with `{where}` filled in as `where IN (...)`
    for each chunk of `parts`, or as `1` when the tables are read `whole`."""

    conn: sqlite3.Connection
    parts: Iterable[tuple[str, list[int]]]
    whole: bool

    def __call__(self, sql: str, where: str) -> Iterable[tuple]:
        for marks, part in self.parts:
            yield from self.conn.execute(
                sql.format(where=f"{where} IN ({marks})" if not self.whole else "1"), part
            )


def _query_fields(
    conn: sqlite3.Connection,
    rows: _Rows,
    mine: Collection[int],
    select: _Select,
    only_fields: Collection[str] | None,
) -> None:
    """Item fields, as the user typed them (`field_text`); `only_fields`: these alone."""
    field_names = dict(conn.execute("SELECT fieldID, fieldName FROM fieldsCombined"))
    special = DATE_FIELDS | {"accessDate"}
    some = ""
    if only_fields is not None:
        wanted = [str(fid) for fid, name in field_names.items() if name in only_fields]
        some = f" AND d.fieldID IN ({','.join(wanted) or 'NULL'})"
    # In rowid order either way: the order of an item's fields shows in its content hash.
    for item_id, field_id, value in select(
        "SELECT d.itemID, d.fieldID, v.value FROM itemData d "
        "JOIN itemDataValues v ON v.valueID = d.valueID WHERE {where}"
        + some.replace("{", "{{").replace("}", "}}")
        + " ORDER BY d.rowid",
        "d.itemID",
    ):
        if item_id in mine and value is not None and value != "":
            name = field_names.get(field_id, str(field_id))
            text = field_text(name, value) if name in special else str(value)
            rows.fields[item_id][name] = text


def _query_tags(
    conn: sqlite3.Connection, rows: _Rows, mine: Collection[int], select: _Select
) -> None:
    """Tag names by item: the whole (small) `tags` table in a dict, or joined by itemID."""
    if select.whole:
        tag_names = dict(conn.execute("SELECT tagID, name FROM tags"))
        for item_id, tag_id in conn.execute("SELECT itemID, tagID FROM itemTags"):
            if item_id in mine and tag_id in tag_names:
                rows.tags[item_id].append(tag_names[tag_id])
        return
    for item_id, name in select(
        "SELECT it.itemID, t.name FROM itemTags it JOIN tags t ON t.tagID = it.tagID WHERE {where}",
        "it.itemID",
    ):
        rows.tags[item_id].append(name)


def _query_creators(
    conn: sqlite3.Connection,
    rows: _Rows,
    mine: Collection[int],
    parts: list[tuple[str, list[int]]] | None,
) -> None:
    """Creators in `orderIndex` order; fieldMode 1 is a single-field name kept in lastName."""
    creator_types = dict(conn.execute("SELECT creatorTypeID, creatorType FROM creatorTypes"))
    found: Iterable[tuple] = ()
    if parts is None:
        people: dict[int, tuple] = {
            creator_id: (first, last, mode)
            for creator_id, first, last, mode in conn.execute(
                "SELECT creatorID, firstName, lastName, fieldMode FROM creators"
            )
        }
        found = (
            (item_id, type_id, *people[creator_id])
            for item_id, creator_id, type_id in conn.execute(
                "SELECT itemID, creatorID, creatorTypeID FROM itemCreators "
                "ORDER BY itemID, orderIndex"
            )
            if item_id in mine and creator_id in people
        )
    else:
        found = (
            row
            for marks, part in parts
            for row in conn.execute(
                "SELECT ic.itemID, ic.creatorTypeID, c.firstName, c.lastName, c.fieldMode "
                "FROM itemCreators ic JOIN creators c ON c.creatorID = ic.creatorID "
                f"WHERE ic.itemID IN ({marks}) ORDER BY ic.itemID, ic.orderIndex",
                part,
            )
        )
    for item_id, type_id, first, last, mode in found:
        name_only = mode == 1
        creator_type = creator_types.get(type_id, str(type_id))
        rows.creators[item_id].append(
            Creator(creator_type, "" if name_only else (first or ""), last or "", name_only)
        )


def _query_collections(conn: sqlite3.Connection, library_id: int, rows: _Rows) -> None:
    """Collections as full paths, and which items each holds."""
    _query_collection_tree(conn, library_id, rows)
    for cid, item_id in conn.execute(
        "SELECT ci.collectionID, ci.itemID FROM collectionItems ci "
        "JOIN collections c ON c.collectionID = ci.collectionID WHERE c.libraryID = ?",
        (library_id,),
    ):
        rows.collections[item_id].append(cid)


def _query_collection_tree(conn: sqlite3.Connection, library_id: int, rows: _Rows) -> None:
    """Collections as full paths; collections in Zotero's trash (and below them) are left out."""
    found = conn.execute(
        "SELECT collectionID, collectionName, parentCollectionID, clientDateModified "
        "FROM collections WHERE libraryID = ?",
        (library_id,),
    ).fetchall()
    trashed: set[int] = set()
    if _has_table(conn, "deletedCollections"):
        trashed = {cid for (cid,) in conn.execute("SELECT collectionID FROM deletedCollections")}
    names = {cid: name for cid, name, _, _ in found}
    for cid, _, parent, when in found:
        rows.collection_parents[cid] = parent
        rows.collection_times[cid] = str(when or "")

    def path_of(cid: int, depth: int = 0) -> str | None:
        parent = rows.collection_parents.get(cid)
        if cid in trashed or depth > 100:
            return None
        if parent is None or parent not in names:
            return names[cid]
        above = path_of(parent, depth + 1)
        return None if above is None else f"{above}/{names[cid]}"

    for cid in names:
        path = path_of(cid)
        if path is not None:
            rows.collection_paths[cid] = path


def _query_children(conn: sqlite3.Connection, rows: _Rows, *, contents: bool) -> None:
    """Attachments and annotations of the library, keyed by their own itemID. Without
    `contents` only the annotations' parents and types are read (`_query_details` adds the
    rest for the annotations that are built)."""
    mine = rows.items.keys()
    for item_id, parent, mode, content_type, path in conn.execute(
        "SELECT itemID, parentItemID, linkMode, contentType, path FROM itemAttachments"
    ):
        if item_id in mine:
            rows.attachments[item_id] = (parent, mode, content_type or "", path or "")
    columns = ANNOTATION_COLUMNS if contents else "itemID, parentItemID, type"
    for row in conn.execute(f"SELECT {columns} FROM itemAnnotations"):
        if row[0] in mine:
            rows.annotations[row[0]] = row[1:]
    note = "note" if contents else "NULL"
    for item_id, parent, html in conn.execute(
        f"SELECT itemID, parentItemID, {note} FROM itemNotes"
    ):
        if item_id in mine:
            rows.notes[item_id] = (parent, html if html is None else str(html))


def _under(parents: dict[int, int | None], cid: int, moved: set[int]) -> bool:
    """Whether collection `cid` is one of `moved` or inside one."""
    for _ in range(100):
        if cid in moved:
            return True
        parent = parents.get(cid)
        if parent is None:
            return False
        cid = parent
    return False


def _keys_by_id(conn: sqlite3.Connection, library_id: int) -> dict[int, str]:
    return dict(conn.execute("SELECT itemID, key FROM items WHERE +libraryID = ?", (library_id,)))


def _read_bbt(
    conn: sqlite3.Connection, library_id: int, keys_by_id: Callable[[], dict[int, str]]
) -> dict:
    """Better BibTeX keys by item key: BBT 7's `citationkey(itemID, itemKey, libraryID,
    citationKey, pinned)` table, else the LokiJS document older BBTs keep in the table
    `better-bibtex`, row `better-bibtex.citekey`. Matched on (libraryID, itemKey) where the
    rows have them — itemIDs are only meaningful inside one database."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(citationkey)")}
    if columns:
        if {"itemKey", "libraryID"} <= columns:
            rows = conn.execute("SELECT itemKey, libraryID, citationKey, itemID FROM citationkey")
        else:
            rows = conn.execute("SELECT NULL, NULL, citationKey, itemID FROM citationkey")
        return _bbt_keys_of(rows, library_id, keys_by_id)
    if _has_table(conn, "better-bibtex"):
        return _bbt_keys_of(_loki_rows(conn), library_id, keys_by_id)
    raise LookupError("it has neither a citationkey table nor Better BibTeX's older storage")


def _loki_rows(conn: sqlite3.Connection) -> list[tuple]:
    """(itemKey, libraryID, citekey, itemID) from BBT < 7's LokiJS document
    `{"data": [{"itemID", "libraryID", "itemKey", "citekey", "pinned"}, …]}`."""
    found = conn.execute(
        'SELECT data FROM "better-bibtex" WHERE name = ?', ("better-bibtex.citekey",)
    ).fetchone()
    if found is None:
        raise LookupError("its better-bibtex table holds no better-bibtex.citekey row")
    try:
        document = json.loads(found[0])
    except (TypeError, ValueError) as exc:
        raise LookupError(f"its better-bibtex.citekey row is not JSON ({exc})") from None
    records = document.get("data") if isinstance(document, dict) else None
    if not isinstance(records, list):
        raise LookupError("its better-bibtex.citekey document has no data list")
    return [
        (r.get("itemKey"), r.get("libraryID"), r.get("citekey"), r.get("itemID"))
        for r in records
        if isinstance(r, dict)
    ]


def _bbt_keys_of(
    rows: Iterable[tuple], library_id: int, keys_by_id: Callable[[], dict[int, str]]
) -> dict[str, str]:
    """Item key → citation key from (itemKey, libraryID, citekey, itemID) rows: by itemKey
    and libraryID when a row has them, else by itemID (the library's own items only)."""
    result: dict[str, str] = {}
    keys: dict[int, str] | None = None
    for key, lib, citekey, item_id in rows:
        if not isinstance(citekey, str) or not citekey.strip():
            continue
        if isinstance(key, str) and key:
            if lib is None or lib == library_id:
                result[key] = citekey.strip()
            continue
        if keys is None:
            keys = keys_by_id()
        if item_id in keys:
            result[keys[item_id]] = citekey.strip()
    return result


def _query_family(
    conn: sqlite3.Connection,
    library_id: int,
    regular: _Regular,
    rows: _Rows,
    ids: set[int],
    *,
    children: bool = True,
) -> set[int]:
    """Light rows (as `_query_rows(details=False)` has them) of the items `ids`, their
    attachments that are not in the trash and those attachments' annotations — what
    `_Builder.item` needs besides details. Returns all their itemIDs. Without `children`,
    only the items' own rows (what `_Builder.item(children=False)` needs)."""
    q = conn.execute
    family = _query_children_by_parent(conn, library_id, rows, ids, children=children)
    for marks, part in _chunks(family):
        for item_id, type_id, key, added, modified, client_modified, version in q(
            "SELECT itemID, itemTypeID, key, dateAdded, dateModified, clientDateModified, "
            f"version FROM items WHERE itemID IN ({marks})",
            part,
        ):
            type_name = regular.types.get(type_id, str(type_id))
            rows.items[item_id] = (key, type_name, added, modified, client_modified, version or 0)
    for marks, part in _chunks(ids):
        for cid, item_id in q(
            "SELECT ci.collectionID, ci.itemID FROM collectionItems ci "
            "JOIN collections c ON c.collectionID = ci.collectionID "
            f"WHERE ci.itemID IN ({marks}) AND +c.libraryID = ?",
            [*part, library_id],
        ):
            rows.collections[item_id].append(cid)
    return family


def _query_children_by_parent(
    conn: sqlite3.Connection, library_id: int, rows: _Rows, ids: set[int], *, children: bool
) -> set[int]:
    """`_query_family`'s first step: the trash state of `ids` and (with `children`) of their
    attachments and child notes, the attachments (a standalone file is its own) and notes not
    in the trash, and the attachments' annotations' parents and types. Returns `ids` and the
    itemIDs of those attachments, notes and annotations."""
    q = conn.execute
    select = (
        "SELECT a.itemID, a.parentItemID, a.linkMode, a.contentType, a.path "
        "FROM itemAttachments a JOIN items i ON i.itemID = a.itemID "
    )
    attachments = [
        row
        for marks, part in (_chunks(ids) if children else ())
        for where in ("a.parentItemID IN ({})", "a.itemID IN ({}) AND a.parentItemID IS NULL")
        for row in q(
            f"{select} WHERE {where.format(marks)} AND +i.libraryID = ?", [*part, library_id]
        )
    ]  # the items' attachments, and the standalone files among the items themselves
    notes = [
        row
        for marks, part in (_chunks(ids) if children else ())
        for row in q(
            "SELECT n.itemID, n.parentItemID FROM itemNotes n JOIN items i ON i.itemID = n.itemID "
            f"WHERE n.parentItemID IN ({marks}) AND +i.libraryID = ?",
            [*part, library_id],
        )
    ]
    family = set(ids) | {row[0] for row in attachments} | {row[0] for row in notes}
    for marks, part in _chunks(family):
        for item_id, when in q(
            f"SELECT itemID, dateDeleted FROM deletedItems WHERE itemID IN ({marks})", part
        ):
            rows.trashed[item_id] = str(when or "")
    for item_id, parent, mode, content_type, path in attachments:
        if item_id not in rows.trashed or item_id in ids:
            rows.attachments[item_id] = (parent, mode, content_type or "", path or "")
    for item_id, parent in notes:
        if item_id not in rows.trashed:
            rows.notes[item_id] = (parent, None)
    family = set(ids) | rows.attachments.keys() | rows.notes.keys()
    for marks, part in _chunks(rows.attachments):
        for item_id, parent, kind in q(
            "SELECT n.itemID, n.parentItemID, n.type FROM itemAnnotations n "
            "JOIN items i ON i.itemID = n.itemID "
            f"WHERE n.parentItemID IN ({marks}) AND +i.libraryID = ?",
            [*part, library_id],
        ):
            rows.annotations[item_id] = (parent, kind)
            family.add(item_id)
    return family


def _regular_ids(conn: sqlite3.Connection, library_id: int, regular: _Regular) -> list[int]:
    """The regular items of the library, in itemID order (`_Builder.regular`'s order)."""
    found = conn.execute(
        f"SELECT itemID FROM items WHERE +libraryID = :lib AND {regular.where()} ORDER BY itemID",
        {"lib": library_id, **regular.params},
    )
    return [item_id for (item_id,) in found]


def _regular_count(conn: sqlite3.Connection, info: _LibraryInfo) -> int:
    (count,) = conn.execute(
        "SELECT count(*) FROM items i JOIN itemTypesCombined t ON t.itemTypeID = i.itemTypeID"
        " WHERE i.libraryID = ? AND t.typeName NOT IN ('attachment', 'note', 'annotation')",
        (info.library_id,),
    ).fetchone()
    return int(count)
