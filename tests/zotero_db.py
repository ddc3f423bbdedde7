"""Build Zotero databases in Zotero's real table layout, for tests and benchmarks.

Why: the source must be proven against the layout Zotero really writes (column names, keys,
foreign keys with ON DELETE CASCADE, triggers that refuse blank tags and empty creator names),
for every schema generation it accepts, on a clone that has no shared fixture. The DDL below is
written from `ZOTERO_FACTS.md` and compared with a real Zotero 7.0.30 database; it holds only
the tables a reader of items needs. Newer schemas are produced the way Zotero upgrades a user's
database: `ALTER TABLE … ADD COLUMN`, so added columns sit at the end of their table.

    db = ZoteroDB.create(path, schema=123, journal="delete")
    key = db.add_item("journalArticle", title="Deep Residual Learning", date="2016-06-27",
                      creators=[("author", "Kaiming", "He")], tags=["cnn", ("auto", 1)],
                      collections=["Vision/Detection"], DOI="10.1109/CVPR.2016.90")
    att = db.add_attachment(key, content_type="application/pdf", filename="he2016.pdf")
    db.add_annotation(att, type="highlight", text="residual", page_label="3")
    db.close()

All IDs are assigned here and new rows are buffered, then written with `executemany` in one
transaction on `commit()`/`close()`, so 50,000 items take seconds. Edits (`set_field`, `trash`,
`erase`, …) write at once and move `dateModified`/`clientDateModified` the way Zotero does.
Timestamps come from a deterministic clock that ticks one second per change (`set_time`).

`hold_exclusive_lock()` runs a separate process that behaves like a running Zotero: it holds
`locking_mode=EXCLUSIVE` (rollback journal like Zotero 7–9, or WAL without `-shm` and without
checkpoints like Zotero 10) and applies edits sent to it through this same API.
"""

from __future__ import annotations

import json
import random
import re
import select
import sqlite3
import subprocess
import sys
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

KEY_ALPHABET = "23456789ABCDEFGHIJKLMNPQRSTUVWXYZ"
SCHEMAS = (120, 121, 122, 123, 124, 125, 126, 127, 128, 129)
SQL_TIME = "%Y-%m-%d %H:%M:%S"

# Names and IDs as in a real Zotero 7 database (global schema 33).
ITEM_TYPES = (
    "annotation", "artwork", "attachment", "audioRecording", "bill", "blogPost", "book",
    "bookSection", "case", "computerProgram", "conferencePaper", "dataset", "dictionaryEntry",
    "document", "email", "encyclopediaArticle", "film", "forumPost", "hearing", "instantMessage",
    "interview", "journalArticle", "letter", "magazineArticle", "manuscript", "map",
    "newspaperArticle", "note", "patent", "podcast", "preprint", "presentation",
    "radioBroadcast", "report", "standard", "statute", "thesis", "tvBroadcast", "videoRecording",
    "webpage",
)  # fmt: skip
FIELDS = {
    "title": 1, "abstractNote": 2, "date": 6, "language": 7, "shortTitle": 8, "archive": 9,
    "archiveLocation": 10, "libraryCatalog": 11, "callNumber": 12, "url": 13, "accessDate": 14,
    "rights": 15, "extra": 16, "seriesTitle": 18, "volume": 19, "place": 21, "publisher": 23,
    "ISBN": 25, "number": 27, "section": 30, "pages": 32, "publicationTitle": 38,
    "websiteType": 39, "type": 40, "series": 41, "seriesNumber": 42, "edition": 43,
    "numPages": 44, "bookTitle": 45, "dateDecided": 48, "versionNumber": 53,
    "proceedingsTitle": 57, "conferenceName": 58, "DOI": 59, "identifier": 60,
    "repository": 61, "format": 63, "citationKey": 64, "issue": 76, "journalAbbreviation": 78,
    "ISSN": 79, "filingDate": 88, "issueDate": 91, "archiveID": 97, "reportNumber": 102,
    "reportType": 103, "institution": 104, "dateEnacted": 109, "thesisType": 110,
    "university": 111, "websiteTitle": 113,
}  # fmt: skip
CREATOR_TYPES = {
    "artist": 1, "contributor": 2, "performer": 3, "composer": 4, "sponsor": 6, "author": 8,
    "commenter": 9, "editor": 10, "translator": 11, "seriesEditor": 12, "bookAuthor": 13,
    "programmer": 15, "reviewedAuthor": 16, "recipient": 17, "director": 18, "inventor": 24,
    "presenter": 28,
}  # fmt: skip
LINK_MODES = {
    "imported_file": 0, "imported_url": 1, "linked_file": 2, "linked_url": 3, "embedded_image": 4,
}  # fmt: skip
ANNOTATION_TYPES = {"highlight": 1, "note": 2, "image": 3, "ink": 4, "underline": 5, "text": 6}
# Fields Zotero stores as multipart dates: global schema meta type "date" and fields mapped to
# the `date` base field.
DATE_FIELDS = frozenset({"date", "filingDate", "dateDecided", "issueDate", "dateEnacted"})
SYNC_OBJECT_TYPES = ("collection", "creator", "item", "search", "tag", "relation", "setting")

