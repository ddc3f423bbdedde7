"""What a Zotero database looks like to us: supported schema versions, the tables we
read, how field values are stored, which library to read and which items are regular.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from bridge.errors import SourceError
from bridge.model import Library

DB_NAME = "zotero.sqlite"
BBT_NAME = "better-bibtex.sqlite"
# 120-121 Zotero 6, 122 Zotero 7 betas (adds only file types), 123 Zotero 7/8, 124-128 later
# 7.x-9 steps (extra columns we do not read), 129 Zotero 10. The columns we read are the same.
SUPPORTED_SCHEMAS = frozenset(range(120, 130))
LINK_MODES = ("imported_file", "imported_url", "linked_file", "linked_url", "embedded_image")
NON_REGULAR_TYPES = frozenset({"attachment", "note", "annotation"})
# A standalone attachment (no parent item) of these types is an item of its own: its
# annotations need a note. (SQL text below: a fixed list, never user input.)
FILE_ITEM_TYPES = ("application/pdf", "application/epub+zip", "text/html")
_FILE_ITEM_SQL = (
    "SELECT itemID FROM itemAttachments WHERE parentItemID IS NULL AND contentType IN ("
    + ", ".join(f"'{t}'" for t in FILE_ITEM_TYPES)
    + ")"
)
# Fields stored as Zotero multipart dates (`2016-06-00 June 2016`): the global schema's
# date-typed fields and the type-specific fields mapped onto `date`.
DATE_FIELDS = frozenset({"date", "filingDate", "dateDecided", "issueDate", "dateEnacted"})
# Tables we read; `quick_check` covers exactly these, so a torn copy is caught cheaply.
READ_TABLES = (
    "version", "settings", "libraries", "groups", "itemTypesCombined", "fieldsCombined",
    "creatorTypes", "items", "itemData", "itemDataValues", "creators", "itemCreators", "tags",
    "itemTags", "collections", "collectionItems", "itemAttachments", "itemAnnotations",
    "itemNotes", "itemRelations", "relationPredicates", "deletedItems",
)  # fmt: skip
# What a cursor read scans whole (or reads in full, being small); only these get `quick_check`
# on that path, see `SqliteSource._read_since`.
CHANGE_TABLES = (
    "version", "settings", "libraries", "groups", "itemTypesCombined", "fieldsCombined",
    "creatorTypes", "items", "collections", "itemAttachments", "itemAnnotations", "itemNotes",
    "relationPredicates", "deletedItems",
)  # fmt: skip


_MULTIPART = re.compile(r"^\d{4}-\d{2}-\d{2} ")
_SQL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


def _iso(text: str | None) -> str:
    """Zotero's UTC `YYYY-MM-DD HH:MM:SS` → `YYYY-MM-DDTHH:MM:SSZ` (other shapes unchanged)."""
    if not text:
        return ""
    text = str(text)
    if len(text) == 19 and text[10] == " " and _SQL_TIME.match(text):
        return f"{text[:10]}T{text[11:]}Z"
    return text


def _tag_tuple(names: list[str] | None) -> tuple[str, ...]:
    """Tags sorted and unique, so two reads of the same library compare equal."""
    return tuple(sorted(set(names))) if names else ()


def _link_mode(mode: object) -> str:
    if isinstance(mode, int) and 0 <= mode < len(LINK_MODES):
        return LINK_MODES[mode]
    return str(mode)


def field_text(name: str, value: object) -> str:
    """What the user typed: multipart dates lose their sortable prefix, as Zotero shows them.

    `accessDate` is stored as SQL UTC time and shown (and sent by the API) as ISO 8601.
    """
    text = str(value)
    if name in DATE_FIELDS and _MULTIPART.match(text):
        return text[11:]
    if name == "accessDate":
        return _iso(text)
    return text


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return found is not None


@dataclass(frozen=True)
class _LibraryInfo:
    library_id: int
    library: Library
    uri_part: re.Pattern[str]  # which relation URIs point into this library


def _library_info(conn: sqlite3.Connection, wanted: int | None, label: str) -> _LibraryInfo:
    """Which library to read. `wanted` is Zotero's internal libraryID; as a convenience a
    group ID or the zotero.org user ID (what the API sources call `library_id`) also works —
    internal IDs are small, zotero.org IDs are large, so they do not collide in practice."""
    libraries = dict(conn.execute("SELECT libraryID, type FROM libraries"))
    groups = dict(conn.execute("SELECT libraryID, groupID FROM groups"))
    users = sorted(lid for lid, kind in libraries.items() if kind == "user")
    library_id = wanted if wanted is not None else (users[0] if users else 1)
    if library_id not in libraries:
        by_group = {group_id: lid for lid, group_id in groups.items()}
        user_id = conn.execute(
            "SELECT value FROM settings WHERE setting='account' AND key='userID'"
        ).fetchone()
        if library_id in by_group:
            library_id = by_group[library_id]
        elif user_id and users and str(user_id[0]) == str(library_id):
            library_id = users[0]
    kind = libraries.get(library_id)
    if not (kind == "user" or (kind == "group" and library_id in groups)):
        available = ", ".join(
            f"{lid} ({kind}{' ' + str(groups[lid]) if lid in groups else ''})"
            for lid, kind in sorted(libraries.items())
            if kind in ("user", "group")
        )
        raise SourceError(
            f"{label} has no user or group library with libraryID {library_id}",
            f"choose one of (libraryID (type groupID)): {available}",
        )
    if kind == "group":
        group_id = groups[library_id]
        return _LibraryInfo(
            library_id, Library("group", group_id), re.compile(rf"^groups/{group_id}$")
        )
    return _LibraryInfo(library_id, Library(), re.compile(r"^users/"))


@dataclass(frozen=True)
class _Regular:
    """What makes an item regular in SQL: `itemTypeID NOT IN (...)` the types of
    `NON_REGULAR_TYPES`. `types` maps itemTypeID to typeName."""

    types: dict[int, str]
    other: tuple[object, ...]

    @classmethod
    def read(cls, conn: sqlite3.Connection) -> _Regular:
        types = dict(conn.execute("SELECT itemTypeID, typeName FROM itemTypesCombined"))
        return cls(types, tuple(tid for tid, name in types.items() if name in NON_REGULAR_TYPES))

    @property
    def sql(self) -> str:
        """With named parameters `:nr0, :nr1…` (`params`)."""
        return "NOT IN (" + ",".join(f":nr{n}" for n in range(len(self.other))) + ")"

    def where(self, alias: str = "") -> str:
        """The items that get notes, as one parenthesised condition on the `items` row
        `alias` (named parameters, `params`): regular items and standalone files."""
        a = f"{alias}." if alias else ""
        return f"({a}itemTypeID {self.sql} OR {a}itemID IN ({_FILE_ITEM_SQL}))"

    @property
    def params(self) -> dict[str, object]:
        return {f"nr{n}": tid for n, tid in enumerate(self.other)}