_BASE_DDL = """
CREATE TABLE version (schema TEXT PRIMARY KEY, version INT NOT NULL);
CREATE INDEX schema ON version(schema);
CREATE TABLE settings (setting TEXT, key TEXT, value, PRIMARY KEY (setting, key));
CREATE TABLE syncObjectTypes (syncObjectTypeID INTEGER PRIMARY KEY, name TEXT);
CREATE TABLE charsets (charsetID INTEGER PRIMARY KEY, charset TEXT UNIQUE);
CREATE TABLE itemTypesCombined (
    itemTypeID INT NOT NULL, typeName TEXT NOT NULL, display INT DEFAULT 1 NOT NULL,
    custom INT NOT NULL, PRIMARY KEY (itemTypeID));
CREATE TABLE fieldsCombined (
    fieldID INT NOT NULL, fieldName TEXT NOT NULL, label TEXT, fieldFormatID INT,
    custom INT NOT NULL, PRIMARY KEY (fieldID));
CREATE TABLE creatorTypes (creatorTypeID INTEGER PRIMARY KEY, creatorType TEXT);
CREATE TABLE libraries (
    libraryID INTEGER PRIMARY KEY, type TEXT NOT NULL, editable INT NOT NULL,
    filesEditable INT NOT NULL, version INT NOT NULL DEFAULT 0,
    storageVersion INT NOT NULL DEFAULT 0, lastSync INT NOT NULL DEFAULT 0,
    archived INT NOT NULL DEFAULT 0);
CREATE TABLE users (userID INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE groups (
    groupID INTEGER PRIMARY KEY, libraryID INT NOT NULL UNIQUE, name TEXT NOT NULL,
    description TEXT NOT NULL, version INT NOT NULL,
    FOREIGN KEY (libraryID) REFERENCES libraries(libraryID) ON DELETE CASCADE);
CREATE TABLE items (
    itemID INTEGER PRIMARY KEY, itemTypeID INT NOT NULL,
    dateAdded TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    dateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    libraryID INT NOT NULL, key TEXT NOT NULL, version INT NOT NULL DEFAULT 0,
    synced INT NOT NULL DEFAULT 0, UNIQUE (libraryID, key),
    FOREIGN KEY (libraryID) REFERENCES libraries(libraryID) ON DELETE CASCADE);
CREATE INDEX items_synced ON items(synced);
CREATE TABLE itemDataValues (valueID INTEGER PRIMARY KEY, value UNIQUE);
CREATE TABLE itemData (
    itemID INT, fieldID INT, valueID, PRIMARY KEY (itemID, fieldID),
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (fieldID) REFERENCES fieldsCombined(fieldID),
    FOREIGN KEY (valueID) REFERENCES itemDataValues(valueID));
CREATE INDEX itemData_fieldID ON itemData(fieldID);
CREATE TABLE itemNotes (
    itemID INTEGER PRIMARY KEY, parentItemID INT, note TEXT, title TEXT,
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (parentItemID) REFERENCES items(itemID) ON DELETE CASCADE);
CREATE INDEX itemNotes_parentItemID ON itemNotes(parentItemID);
CREATE TABLE itemAttachments (
    itemID INTEGER PRIMARY KEY, parentItemID INT, linkMode INT, contentType TEXT,
    charsetID INT, path TEXT, syncState INT DEFAULT 0, storageModTime INT, storageHash TEXT,
    lastProcessedModificationTime INT,
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (parentItemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (charsetID) REFERENCES charsets(charsetID) ON DELETE SET NULL);
CREATE INDEX itemAttachments_parentItemID ON itemAttachments(parentItemID);
CREATE INDEX itemAttachments_contentType ON itemAttachments(contentType);
CREATE TABLE itemAnnotations (
    itemID INTEGER PRIMARY KEY, parentItemID INT NOT NULL, type INTEGER NOT NULL,
    authorName TEXT, text TEXT, comment TEXT, color TEXT, pageLabel TEXT,
    sortIndex TEXT NOT NULL, position TEXT NOT NULL, isExternal INT NOT NULL,
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (parentItemID) REFERENCES itemAttachments(itemID));
CREATE INDEX itemAnnotations_parentItemID ON itemAnnotations(parentItemID);
CREATE TABLE tags (tagID INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TRIGGER fki_tags BEFORE INSERT ON tags FOR EACH ROW BEGIN
    SELECT RAISE(ABORT, 'Tag cannot be blank') WHERE TRIM(NEW.name)=''; END;
CREATE TABLE itemTags (
    itemID INT NOT NULL, tagID INT NOT NULL, type INT NOT NULL, PRIMARY KEY (itemID, tagID),
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (tagID) REFERENCES tags(tagID) ON DELETE CASCADE);
CREATE INDEX itemTags_tagID ON itemTags(tagID);
CREATE TABLE creators (
    creatorID INTEGER PRIMARY KEY, firstName TEXT, lastName TEXT, fieldMode INT,
    UNIQUE (lastName, firstName, fieldMode));
CREATE TRIGGER insert_creators BEFORE INSERT ON creators FOR EACH ROW
    WHEN NEW.firstName='' AND NEW.lastName='' BEGIN
    SELECT RAISE (ABORT, 'Creator names cannot be empty'); END;
CREATE TABLE itemCreators (
    itemID INT NOT NULL, creatorID INT NOT NULL, creatorTypeID INT NOT NULL DEFAULT 1,
    orderIndex INT NOT NULL DEFAULT 0,
    PRIMARY KEY (itemID, creatorID, creatorTypeID, orderIndex), UNIQUE (itemID, orderIndex),
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (creatorID) REFERENCES creators(creatorID) ON DELETE CASCADE,
    FOREIGN KEY (creatorTypeID) REFERENCES creatorTypes(creatorTypeID));
CREATE TABLE collections (
    collectionID INTEGER PRIMARY KEY, collectionName TEXT NOT NULL,
    parentCollectionID INT DEFAULT NULL,
    clientDateModified TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, libraryID INT NOT NULL,
    key TEXT NOT NULL, version INT NOT NULL DEFAULT 0, synced INT NOT NULL DEFAULT 0,
    UNIQUE (libraryID, key),
    FOREIGN KEY (libraryID) REFERENCES libraries(libraryID) ON DELETE CASCADE,
    FOREIGN KEY (parentCollectionID) REFERENCES collections(collectionID) ON DELETE CASCADE);
CREATE TABLE collectionItems (
    collectionID INT NOT NULL, itemID INT NOT NULL, orderIndex INT NOT NULL DEFAULT 0,
    PRIMARY KEY (collectionID, itemID),
    FOREIGN KEY (collectionID) REFERENCES collections(collectionID) ON DELETE CASCADE,
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE);
CREATE INDEX collectionItems_itemID ON collectionItems(itemID);
CREATE TABLE relationPredicates (predicateID INTEGER PRIMARY KEY, predicate TEXT UNIQUE);
CREATE TABLE itemRelations (
    itemID INT NOT NULL, predicateID INT NOT NULL, object TEXT NOT NULL,
    PRIMARY KEY (itemID, predicateID, object),
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE,
    FOREIGN KEY (predicateID) REFERENCES relationPredicates(predicateID) ON DELETE CASCADE);
CREATE INDEX itemRelations_object ON itemRelations(object);
CREATE TABLE deletedItems (
    itemID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL,
    FOREIGN KEY (itemID) REFERENCES items(itemID) ON DELETE CASCADE);
CREATE TABLE deletedCollections (
    collectionID INTEGER PRIMARY KEY, dateDeleted DEFAULT CURRENT_TIMESTAMP NOT NULL,
    FOREIGN KEY (collectionID) REFERENCES collections(collectionID) ON DELETE CASCADE);
CREATE TABLE syncDeleteLog (
    syncObjectTypeID INT NOT NULL, libraryID INT NOT NULL, key TEXT NOT NULL,
    dateDeleted TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (syncObjectTypeID, libraryID, key),
    FOREIGN KEY (syncObjectTypeID) REFERENCES syncObjectTypes(syncObjectTypeID),
    FOREIGN KEY (libraryID) REFERENCES libraries(libraryID) ON DELETE CASCADE);
"""

# Zotero's own upgrade steps for the columns a reader may meet (schema.js migrations).
_UPGRADES: dict[int, tuple[str, ...]] = {
    123: ("CREATE INDEX itemData_valueID ON itemData(valueID)",),
    124: ("ALTER TABLE itemAttachments ADD COLUMN lastRead INT",),
    125: ("ALTER TABLE libraries ADD COLUMN isAdmin INT NOT NULL DEFAULT 0",),
    126: (
        "ALTER TABLE itemDataValues ADD COLUMN valueNormalized TEXT",
        "ALTER TABLE tags ADD COLUMN nameNormalized TEXT",
        "ALTER TABLE creators ADD COLUMN firstNameNormalized TEXT",
        "ALTER TABLE creators ADD COLUMN lastNameNormalized TEXT",
        "ALTER TABLE itemAnnotations ADD COLUMN textNormalized TEXT",
        "ALTER TABLE itemAnnotations ADD COLUMN commentNormalized TEXT",
    ),
    129: tuple(
        f"ALTER TABLE {table} ADD COLUMN clientVersion INT NOT NULL DEFAULT 0"
        for table in ("items", "collections", "libraries")
    ),
}

# Columns added after Zotero 7 that the builder fills when the database has them.
_EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {
    "items": ("clientVersion",),
    "collections": ("clientVersion",),
    "libraries": ("clientVersion",),
    "itemDataValues": ("valueNormalized",),
    "tags": ("nameNormalized",),
    "creators": ("firstNameNormalized", "lastNameNormalized"),
    "itemAnnotations": ("textNormalized", "commentNormalized"),
}

_MULTIPART = re.compile(r"^\d{4}-\d{2}-\d{2} ")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"), ("feb", "february"), ("mar", "march"), ("apr", "april"),
            ("may",), ("jun", "june"), ("jul", "july"), ("aug", "august"),
            ("sep", "sept", "september"), ("oct", "october"), ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}  # fmt: skip


def to_multipart(text: str) -> str:
    """Zotero's stored form of a date field: `YYYY-MM-DD original` (unknown parts are 00).

    A value already in multipart form is kept, as Zotero's `setField` does. The parser covers
    the shapes found in real libraries (`2016-06-27`, `2024-5-9`, `7/2003`, `2022/07`,
    `June 2016`, `27 June 2016`, `2016`); anything else gets `0000-00-00`.
    """
    if not text or _MULTIPART.match(text):
        return text
    year = month = day = 0
    if m := re.fullmatch(r"\s*(\d{4})[-/.](\d{1,2})(?:[-/.](\d{1,2}))?\s*", text):
        year, month, day = int(m[1]), int(m[2]), int(m[3] or 0)
    elif m := re.fullmatch(r"\s*(\d{1,2})[-/.](\d{4})\s*", text):
        year, month = int(m[2]), int(m[1])
    elif m := re.fullmatch(r"\s*(?:(\d{1,2})\.?\s+)?([A-Za-z]+)\.?,?\s+(\d{4})\s*", text):
        year, month, day = int(m[3]), _MONTHS.get(m[2].lower(), 0), int(m[1] or 0)
    elif m := re.search(r"(?<!\d)(\d{4})(?!\d)", text):
        year = int(m[1])
    return f"{year:04d}-{month:02d}-{day:02d} {text}"


def _normalized(text: str | None) -> str | None:
    """What Zotero 8+ keeps in `*Normalized` columns: lower case, accents stripped."""
    if text is None:
        return None
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def _sql_time(text: str) -> str:
    """Accept `2025-01-01 10:00:00` or ISO `2025-01-01T10:00:00Z`; return Zotero's UTC form."""
    return text.replace("T", " ").removesuffix("Z")


class ZoteroDB:
    """A Zotero database being built or edited; see the module docstring for the API."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path | str,
        *,
        seed: int | None = 0,
        start_time: str | None = None,
    ) -> None:
        """Wrap an open connection; `start_time` None means the real current UTC time."""
        self.conn = conn
        self.path = Path(path)
        self._random = random.Random(seed)
        self._pending: dict[str, list[tuple[Any, ...]]] = {}
        self._clock = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        if start_time:
            self.set_time(start_time)
        conn.execute("PRAGMA foreign_keys=ON")  # as Zotero runs: bad rows fail loudly
        conn.execute("PRAGMA cache_size=-65536")  # a 50,000-item transaction must not spill
        self._load()

    # ---------------------------------------------------------------- construction

    @classmethod
    def create(
        cls,
        path: Path | str,
        schema: int = 123,
        journal: str = "delete",
        *,
        seed: int | None = 0,
        user_id: int | None = None,
    ) -> ZoteroDB:
        """A new, empty Zotero database (user library 1) at `path`, in `schema`'s layout.

        `user_id` makes it a synced library (relation URIs `users/<id>`); otherwise URIs use
        the local user key, as in a library that never synced.
        """
        if schema not in SCHEMAS:
            raise ValueError(f"unknown Zotero userdata schema {schema}; known: {SCHEMAS}")
        path = Path(path)
        if path.exists():
            raise FileExistsError(path)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute(f"PRAGMA journal_mode={'WAL' if journal == 'wal' else 'DELETE'}")
        cls._create_tables(conn, schema, random.Random(seed), user_id)
        return cls(conn, path, seed=seed, start_time="2025-01-01 00:00:00")

    @classmethod
    def open(cls, path: Path | str, *, seed: int | None = None) -> ZoteroDB:
        """Edit an existing Zotero database (e.g. a copy of the real fixture) with this API.

        The clock starts at the real current time, so edits are newer than existing rows.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(path)
        return cls(sqlite3.connect(path, isolation_level=None), path, seed=seed)

    @staticmethod
    def _create_tables(
        conn: sqlite3.Connection, schema: int, rnd: random.Random, user_id: int | None
    ) -> None:
        conn.execute("BEGIN")
        for statement in _BASE_DDL.split(";\n"):
            if statement.strip():
                conn.execute(statement)
        for step, statements in sorted(_UPGRADES.items()):
            if schema >= step:
                for statement in statements:
                    conn.execute(statement)
        versions = [("userdata", schema), ("globalSchema", 33), ("system", 32), ("triggers", 18)]
        conn.executemany("INSERT INTO version VALUES (?, ?)", versions)
        conn.executemany(
            "INSERT INTO itemTypesCombined VALUES (?, ?, 1, 0)",
            list(enumerate(ITEM_TYPES, start=1)),
        )
        conn.executemany(
            "INSERT INTO fieldsCombined VALUES (?, ?, NULL, NULL, 0)",
            [(fid, name) for name, fid in FIELDS.items()],
        )
        conn.executemany(
            "INSERT INTO creatorTypes VALUES (?, ?)", [(i, n) for n, i in CREATOR_TYPES.items()]
        )
        conn.executemany(
            "INSERT INTO syncObjectTypes VALUES (?, ?)",
            list(enumerate(SYNC_OBJECT_TYPES, start=1)),
        )
        conn.execute("INSERT INTO charsets VALUES (1, 'utf-8')")
        conn.execute(
            "INSERT INTO libraries (libraryID, type, editable, filesEditable) "
            "VALUES (1, 'user', 1, 1)"
        )
        local_key = "".join(rnd.choice(KEY_ALPHABET) for _ in range(8))
        conn.execute("INSERT INTO settings VALUES ('account', 'localUserKey', ?)", (local_key,))
        if user_id is not None:
            conn.execute("INSERT INTO settings VALUES ('account', 'userID', ?)", (user_id,))
        conn.execute("COMMIT")

    def _load(self) -> None:
        """Read what the API needs to know about the existing rows (IDs, names, keys)."""
        q = self.conn.execute
        self.schema = int(q("SELECT version FROM version WHERE schema='userdata'").fetchone()[0])
        self._cols = {
            table: {row[1] for row in q(f"PRAGMA table_info({table})")} for table in _EXTRA_COLUMNS
        }
        self._extras = {
            table: tuple(c for c in wanted if c in self._cols[table])
            for table, wanted in _EXTRA_COLUMNS.items()
        }
        self._type_ids = dict(q("SELECT typeName, itemTypeID FROM itemTypesCombined"))
        self._field_ids = dict(q("SELECT fieldName, fieldID FROM fieldsCombined"))
        self._creator_type_ids = dict(q("SELECT creatorType, creatorTypeID FROM creatorTypes"))
        self._predicates = dict(q("SELECT predicate, predicateID FROM relationPredicates"))
        self._values = dict(q("SELECT value, valueID FROM itemDataValues"))
        self._tags = dict(q("SELECT name, tagID FROM tags"))
        self._creators = {
            (first, last, mode): cid
            for cid, first, last, mode in q(
                "SELECT creatorID, firstName, lastName, fieldMode FROM creators"
            )
        }
        self._items: dict[str, tuple[int, int]] = {}  # key -> (itemID, libraryID)
        for item_id, key, library_id in q("SELECT itemID, key, libraryID FROM items"):
            self._items[key] = (item_id, library_id)
        self._collection_keys = {k for (k,) in q("SELECT key FROM collections")}
        self._collections: dict[tuple[int, str], int] = {}
        rows = q(
            "SELECT collectionID, collectionName, parentCollectionID, libraryID FROM collections"
        )
        self._load_collection_paths(list(rows))
        self._next = {
            table: (q(f"SELECT MAX({column}) FROM {table}").fetchone()[0] or 0) + 1
            for table, column in (
                ("items", "itemID"),
                ("itemDataValues", "valueID"),
                ("tags", "tagID"),
                ("creators", "creatorID"),
                ("collections", "collectionID"),
                ("relationPredicates", "predicateID"),
            )
        }
        self._settings = {(s, k): v for s, k, v in q("SELECT setting, key, value FROM settings")}
        self._client_version = 0
        if "clientVersion" in self._cols["libraries"]:
            self._client_version = q("SELECT MAX(clientVersion) FROM libraries").fetchone()[0] or 0

    def _load_collection_paths(self, rows: list[tuple[int, str, int | None, int]]) -> None:
        by_id = {cid: (name, parent, lib) for cid, name, parent, lib in rows}

        def path_of(cid: int) -> str:
            name, parent, _ = by_id[cid]
            return name if parent is None else f"{path_of(parent)}/{name}"

        for cid, (_, _, lib) in by_id.items():
            self._collections[(lib, path_of(cid))] = cid

    # ---------------------------------------------------------------- time, keys, ids

    def set_time(self, when: str) -> None:
        """Move the clock: the next change is stamped `when` (UTC `YYYY-MM-DD HH:MM:SS`)."""
        self._clock = datetime.strptime(_sql_time(when), SQL_TIME)

    def now(self) -> str:
        """The current clock value; every call advances the clock by one second."""
        text = self._clock.isoformat(sep=" ")
        self._clock += timedelta(seconds=1)
        return text

    def new_key(self) -> str:
        """An unused 8-character Zotero key."""
        while True:
            key = "".join(self._random.choices(KEY_ALPHABET, k=8))
            if key not in self._items and key not in self._collection_keys:
                return key

    def item_id(self, key: str) -> int:
        """The itemID behind a key (the key must exist)."""
        try:
            return self._items[key][0]
        except KeyError:
            raise KeyError(f"no item with key {key!r}") from None

    def _take_id(self, table: str) -> int:
        value = self._next[table]
        self._next[table] = value + 1
        return value

    def _bump_client_version(self) -> int:
        self._client_version += 1
        return self._client_version

    def uri(self, key: str) -> str:
        """The relation URI of an item, as Zotero writes it in `itemRelations.object`."""
        _, library_id = self._items[key]
        group = self.conn.execute(
            "SELECT groupID FROM groups WHERE libraryID=?", (library_id,)
        ).fetchone()
        if group:
            return f"http://zotero.org/groups/{group[0]}/items/{key}"
        user_id = self._settings.get(("account", "userID"))
        if user_id is not None:
            return f"http://zotero.org/users/{user_id}/items/{key}"
        local = self._settings[("account", "localUserKey")]
        return f"http://zotero.org/users/local/{local}/items/{key}"

    # ---------------------------------------------------------------- buffered inserts

    def _queue(self, table: str, row: tuple[Any, ...]) -> None:
        self._pending.setdefault(table, []).append(row)

    def _insert_sql(self, table: str) -> str:
        columns = {
            "items": "itemID, itemTypeID, dateAdded, dateModified, clientDateModified, "
            "libraryID, key, version, synced",
            "itemDataValues": "valueID, value",
            "itemData": "itemID, fieldID, valueID",
            "creators": "creatorID, firstName, lastName, fieldMode",
            "itemCreators": "itemID, creatorID, creatorTypeID, orderIndex",
            "tags": "tagID, name",
            "itemTags": "itemID, tagID, type",
            "collections": "collectionID, collectionName, parentCollectionID, "
            "clientDateModified, libraryID, key, version, synced",
            "collectionItems": "collectionID, itemID, orderIndex",
            "itemAttachments": "itemID, parentItemID, linkMode, contentType, charsetID, path, "
            "syncState",
            "itemAnnotations": "itemID, parentItemID, type, authorName, text, comment, color, "
            "pageLabel, sortIndex, position, isExternal",
            "itemNotes": "itemID, parentItemID, note, title",
            "relationPredicates": "predicateID, predicate",
            "itemRelations": "itemID, predicateID, object",
            "deletedItems": "itemID, dateDeleted",
        }[table]
        extra = self._extra_columns(table)
        names = columns + "".join(f", {c}" for c in extra)
        marks = ", ".join("?" * (names.count(",") + 1))
        return f"INSERT INTO {table} ({names}) VALUES ({marks})"

    def _extra_columns(self, table: str) -> tuple[str, ...]:
        """Columns later schemas added that this database has (filled on insert)."""
        return self._extras.get(table, ())

    _FLUSH_ORDER = (
        "relationPredicates", "collections", "items", "itemDataValues", "itemData", "creators",
        "itemCreators", "tags", "itemTags", "collectionItems", "itemAttachments",
        "itemAnnotations", "itemNotes", "itemRelations", "deletedItems",
    )  # fmt: skip

    def flush(self) -> None:
        """Write buffered rows (in foreign-key order) inside the open transaction."""
        if not self._pending:
            return
        self._begin()
        for table in self._FLUSH_ORDER:
            rows = self._pending.pop(table, None)
            if rows:
                self.conn.executemany(self._insert_sql(table), rows)

    def _begin(self) -> None:
        if not self.conn.in_transaction:
            self.conn.execute("BEGIN")

    def commit(self) -> None:
        """Flush and commit: everything so far becomes one transaction."""
        self.flush()
        if self.conn.in_transaction and self._extra_columns("libraries"):
            self.conn.execute("UPDATE libraries SET clientVersion=?", (self._client_version,))
        if self.conn.in_transaction:
            self.conn.execute("COMMIT")

    def close(self) -> None:
        self.commit()
        self.conn.close()

    def __enter__(self) -> ZoteroDB:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self.conn.close()

    # ---------------------------------------------------------------- row helpers

    def _value_id(self, value: str) -> int:
        value_id = self._values.get(value)
        if value_id is None:
            value_id = self._values[value] = self._take_id("itemDataValues")
            extra = (_normalized(value),) if self._extra_columns("itemDataValues") else ()
            self._queue("itemDataValues", (value_id, value, *extra))
        return value_id

    def _field_id(self, name: str) -> int:
        try:
            return self._field_ids[name]
        except KeyError:
            raise ValueError(f"unknown Zotero field {name!r}") from None

    def _stored_value(self, field: str, value: str) -> str:
        if field in DATE_FIELDS:
            return to_multipart(value)
        if field == "accessDate":
            return _sql_time(value)
        return value

    def _tag_id(self, name: str) -> int:
        tag_id = self._tags.get(name)
        if tag_id is None:
            tag_id = self._tags[name] = self._take_id("tags")
            extra = (_normalized(name),) if self._extra_columns("tags") else ()
            self._queue("tags", (tag_id, name, *extra))
        return tag_id

    def _creator_id(self, first: str, last: str, mode: int) -> int:
        cid = self._creators.get((first, last, mode))
        if cid is None:
            cid = self._creators[(first, last, mode)] = self._take_id("creators")
            extra = (
                (_normalized(first), _normalized(last)) if self._extra_columns("creators") else ()
            )
            self._queue("creators", (cid, first, last, mode, *extra))
        return cid

    def _predicate_id(self, predicate: str) -> int:
        pid = self._predicates.get(predicate)
        if pid is None:
            pid = self._predicates[predicate] = self._take_id("relationPredicates")
            self._queue("relationPredicates", (pid, predicate))
        return pid

    def _collection_id(self, path: str, library_id: int) -> int:
        cid = self._collections.get((library_id, path))
        if cid is not None:
            return cid
        parent_path, _, name = path.rpartition("/")
        parent = self._collection_id(parent_path, library_id) if parent_path else None
        cid = self._collections[(library_id, path)] = self._take_id("collections")
        key = self.new_key()
        self._collection_keys.add(key)
        extra = (self._bump_client_version(),) if self._extra_columns("collections") else ()
        self._queue("collections", (cid, name, parent, self.now(), library_id, key, 0, 0, *extra))
        return cid

    def _new_item(
        self,
        type_name: str,
        library_id: int,
        key: str | None,
        date_added: str | None,
        date_modified: str | None,
        version: int = 0,
    ) -> tuple[str, int]:
        key = key or self.new_key()
        if key in self._items:
            raise ValueError(f"item key {key!r} already exists")
        item_id = self._take_id("items")
        added = _sql_time(date_added) if date_added else self.now()
        modified = _sql_time(date_modified) if date_modified else added
        extra = (self._bump_client_version(),) if self._extra_columns("items") else ()
        row = (
            item_id,
            self._type_ids[type_name],
            added,
            modified,
            modified,
            library_id,
            key,
            version,
            0,
            *extra,
        )
        self._queue("items", row)
        self._items[key] = (item_id, library_id)
        return key, item_id

    # ---------------------------------------------------------------- adding things

    def add_group(self, group_id: int, name: str = "Group", *, description: str = "") -> int:
        """A group library; returns its libraryID (pass it as `library_id=`)."""
        self.flush()
        self._begin()
        library_id = self.conn.execute("SELECT MAX(libraryID) + 1 FROM libraries").fetchone()[0]
        self.conn.execute(
            "INSERT INTO libraries (libraryID, type, editable, filesEditable) "
            "VALUES (?, 'group', 1, 1)",
            (library_id,),
        )
        self.conn.execute(
            "INSERT INTO groups VALUES (?, ?, ?, ?, 0)", (group_id, library_id, name, description)
        )
        return library_id

    def add_item(
        self,
        item_type: str = "journalArticle",
        *,
        title: str | None = None,
        date: str | None = None,
        creators: Iterable[Sequence[Any]] = (),
        tags: Iterable[str | tuple[str, int]] = (),
        collections: Iterable[str] = (),
        extra: str | None = None,
        citation_key: str | None = None,
        key: str | None = None,
        library_id: int = 1,
        date_added: str | None = None,
        date_modified: str | None = None,
        version: int = 0,
        **fields: str | None,
    ) -> str:
        """A regular item; returns its key.

        `creators`: `(type, first, last)` or `(type, first, last, fieldMode)`; fieldMode 1 is a
        single-field name (give it as `last`). `tags`: names, or `(name, type)` (1 = automatic).
        `collections`: full paths `Parent/Child`, created when missing. Other keyword arguments
        are Zotero field names (`DOI=`, `publicationTitle=`, `abstractNote=`, `url=`, …).
        """
        if item_type not in self._type_ids or item_type in ("attachment", "note", "annotation"):
            raise ValueError(f"{item_type!r} is not a regular Zotero item type")
        key, item_id = self._new_item(
            item_type, library_id, key, date_added, date_modified, version
        )
        named = {"title": title, "date": date, "extra": extra, "citationKey": citation_key}
        self._set_fields(item_id, {**named, **fields})
        for index, creator in enumerate(creators):
            self._add_creator(item_id, index, creator)
        for tag in tags:
            name, tag_type = (tag, 0) if isinstance(tag, str) else tag
            self._queue("itemTags", (item_id, self._tag_id(name), tag_type))
        for path in collections:
            self._queue("collectionItems", (self._collection_id(path, library_id), item_id, 0))
        return key

    def _set_fields(self, item_id: int, fields: dict[str, str | None]) -> None:
        for name, value in fields.items():
            if value is None or value == "":
                continue
            stored = self._stored_value(name, str(value))
            self._queue("itemData", (item_id, self._field_id(name), self._value_id(stored)))

    def _add_creator(self, item_id: int, index: int, creator: Sequence[Any]) -> None:
        creator_type, first, last, *rest = creator
        mode = int(rest[0]) if rest else 0
        if mode == 1:
            first = ""
        cid = self._creator_id(first, last, mode)
        self._queue("itemCreators", (item_id, cid, self._creator_type_ids[creator_type], index))

    def add_attachment(
        self,
        parent_key: str | None,
        *,
        content_type: str = "application/pdf",
        filename: str | None = None,
        link_mode: str | int = "imported_file",
        title: str | None = None,
        path: str | None = None,
        url: str | None = None,
        key: str | None = None,
        date_added: str | None = None,
        version: int = 0,
    ) -> str:
        """An attachment (child of `parent_key`, or standalone when None); returns its key.

        Imported files get `path` `storage:<filename>`, as Zotero stores them.
        """
        mode = LINK_MODES[link_mode] if isinstance(link_mode, str) else int(link_mode)
        library_id = self._items[parent_key][1] if parent_key else 1
        key, item_id = self._new_item("attachment", library_id, key, date_added, None, version)
        if path is None and filename and mode in (0, 1):
            path = f"storage:{filename}"
        elif path is None and filename:
            path = filename
        self._set_fields(item_id, {"title": title or filename, "url": url})
        parent_id = self.item_id(parent_key) if parent_key else None
        charset = 1 if content_type.startswith("text/") else None
        self._queue("itemAttachments", (item_id, parent_id, mode, content_type, charset, path, 0))
        return key

    def add_annotation(
        self,
        attachment_key: str,
        *,
        type: str | int = "highlight",  # Zotero's name for it
        text: str | None = None,
        comment: str | None = None,
        color: str | None = "#ffd400",
        page_label: str | None = "1",
        sort_index: str | None = None,
        position: dict[str, Any] | str | None = None,
        tags: Iterable[str | tuple[str, int]] = (),
        author_name: str | None = None,
        is_external: bool = False,
        key: str | None = None,
        date_added: str | None = None,
    ) -> str:
        """An annotation on an attachment; returns its key.

        `position` (a dict is stored as compact JSON, as Zotero does) defaults to a rectangle
        on page `page_label`; `sort_index` defaults to one derived from the position.
        """
        type_id = ANNOTATION_TYPES[type] if isinstance(type, str) else int(type)
        library_id = self._items[attachment_key][1]
        key, item_id = self._new_item("annotation", library_id, key, date_added, None)
        if position is None:
            page = int(page_label) - 1 if page_label and page_label.isdigit() else 0
            position = {"pageIndex": page, "rects": [[100.5, 200.25, 300.75, 212.5]]}
        if isinstance(position, dict):
            page_index = int(position.get("pageIndex", 0))
            position = json.dumps(position, separators=(",", ":"))
        else:
            page_index = int(json.loads(position).get("pageIndex", 0))
        sort_index = sort_index or f"{page_index:05d}|{self._random.randrange(999999):06d}|00200"
        extra = (
            (_normalized(text), _normalized(comment))
            if self._extra_columns("itemAnnotations")
            else ()
        )
        row = (
            item_id, self.item_id(attachment_key), type_id, author_name, text, comment, color,
            page_label, sort_index, position, int(is_external), *extra,
        )  # fmt: skip
        self._queue("itemAnnotations", row)
        for tag in tags:
            name, tag_type = (tag, 0) if isinstance(tag, str) else tag
            self._queue("itemTags", (item_id, self._tag_id(name), tag_type))
        return key

    def add_note(self, parent_key: str | None, html: str, *, key: str | None = None) -> str:
        """A note (child or standalone); child notes come into their item's note."""
        library_id = self._items[parent_key][1] if parent_key else 1
        key, item_id = self._new_item("note", library_id, key, None, None)
        parent_id = self.item_id(parent_key) if parent_key else None
        title = re.sub(r"<[^>]+>", "", html)[:80]
        self._queue("itemNotes", (item_id, parent_id, html, title))
        return key

    # ---------------------------------------------------------------- edits (write at once)

    def _edit(self) -> str:
        self.flush()
        self._begin()
        return self.now()

    def touch(self, key: str, when: str | None = None, *, date_modified: bool = True) -> None:
        """Stamp an item as saved now: `clientDateModified` (and `dateModified` unless told)."""
        stamp = _sql_time(when) if when else self._edit()
        self._begin()
        sets = "clientDateModified=?" + (", dateModified=?" if date_modified else "")
        params: list[Any] = [stamp, stamp] if date_modified else [stamp]
        if self._extra_columns("items"):
            sets += ", clientVersion=?"
            params.append(self._bump_client_version())
        self.conn.execute(f"UPDATE items SET {sets} WHERE itemID=?", (*params, self.item_id(key)))

    def set_field(self, key: str, field: str, value: str | None) -> None:
        """Change (or with None/"" remove) one field, as an edit in Zotero's item pane does."""
        when = self._edit()
        item_id, field_id = self.item_id(key), self._field_id(field)
        self.conn.execute("DELETE FROM itemData WHERE itemID=? AND fieldID=?", (item_id, field_id))
        if value:
            value_id = self._value_id(self._stored_value(field, value))
            self.flush()
            self.conn.execute(
                "INSERT INTO itemData VALUES (?, ?, ?)", (item_id, field_id, value_id)
            )
        self.touch(key, when)

    def set_note(self, key: str, html: str) -> None:
        """Edit a note's HTML, as Zotero's note editor saves it (the note itself is stamped)."""
        when = self._edit()
        title = re.sub(r"<[^>]+>", "", html)[:80]
        self.conn.execute(
            "UPDATE itemNotes SET note=?, title=? WHERE itemID=?", (html, title, self.item_id(key))
        )
        self.touch(key, when)

    def add_tag(self, key: str, name: str, tag_type: int = 0) -> None:
        when = self._edit()
        tag_id = self._tag_id(name)
        self.flush()
        self.conn.execute(
            "INSERT OR REPLACE INTO itemTags VALUES (?, ?, ?)",
            (self.item_id(key), tag_id, tag_type),
        )
        self.touch(key, when)

    def remove_tag(self, key: str, name: str) -> None:
        when = self._edit()
        self.conn.execute(
            "DELETE FROM itemTags WHERE itemID=? AND tagID=?", (self.item_id(key), self._tags[name])
        )
        self.touch(key, when)

    def add_to_collection(self, key: str, path: str) -> None:
        """Membership changes move only `clientDateModified` (Zotero skips `dateModified`)."""
        when = self._edit()
        cid = self._collection_id(path, self._items[key][1])
        self.flush()
        self.conn.execute(
            "INSERT OR IGNORE INTO collectionItems VALUES (?, ?, 0)", (cid, self.item_id(key))
        )
        self.touch(key, when, date_modified=False)

    def remove_from_collection(self, key: str, path: str) -> None:
        when = self._edit()
        cid = self._collections[(self._items[key][1], path)]
        self.conn.execute(
            "DELETE FROM collectionItems WHERE collectionID=? AND itemID=?",
            (cid, self.item_id(key)),
        )
        self.touch(key, when, date_modified=False)

    def rename_collection(self, path: str, new_name: str, library_id: int = 1) -> None:
        """Rename a collection; only the collection row's `clientDateModified` moves."""
        when = self._edit()
        cid = self._collections.pop((library_id, path))
        self.conn.execute(
            "UPDATE collections SET collectionName=?, clientDateModified=? WHERE collectionID=?",
            (new_name, when, cid),
        )
        parent, _, _ = path.rpartition("/")
        new_path = f"{parent}/{new_name}" if parent else new_name
        for (lib, old), other in list(self._collections.items()):
            if lib == library_id and old.startswith(path + "/"):
                del self._collections[(lib, old)]
                self._collections[(lib, new_path + old[len(path) :])] = other
        self._collections[(library_id, new_path)] = cid

    def relate(self, key_a: str, key_b: str) -> None:
        """Make two items related: Zotero stores `dc:relation` on both, pointing at the other."""
        when = self._edit()
        pid = self._predicate_id("dc:relation")
        self.flush()
        for this, other in ((key_a, key_b), (key_b, key_a)):
            self.conn.execute(
                "INSERT OR IGNORE INTO itemRelations VALUES (?, ?, ?)",
                (self.item_id(this), pid, self.uri(other)),
            )
            self.touch(this, when)

    def trash(self, key: str) -> None:
        when = self._edit()
        self.conn.execute(
            "INSERT OR REPLACE INTO deletedItems VALUES (?, ?)", (self.item_id(key), when)
        )
        self.touch(key, when)

    def restore(self, key: str) -> None:
        when = self._edit()
        self.conn.execute("DELETE FROM deletedItems WHERE itemID=?", (self.item_id(key),))
        self.touch(key, when)

    def erase(self, key: str) -> None:
        """Delete for good, with child attachments, their annotations and notes, as Zotero does.

        Relations pointing at the item are removed from the other items (which are saved), and
        the keys go to `syncDeleteLog`; the rest follows from ON DELETE CASCADE.
        """
        when = self._edit()
        item_id, library_id = self._items[key]
        doomed = [key, *self._children(item_id)]
        uri = self.uri(key)
        for (other_id,) in self.conn.execute(
            "SELECT DISTINCT itemID FROM itemRelations WHERE object=?", (uri,)
        ).fetchall():
            self.conn.execute(
                "DELETE FROM itemRelations WHERE itemID=? AND object=?", (other_id, uri)
            )
            self.touch(self._key_of(other_id), when)
        for doomed_key in reversed(doomed):
            doomed_id = self._items.pop(doomed_key)[0]
            self.conn.execute("DELETE FROM items WHERE itemID=?", (doomed_id,))
            self.conn.execute(
                "INSERT OR REPLACE INTO syncDeleteLog VALUES (3, ?, ?, ?)",
                (library_id, doomed_key, when),
            )

    def _children(self, item_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT i.key FROM items i LEFT JOIN itemAttachments a USING (itemID) "
            "LEFT JOIN itemNotes n USING (itemID) LEFT JOIN itemAnnotations x USING (itemID) "
            "WHERE a.parentItemID=?1 OR n.parentItemID=?1 OR x.parentItemID=?1",
            (item_id,),
        ).fetchall()
        keys = []
        for (child,) in rows:
            keys.append(child)
            keys.extend(self._children(self.item_id(child)))
        return keys

    def _key_of(self, item_id: int) -> str:
        return next(k for k, (i, _) in self._items.items() if i == item_id)

    def set_annotation(self, key: str, **changes: Any) -> None:
        """Edit an annotation (`text`, `comment`, `color`, `page_label`, `sort_index`,
        `position`); like Zotero, only the annotation's own row is stamped, not its parents."""
        when = self._edit()
        columns = {"page_label": "pageLabel", "sort_index": "sortIndex"}
        for name, value in changes.items():
            if isinstance(value, dict):
                value = json.dumps(value, separators=(",", ":"))
            column = columns.get(name, name)
            self.conn.execute(
                f"UPDATE itemAnnotations SET {column}=? WHERE itemID=?", (value, self.item_id(key))
            )
            if f"{column}Normalized" in self._extra_columns("itemAnnotations"):
                self.conn.execute(
                    f"UPDATE itemAnnotations SET {column}Normalized=? WHERE itemID=?",
                    (_normalized(value), self.item_id(key)),
                )
        self.touch(key, when)


# -------------------------------------------------------------------- a running Zotero

_HOLDER_SCRIPT = r"""
import json, sqlite3, sys
sys.path.insert(0, sys.argv[3])
from zotero_db import ZoteroDB

path, journal = sys.argv[1], sys.argv[2]
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA locking_mode=EXCLUSIVE")
if journal == "wal":
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
else:
    conn.execute("PRAGMA journal_mode=DELETE")
conn.execute("BEGIN EXCLUSIVE")
conn.execute("UPDATE settings SET value=value WHERE 0")
conn.execute("COMMIT")
db = ZoteroDB(conn, path, seed=None)  # clock: the real time, like Zotero
print(json.dumps({"ok": True}), flush=True)
for line in sys.stdin:
    command = json.loads(line)
    try:
        if command["op"] == "release":
            break
        if command["op"] == "clock":
            db.set_time(command["when"])
        elif command["op"] == "call":
            if command.get("cache_size"):
                conn.execute(f"PRAGMA cache_size={command['cache_size']}")
            result = getattr(db, command["method"])(*command["args"], **command["kwargs"])
            if command.get("commit", True):
                db.commit()
            else:
                db.flush()
        reply = {"ok": True, "result": result if command["op"] == "call" else None}
    except Exception as exc:
        reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(reply), flush=True)
conn.close()
"""


class LockHolder:
    """The far end of `hold_exclusive_lock`: a process acting as a running Zotero."""

    def __init__(self, process: subprocess.Popen[str], timeout: float) -> None:
        self.process = process
        self.timeout = timeout

    def _reply(self) -> Any:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], self.timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.kill()
            stderr = self.process.stderr.read() if self.process.stderr else ""
            raise RuntimeError(f"lock-holder process gave no answer: {stderr.strip()}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(f"lock-holder process failed: {reply['error']}")
        return reply.get("result")

    def _send(self, command: dict[str, Any]) -> Any:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return self._reply()

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Run a `ZoteroDB` method in the holder and commit it (the lock stays held)."""
        return self._send({"op": "call", "method": method, "args": args, "kwargs": kwargs})

    def call_uncommitted(self, method: str, *args: Any, cache_size: int = 0, **kwargs: Any) -> Any:
        """Run a method inside a transaction left open: a write in progress.

        A small `cache_size` makes SQLite spill dirty pages into the main file before commit,
        leaving a hot rollback journal, as a Zotero stopped mid-write would.
        """
        command = {"op": "call", "method": method, "args": args, "kwargs": kwargs}
        return self._send({**command, "commit": False, "cache_size": cache_size})

    def set_time(self, when: str) -> None:
        self._send({"op": "clock", "when": when})

    def release(self) -> None:
        """Close the connection cleanly (in WAL mode this checkpoints, like quitting Zotero)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            with suppress(BrokenPipeError):
                self.process.stdin.write(json.dumps({"op": "release"}) + "\n")
                self.process.stdin.flush()
            try:
                self.process.wait(self.timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """Stop the process without closing the database (a crash: files stay as they are)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextmanager
def hold_exclusive_lock(
    path: Path | str, journal: str = "delete", *, timeout: float = 20.0
) -> Iterator[LockHolder]:
    """Simulate a running Zotero on `path` until the block ends.

    A separate process opens the database with `PRAGMA locking_mode=EXCLUSIVE`, takes the
    exclusive lock with a write, and keeps it. `journal="wal"` uses WAL with
    `wal_autocheckpoint=0`, so committed edits stay in `<db>-wal` (Zotero 10); `"delete"` is
    the rollback journal (Zotero 7–9). Edits go through `holder.call("set_field", key, …)`.
    It must be a separate process: POSIX locks belong to a process, and any `close()` of the
    file in the same process would silently drop them.
    """
    if journal not in ("delete", "wal"):
        raise ValueError("journal must be 'delete' or 'wal'")
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER_SCRIPT, str(path), journal, str(Path(__file__).parent)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = LockHolder(process, timeout)
    try:
        holder._reply()
        yield holder
    finally:
        holder.release()
        holder.kill()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
