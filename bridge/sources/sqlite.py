"""Read a Zotero library straight from `zotero.sqlite` (and `better-bibtex.sqlite`).

Safety first, because this file belongs to a program that is usually running:
- Zotero holds `PRAGMA locking_mode=EXCLUSIVE`, so even a read-only connection to the live file
  fails with "database is locked" — and any connection we opened could take a lock Zotero
  needs. Zotero 10 runs in WAL mode without a `-shm` file and checkpoints rarely, so committed
  edits can live only in `zotero.sqlite-wal`; an "immutable" open of the live file would miss them.
- So we never open Zotero's files with SQLite. We copy `zotero.sqlite` plus its `-wal` (always:
  it holds committed data) and its `-journal` (only when hot: a write in progress) into a
  private temp directory outside the data directory, and open the *copy*. SQLite then replays
  the WAL, or rolls back a half-written transaction, in the copy only.
- A copy taken while Zotero writes can be torn. Every file's size, mtime, inode and header are
  compared before and after copying, the tables we read are checked with `quick_check`, and a
  damaged or changing snapshot is retried a few times with short sleeps before we give up with
  a `SourceError` that says what to do.
- A hot journal that names a super-journal (a commit spanning attached databases) is never
  opened: SQLite would look for that file inside Zotero's data directory. We retry instead.
- Queries are one scan per table, grouped in Python, never one query per item: 10,000 items
  with a PDF each read in about 0.5 s (1 s with 30,000 annotations) on a modest machine.

Incremental reads (`since` = a previous cursor) return the items whose own
`clientDateModified`, or that of one of their attachments or annotations, collections or trash
entries, is at or after the cursor's newest stamp. Deleted or moved children and Better BibTeX
key changes leave no stamp; digests in the cursor notice them and the read returns everything.
`all_keys` is complete, so permanent deletions show up by comparison. A cursor read asks SQLite
what changed (stamps, digests, the touched items — `_read_changes`) and turns only the changed
items into Python rows, reading their fields, creators, tags, relations and annotations by
itemID: at 10,000 items it costs about a fifth of a full read, most of it the copy and checks.
And when the source files are exactly as the cursor's read fingerprinted them before copying
(size, mtime, inode, header bytes; and settled, every mtime 2 s old then), nothing can have
changed: the read returns at once, copying nothing, with `all_keys` None ("not looked at").
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

from bridge.errors import SchemaVersionError, SourceError
from bridge.model import (
    ANNOTATION_TYPES,
    Annotation,
    Attachment,
    Creator,
    Item,
    Library,
    LibrarySnapshot,
)

DB_NAME = "zotero.sqlite"
BBT_NAME = "better-bibtex.sqlite"
# 120-121 Zotero 6, 122 Zotero 7 betas (adds only file types), 123 Zotero 7/8, 124-128 later
# 7.x-9 steps (extra columns we do not read), 129 Zotero 10. The columns we read are the same.
SUPPORTED_SCHEMAS = frozenset(range(120, 130))
LINK_MODES = ("imported_file", "imported_url", "linked_file", "linked_url", "embedded_image")
NON_REGULAR_TYPES = frozenset({"attachment", "note", "annotation"})
# Fields stored as Zotero multipart dates (`2016-06-00 June 2016`): the global schema's
# date-typed fields and the type-specific fields mapped onto `date`.
DATE_FIELDS = frozenset({"date", "filingDate", "dateDecided", "issueDate", "dateEnacted"})
# Tables we read; `quick_check` covers exactly these, so a torn copy is caught cheaply.
READ_TABLES = (
    "version", "settings", "libraries", "groups", "itemTypesCombined", "fieldsCombined",
    "creatorTypes", "items", "itemData", "itemDataValues", "creators", "itemCreators", "tags",
    "itemTags", "collections", "collectionItems", "itemAttachments", "itemAnnotations",
    "itemRelations", "relationPredicates", "deletedItems",
)  # fmt: skip
# What a cursor read scans whole (or reads in full, being small); only these get `quick_check`
# on that path, see `SqliteSource._read_since`.
CHANGE_TABLES = (
    "version", "settings", "libraries", "groups", "itemTypesCombined", "fieldsCombined",
    "creatorTypes", "items", "collections", "itemAttachments", "itemAnnotations",
    "relationPredicates", "deletedItems",
)  # fmt: skip
SQLITE_MAGIC = b"SQLite format 3\x00"
JOURNAL_MAGIC = bytes.fromhex("d9d505f920a163d7")
CURSOR_PREFIX = "zob-sqlite:"
MAX_BOUNDARY = 500  # items of the cursor's own second whose hashes the cursor keeps
IN_CHUNK = 900  # itemIDs per `IN (...)`: below SQLite's oldest limit of 999 parameters
# An incremental read looks up the details of the items it returns by itemID; beyond this
# share of the library's rows, scanning the tables whole is cheaper.
DETAILS_BY_ID_SHARE = 0.25
ANNOTATION_COLUMNS = (
    "itemID, parentItemID, type, text, comment, color, pageLabel, sortIndex, position"
)
# A file fingerprint only vouches for "nothing changed" once every mtime in it is this much
# older than the moment it was taken: file-system clocks are coarse, and a second write in the
# same tick could keep size and mtime.
SETTLE_NS = 2_000_000_000
# Cursor reads decide what changed in SQL (`_read_changes`); False: always the older way, which
# pulls the light tables into Python (kept for reads that return everything, and for tests).
FAST_CURSOR_READS = True
# A full read of a library with more regular items than this hands them over as a stream
# (`_StreamedItems`): built a chunk at a time from the private copy, never all at once. A
# 50,000-item library's items take ~400 MB as objects; streamed, a sync stays near 200 MB.
STREAM_ITEMS = 20_000
STREAM_CHUNK = 1_000
_MULTIPART = re.compile(r"^\d{4}-\d{2}-\d{2} ")
_SQL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
_EXTRA_CITEKEY = re.compile(r"^\s*citation\s*key\s*:\s*(\S+)\s*$", re.IGNORECASE | re.MULTILINE)
_RELATION_URI = re.compile(
    r"^https?://zotero\.org/(?P<lib>users/(?:local/)?[^/]+|groups/\d+)/items/(?P<key>[0-9A-Z]+)$"
)
_DAMAGE_WORDS = ("malformed", "corrupt", "disk i/o", "database disk image")


class _Unstable(Exception):
    """The files changed while we copied them; the snapshot may be torn."""


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


# ------------------------------------------------------------------------------ snapshots


@dataclass(frozen=True)
class _FileState:
    size: int
    mtime_ns: int
    inode: int
    head: bytes


def _file_state(path: Path) -> _FileState | None:
    """Enough about a file to notice that it changed while we copied it."""
    try:
        stat = path.stat()
        with open(path, "rb") as handle:
            head = handle.read(100)
    except FileNotFoundError:
        return None
    return _FileState(stat.st_size, stat.st_mtime_ns, stat.st_ino, head)


def _wall_ns() -> int:
    """The wall clock, in ns (a function of its own so tests can move it)."""
    return time.time_ns()


class _Entry(NamedTuple):
    """One file or directory of a source fingerprint (`SqliteSource._fingerprint`)."""

    path: str
    exists: bool
    size: int = 0
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0
    head: bytes = b""  # SQLite's header holds the change counter, a WAL's its salts


def _path_entry(path: Path, head: bool) -> _Entry | None:
    """`path` as it is now (with its first 100 bytes when `head`); None when that cannot be
    told, which rules out a fingerprint."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return _Entry(str(path), False)
    except OSError:
        return None
    data = b""
    if head:
        try:
            with open(path, "rb") as handle:
                data = handle.read(100)
        except OSError:  # vanished or replaced since the stat: it is changing
            return None
    return _Entry(
        str(path), True, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, data
    )


def _copy_file(source: Path, target: Path) -> None:
    """Copy bytes only (no metadata, no locks). `copy_file_range` lets the kernel share
    extents (reflink) on filesystems that can, so even a large library copies quickly."""
    with open(source, "rb") as src, open(target, "wb") as dst:
        if hasattr(os, "copy_file_range"):
            try:
                while os.copy_file_range(src.fileno(), dst.fileno(), 1 << 30):
                    pass
                return
            except OSError:
                src.seek(0)
                dst.seek(0)
                dst.truncate()
        shutil.copyfileobj(src, dst, 1 << 20)


def snapshot_database(db_path: Path, target_dir: Path) -> tuple[Path, tuple[object, ...]]:
    """Copy a SQLite database and the side files that carry its committed state.

    Returns the copy's path and the files' states (to tell a changing file from a damaged
    one). Raises `_Unstable` when anything changed during the copy.
    """
    sides = {suffix: Path(f"{db_path}{suffix}") for suffix in ("-wal", "-journal")}
    before = (_file_state(db_path), *(_file_state(p) for p in sides.values()))
    if before[0] is None:
        raise _Unstable(f"{db_path.name} disappeared")
    target = target_dir / db_path.name
    try:
        _copy_file(db_path, target)
        if before[1] is not None:
            _copy_file(sides["-wal"], Path(f"{target}-wal"))
        journal = before[2]
        if journal is not None and journal.head[:8] == JOURNAL_MAGIC:
            # A hot journal: a write is in progress (or Zotero died in one). With it next to
            # the copy, SQLite rolls the copy back to the last committed state.
            _copy_file(sides["-journal"], Path(f"{target}-journal"))
            if _names_super_journal(Path(f"{target}-journal")):
                raise _Unstable("a write spanning several databases is in progress")
    except FileNotFoundError as exc:
        raise _Unstable(f"{Path(exc.filename or '?').name} vanished while being copied") from exc
    after = (_file_state(db_path), *(_file_state(p) for p in sides.values()))
    if before != after:
        raise _Unstable(f"{db_path.name} changed while being copied")
    return target, before


def _names_super_journal(journal: Path) -> bool:
    """Whether a hot journal points at a super-journal (a commit across attached databases,
    e.g. Zotero with Better BibTeX's file). SQLite would go and look for that file — inside
    Zotero's data directory — to decide whether to roll back, so such a copy is never opened;
    the attempt is retried until the commit is over. The pointer ends with the journal magic.
    """
    size = journal.stat().st_size
    if size < 24:
        return False
    with open(journal, "rb") as handle:
        handle.seek(size - 8)
        return handle.read(8) == JOURNAL_MAGIC


def _decode_text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _open_copy(path: Path, label: str) -> sqlite3.Connection:
    """Open a private copy. It is opened read-write only so SQLite can replay its WAL or roll
    back a hot journal; after that first read the connection is made query-only."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if not head:
        raise SourceError(
            f"{label} is empty (0 bytes): it is not a Zotero database",
            "check --zotero-dir; Zotero keeps backups as zotero.sqlite.bak",
        )
    if head != SQLITE_MAGIC:
        raise SourceError(
            f"{label} is not a Zotero database: file is not a database (not SQLite at all)",
            "check --zotero-dir: it must be Zotero's data directory (Zotero → Settings → "
            "Advanced → Files and Folders) or its zotero.sqlite",
        )
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Invalid UTF-8 (a broken import or plugin) must cost a character, not the whole read.
    conn.text_factory = _decode_text
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        conn.execute("PRAGMA query_only=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _check_tables(conn: sqlite3.Connection, tables: Iterable[str]) -> None:
    """`quick_check` limited to the tables we read: finds a torn copy without paying for the
    full-text index, which is most of a large Zotero database."""
    if sqlite3.sqlite_version_info < (3, 33, 0):  # no per-table form: check everything
        checks = ["PRAGMA quick_check"]
    else:
        present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
        checks = [f"PRAGMA quick_check({table})" for table in tables if table in present]
    for check in checks:
        result = conn.execute(check).fetchone()[0]
        if result != "ok":
            raise sqlite3.DatabaseError(f"database disk image is malformed ({result})")


class _BackgroundCheck:
    """`_check_tables` on a second connection to a copy, in a thread, while the first
    connection reads: SQLite lets go of the GIL while it works, so with two cores the check
    costs next to nothing. Start it once the first connection has opened the copy (and so
    replayed its WAL or rolled back its hot journal); `wait()` before trusting the read."""

    def __init__(self, copy: Path, label: str, tables: Iterable[str]) -> None:
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if sqlite3.threadsafety == 0:  # pragma: no cover - a single-threaded SQLite build
            self._run(copy, label, tuple(tables))
            return
        self._thread = threading.Thread(
            target=self._run, args=(copy, label, tuple(tables)), name="zob-quick-check"
        )
        self._thread.daemon = True
        self._thread.start()

    def _run(self, copy: Path, label: str, tables: tuple[str, ...]) -> None:
        try:
            with closing(_open_copy(copy, label)) as conn:
                _check_tables(conn, tables)
        except BaseException as exc:  # handed to the reading thread by `wait`
            self._error = exc

    def join(self) -> BaseException | None:
        """Wait for the check; its error (None: the tables are fine)."""
        if self._thread is not None:
            self._thread.join()
        return self._error

    def wait(self) -> None:
        """Wait for the check and raise what it found."""
        error = self.join()
        if error is not None:
            raise error


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    text = str(exc).lower()
    return any(word in text for word in _DAMAGE_WORDS)


# ------------------------------------------------------------------------------ cursor


@dataclass(frozen=True)
class _Cursor:
    """What a read remembers: the newest local-save time it saw, the highest itemID, and
    digests that reveal what timestamps cannot (a deleted or moved attachment/annotation does
    not touch its parent; Better BibTeX keys have no timestamps).

    Zotero stamps with one-second steps, and a transaction is stamped when it starts, so an
    edit committed after the snapshot can carry the cursor's own second: the next read must
    compare with `>=`. To avoid re-sending the items of that second forever, `boundary` holds
    a content hash of each of them; one whose content is unchanged is left out next time.
    """

    library_id: int
    time: str
    max_item_id: int
    children: str
    bbt: str
    boundary: dict[str, str] = field(default_factory=dict, hash=False)
    images: str = ""  # digest of which image/ink annotations have a cached PNG
    # The source files' fingerprint, taken before they were copied, when it was settled
    # (`SqliteSource._fingerprint`); "" = none. Equal next time: nothing can have changed.
    files: str = ""
    kind: str = "user"  # the library read, so an unchanged read can say so without reading
    group_id: int | None = None

    @classmethod
    def of(
        cls,
        info: _LibraryInfo,
        *,
        time: str,
        max_item_id: int,
        children: str,
        bbt_keys: dict[str, str],
        boundary: dict[str, str],
        images: str,
        files: str,
    ) -> _Cursor:
        """The cursor of a read of `info`'s library (full, streamed or by SQL)."""
        return cls(
            library_id=info.library_id, time=time, max_item_id=max_item_id,
            children=children, bbt=_bbt_digest(bbt_keys), boundary=boundary, images=images,
            files=files, kind=info.library.kind, group_id=info.library.group_id,
        )  # fmt: skip

    def encode(self) -> str:
        payload = {
            "lib": self.library_id,
            "t": self.time,
            "id": self.max_item_id,
            "ch": self.children,
            "bbt": self.bbt,
            "edge": self.boundary,
            "img": self.images,
            "fp": self.files,
            "kind": self.kind,
            "gid": self.group_id,
        }
        return CURSOR_PREFIX + json.dumps(payload, separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, text: str) -> _Cursor | None:
        if not text.startswith(CURSOR_PREFIX):
            return None
        try:
            data = json.loads(text[len(CURSOR_PREFIX) :])
            edge = {str(k): str(v) for k, v in dict(data["edge"]).items()}
            group_id = data.get("gid")
            return cls(
                int(data["lib"]),
                str(data["t"]),
                int(data["id"]),
                str(data["ch"]),
                str(data["bbt"]),
                edge,
                str(data.get("img", "")),
                str(data.get("fp", "")),  # older cursors have none: they never short-circuit
                str(data.get("kind", "user")),
                None if group_id is None else int(group_id),
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def is_after(self, stamp: str) -> bool:
        """Whether a Zotero timestamp may belong to an edit this cursor's read did not see."""
        return stamp >= self.time

    @property
    def library(self) -> Library:
        return Library(self.kind, self.group_id)


def _item_hash(item: Item) -> str:
    """Content hash of a model item (its repr covers fields, children and annotations)."""
    return hashlib.blake2b(repr(item).encode(), digest_size=8).hexdigest()


_P = 2_147_483_647  # a prime: `_children_digest`'s products stay below SQLite's 2**63


def _children_digest(rows: Iterable[tuple[int, str, int | None]], max_item_id: int) -> str:
    """Digest of (itemID, parent) of the children up to `max_item_id`: the count and three
    sums, so SQLite computes the same per table, in any order (`_children_digests`). Equal
    digests mean no child that existed then was erased (the count) or moved (the sum of
    parents; two children swapping parents change the sum of products) since; a new or
    edited child has a stamp of its own."""
    count = ids = parents = products = 0
    for item_id, _key, parent in rows:
        if item_id <= max_item_id:
            count += 1
            ids += item_id
            parents += parent or 0
            products += item_id * (parent or 0) % _P
    return f"{count}:{ids}:{parents}:{products}"


def _bbt_digest(keys: dict[str, str]) -> str:
    text = "\n".join(f"{k}={v}" for k, v in sorted(keys.items()))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _images_digest(keys: Iterable[str]) -> str:
    text = "\n".join(sorted(keys))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


# ------------------------------------------------------------------------------ reading


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
    q = conn.execute
    mine = rows.items.keys() if ids is None else frozenset(ids) & rows.items.keys()
    if ids is None:
        parts: Iterable[tuple[str, list[int]]] = [("", [])]
    else:
        parts = list(_chunks(mine))

    def select(sql: str, where: str) -> Iterable[tuple]:
        for marks, part in parts:
            yield from q(
                sql.format(where=f"{where} IN ({marks})" if ids is not None else "1"), part
            )

    field_names = dict(q("SELECT fieldID, fieldName FROM fieldsCombined"))
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
    _query_creators(conn, rows, mine, None if ids is None else parts)
    if ids is None:
        tag_names = dict(q("SELECT tagID, name FROM tags"))
        for item_id, tag_id in q("SELECT itemID, tagID FROM itemTags"):
            if item_id in mine and tag_id in tag_names:
                rows.tags[item_id].append(tag_names[tag_id])
    else:
        for item_id, name in select(
            "SELECT it.itemID, t.name FROM itemTags it JOIN tags t ON t.tagID = it.tagID "
            "WHERE {where}",
            "it.itemID",
        ):
            rows.tags[item_id].append(name)
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


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)
    ).fetchone()
    return found is not None


def _keys_by_id(conn: sqlite3.Connection, library_id: int) -> dict[int, str]:
    return dict(conn.execute("SELECT itemID, key FROM items WHERE +libraryID = ?", (library_id,)))


def _read_bbt(
    conn: sqlite3.Connection, library_id: int, keys_by_id: Callable[[], dict[int, str]]
) -> dict:
    """Better BibTeX 7 keys: `citationkey(itemID, itemKey, libraryID, citationKey, pinned)`,
    matched on (libraryID, itemKey) — itemIDs are only meaningful inside one database."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(citationkey)")}
    if not columns:
        raise LookupError("no citationkey table (Better BibTeX older than 7?)")
    result: dict[str, str] = {}
    if {"itemKey", "libraryID"} <= columns:
        for key, lib, citekey in conn.execute(
            "SELECT itemKey, libraryID, citationKey FROM citationkey"
        ):
            if citekey and (lib is None or lib == library_id):
                result[str(key)] = str(citekey)
    else:
        keys = keys_by_id()
        for item_id, citekey in conn.execute("SELECT itemID, citationKey FROM citationkey"):
            if citekey and item_id in keys:
                result[keys[item_id]] = str(citekey)
    return result


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


# ------------------------------------------------------------------------------ changes, in SQL
#
# A cursor read asks SQLite what changed instead of pulling the light tables into Python:
# each function below computes in one query what `_Builder` computes from `_Rows` (same
# values: `test_sqlite_fastpath.py` compares them).


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

    @property
    def params(self) -> dict[str, object]:
        return {f"nr{n}": tid for n, tid in enumerate(self.other)}

    @property
    def sql_positional(self) -> str:
        """With `?` placeholders, for `other`."""
        return "NOT IN (" + ",".join("?" * len(self.other)) + ")"


# `_children_digest`'s count and sums for one table of children with itemIDs in (:a, :b]
_CHILD_SUMS = (
    "SELECT count(*), sum(c.itemID), sum(c.parentItemID), "
    f"sum(c.itemID * ifnull(c.parentItemID, 0) % {_P}) "
    "FROM {table} c {join} WHERE c.itemID > :a AND c.itemID <= :b {where}"
)


def _children_digests(conn: sqlite3.Connection, library_id: int, *max_ids: int) -> dict[int, str]:
    """`_children_digest` up to each of `max_ids` (one or two: the old and the new cursor's).
    The sums add up, so the larger one is the smaller plus the children in between: each
    table is scanned once, by itemID. A join to `items` (a lookup per child: ~40 ms at 40,000
    children) is made only when the database holds items of other libraries (groups, feeds)."""
    lo, hi = min(max_ids), max(max_ids)
    first, last = conn.execute(
        "SELECT (SELECT min(libraryID) FROM items), (SELECT max(libraryID) FROM items)"
    ).fetchone()
    alone = first is None or first == last == library_id
    join = "" if alone else "JOIN items i ON i.itemID = c.itemID"
    where = "" if alone else "AND +i.libraryID = :lib"
    result: dict[int, str] = {}
    totals = [0, 0, 0, 0]
    for start, end in ((-1, lo), (lo, hi)):
        if start == lo and lo == hi:
            break
        for table in ("itemAttachments", "itemAnnotations"):
            sql = _CHILD_SUMS.format(table=table, join=join, where=where)
            row = conn.execute(sql, {"a": start, "b": end, "lib": library_id}).fetchone()
            totals = [total + (value or 0) for total, value in zip(totals, row, strict=True)]
        result[end] = ":".join(map(str, totals))
    result[hi] = ":".join(map(str, totals))
    return result


def _library_stamps(conn: sqlite3.Connection, library_id: int) -> tuple[int, int, str]:
    """(number of items, highest itemID, newest item/trash stamp): `_Builder.newest_stamp`
    without the collections, which the caller has in hand. Separate queries, so SQLite can
    answer each in its quickest way."""
    q = conn.execute
    (count,) = q("SELECT count(*) FROM items WHERE libraryID = ?", (library_id,)).fetchone()
    (max_id,) = q("SELECT max(itemID) FROM items WHERE +libraryID = ?", (library_id,)).fetchone()
    # '' sorts first: a max of '' means no stamp at all, as for `newest_stamp`
    (newest,) = q(
        "SELECT max(CAST(clientDateModified AS TEXT)) FROM items WHERE +libraryID = ?",
        (library_id,),
    ).fetchone()
    (trashed,) = q(
        "SELECT max(CAST(d.dateDeleted AS TEXT)) FROM deletedItems d "
        "CROSS JOIN items i ON i.itemID = d.itemID WHERE +i.libraryID = ?",
        (library_id,),
    ).fetchone()
    return count, max_id or 0, max(newest or "", trashed or "")


# `_Builder.touched` for items and trash entries: every stamp at or after `:t`, with the
# regular item it belongs to (`_Builder._top`: annotation → attachment → parent, two steps,
# each only through rows of this library; an attachment without a parent stays itself).
_TOUCHED_SQL = """
WITH stamped(id, stamp) AS (
    SELECT itemID, ifnull(CAST(clientDateModified AS TEXT), 'None') FROM items
    WHERE +libraryID = :lib AND ifnull(CAST(clientDateModified AS TEXT), 'None') >= :t
    UNION ALL
    SELECT d.itemID, ifnull(CAST(d.dateDeleted AS TEXT), '') FROM deletedItems d
    CROSS JOIN items i ON i.itemID = d.itemID
    WHERE +i.libraryID = :lib AND ifnull(CAST(d.dateDeleted AS TEXT), '') >= :t
), hop1(id, stamp) AS (
    SELECT CASE WHEN an.itemID IS NOT NULL THEN an.parentItemID
                WHEN at.parentItemID THEN at.parentItemID ELSE s.id END, s.stamp
    FROM stamped s
    LEFT JOIN itemAnnotations an ON an.itemID = s.id
    LEFT JOIN itemAttachments at ON at.itemID = s.id
), hop2(id, stamp) AS (
    SELECT CASE WHEN mine.itemID IS NULL THEN h.id
                WHEN an.itemID IS NOT NULL THEN an.parentItemID
                WHEN at.parentItemID THEN at.parentItemID ELSE h.id END, h.stamp
    FROM hop1 h
    LEFT JOIN items mine ON mine.itemID = h.id AND +mine.libraryID = :lib
    LEFT JOIN itemAnnotations an ON an.itemID = h.id
    LEFT JOIN itemAttachments at ON at.itemID = h.id
)
SELECT h.id, h.stamp FROM hop2 h JOIN items r ON r.itemID = h.id
WHERE +r.libraryID = :lib AND r.itemTypeID {regular}
"""


def _touched_rows(
    conn: sqlite3.Connection, library_id: int, regular: _Regular, since: str
) -> list[tuple[int, str]]:
    """(regular item, stamp) for every item or trash stamp at or after `since`."""
    sql = _TOUCHED_SQL.format(regular=regular.sql)
    return conn.execute(sql, {"lib": library_id, "t": since, **regular.params}).fetchall()


def _collection_members(
    conn: sqlite3.Connection, library_id: int, regular: _Regular, cids: Collection[int]
) -> set[int]:
    """The regular items of the library in any of the collections `cids`."""
    found: set[int] = set()
    for marks, part in _chunks(cids):
        found.update(
            item_id
            for (item_id,) in conn.execute(
                "SELECT DISTINCT ci.itemID FROM collectionItems ci "
                "JOIN items r ON r.itemID = ci.itemID "
                f"WHERE ci.collectionID IN ({marks}) AND +r.libraryID = ? "
                f"AND r.itemTypeID {regular.sql_positional}",
                [*part, library_id, *regular.other],
            )
        )
    return found


def _cached_image_keys(
    conn: sqlite3.Connection, library_id: int, image_dir: Path | None
) -> set[str]:
    """`_Builder.cached_images`: image/ink annotations of the library with a rendered PNG."""
    if image_dir is None or not image_dir.is_dir():
        return set()
    keys = conn.execute(
        "SELECT i.key FROM itemAnnotations n CROSS JOIN items i ON i.itemID = n.itemID "
        "WHERE +i.libraryID = ? AND n.type IN (3, 4)",
        (library_id,),
    )
    return {key for (key,) in keys if (image_dir / f"{key}.png").is_file()}


def _regular_keys(conn: sqlite3.Connection, library_id: int, regular: _Regular) -> frozenset[str]:
    """`all_keys`: the key of every regular item of the library (trashed ones too)."""
    where = f"FROM items WHERE +libraryID = :lib AND itemTypeID {regular.sql}"
    params = {"lib": library_id, **regular.params}
    # One string is cheaper than 10,000 rows; keys hold no NUL, which the count makes sure of.
    count, joined = conn.execute(
        f"SELECT count(*), group_concat(key, char(0)) {where}", params
    ).fetchone()
    keys = joined.split("\0") if joined is not None else []
    if len(keys) != count:
        keys = [key for (key,) in conn.execute(f"SELECT key {where}", params)]
    return frozenset(keys)


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
    attachments = [
        row
        for marks, part in (_chunks(ids) if children else ())
        for row in q(
            "SELECT a.itemID, a.parentItemID, a.linkMode, a.contentType, a.path "
            "FROM itemAttachments a JOIN items i ON i.itemID = a.itemID "
            f"WHERE a.parentItemID IN ({marks}) AND +i.libraryID = ?",
            [*part, library_id],
        )
    ]
    family = set(ids) | {row[0] for row in attachments}
    for marks, part in _chunks(family):
        for item_id, when in q(
            f"SELECT itemID, dateDeleted FROM deletedItems WHERE itemID IN ({marks})", part
        ):
            rows.trashed[item_id] = str(when or "")
    for item_id, parent, mode, content_type, path in attachments:
        if parent is not None and item_id not in rows.trashed:
            rows.attachments[item_id] = (parent, mode, content_type or "", path or "")
    family = set(ids) | rows.attachments.keys()
    for marks, part in _chunks(rows.attachments):
        for item_id, parent, kind in q(
            "SELECT n.itemID, n.parentItemID, n.type FROM itemAnnotations n "
            "JOIN items i ON i.itemID = n.itemID "
            f"WHERE n.parentItemID IN ({marks}) AND +i.libraryID = ?",
            [*part, library_id],
        ):
            rows.annotations[item_id] = (parent, kind)
            family.add(item_id)
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


class _Builder:
    """Turns grouped rows into model objects, and works out what changed since a cursor."""

    def __init__(
        self,
        rows: _Rows,
        info: _LibraryInfo,
        bbt_keys: dict[str, str],
        image_dir: Path | None = None,
        loader: Callable[[Collection[int] | None], None] | None = None,
        cached_images: set[str] | None = None,
    ) -> None:
        self.rows = rows
        self.loader = loader  # adds details (`_query_details`) when `rows` were read light
        self._detailed: set[int] | None = None  # items with details, when not all have them
        self._digests: dict[int, str] = {}
        self.info = info
        self.bbt_keys = bbt_keys
        self.image_dir = image_dir
        self._cached_images = cached_images  # known already when `rows` are a few items'
        self.warnings: list[str] = []
        self.regular = [
            item_id
            for item_id, (_, type_name, *_rest) in rows.items.items()
            if type_name not in NON_REGULAR_TYPES
        ]
        self.children: dict[int, list[int]] = defaultdict(list)
        for att_id, (parent, *_rest) in rows.attachments.items():
            if parent is not None and att_id not in rows.trashed:
                self.children[parent].append(att_id)
        self.annotations_of: dict[int, list[int]] = defaultdict(list)
        for ann_id, (att_id, *_rest) in rows.annotations.items():
            self.annotations_of[att_id].append(ann_id)

    def load_details(self, item_ids: Collection[int] | None) -> None:
        """Make `item(i)` possible for each of `item_ids` (None: every item): their details,
        and those of their attachments and annotations, are read if they were not yet."""
        if self.loader is None:
            return
        family: set[int] | None = None
        if item_ids is not None:
            family = set(item_ids)
            for item_id in item_ids:
                for att_id in self.children.get(item_id, ()):
                    family.add(att_id)
                    family.update(self.annotations_of.get(att_id, ()))
            if len(family) > DETAILS_BY_ID_SHARE * len(self.rows.items):
                family = None
        self.loader(family)
        self.loader = None  # a second load would add creators, tags… twice
        self._detailed = family

    # -- cursor

    def newest_stamp(self) -> str:
        """The newest local-save time anywhere in the library (items of every kind,
        collections, trash)."""
        rows = self.rows
        times = [row[4] for row in rows.items.values()]
        times += rows.collection_times.values()
        times += rows.trashed.values()
        return max((str(t) for t in times if t), default="")

    def cursor(self, newest: str, boundary: dict[str, str], files: str = "") -> _Cursor:
        max_item_id = max(self.rows.items, default=0)
        return _Cursor.of(
            self.info, time=newest, max_item_id=max_item_id,
            children=self._children_digest(max_item_id), bbt_keys=self.bbt_keys,
            boundary=boundary, images=self.images_digest(), files=files,
        )  # fmt: skip

    def _child_rows(self) -> Iterable[tuple[int, str, int | None]]:
        rows = self.rows
        for table in (rows.attachments, rows.annotations):
            for item_id, (parent, *_rest) in table.items():
                yield item_id, rows.items[item_id][0], parent

    def _children_digest(self, max_item_id: int) -> str:
        if max_item_id not in self._digests:  # the old and new cursor's are usually the same
            self._digests[max_item_id] = _children_digest(self._child_rows(), max_item_id)
        return self._digests[max_item_id]

    def needs_full_read(self, old: _Cursor) -> bool:
        """Changes timestamps cannot show: deleted/moved children, Better BibTeX edits."""
        return (
            old.library_id != self.info.library_id
            or self._children_digest(old.max_item_id) != old.children
            or _bbt_digest(self.bbt_keys) != old.bbt
            or self.images_digest() != old.images
        )

    def cached_images(self) -> set[str]:
        """Keys of image/ink annotations whose rendered PNG is in Zotero's cache.

        Zotero renders that PNG some time after the annotation is saved, touching no row, so
        the set itself goes into the cursor: a new image shows up on the next sync."""
        if self._cached_images is None:
            self._cached_images = set()
            if self.image_dir is not None and self.image_dir.is_dir():
                for ann_id, row in self.rows.annotations.items():
                    key = self.rows.items[ann_id][0]
                    if row[1] in (3, 4) and (self.image_dir / f"{key}.png").is_file():
                        self._cached_images.add(key)
        return self._cached_images

    def images_digest(self) -> str:
        return _images_digest(self.cached_images())

    def touched(self, stamped: Callable[[str], bool]) -> set[int]:
        """Regular items saved at a matching time, or whose attachments, annotations,
        collections (renamed or moved) or trash state changed then."""
        rows = self.rows
        changed: set[int] = set()
        for item_id, (_, _, _, _, client_modified, _) in rows.items.items():
            if stamped(str(client_modified)):
                changed.add(self._top(item_id))
        for item_id, when in rows.trashed.items():
            if stamped(when):
                changed.add(self._top(item_id))
        moved = {cid for cid, when in rows.collection_times.items() if stamped(when)}
        if moved:
            for item_id, cids in rows.collections.items():
                if any(self._under(cid, moved) for cid in cids):
                    changed.add(item_id)
        return changed

    def _top(self, item_id: int) -> int:
        """Walk annotation → attachment → parent item."""
        for _ in range(2):
            if item_id in self.rows.annotations:
                item_id = self.rows.annotations[item_id][0]
            elif item_id in self.rows.attachments and self.rows.attachments[item_id][0]:
                item_id = self.rows.attachments[item_id][0]
            else:
                break
        return item_id

    def _under(self, cid: int, moved: set[int]) -> bool:
        return _under(self.rows.collection_parents, cid, moved)

    # -- model objects

    def item(self, item_id: int, *, children: bool = True) -> Item:
        """The model item; without `children`, no attachments (nor their annotations)."""
        if self.loader is not None or (
            self._detailed is not None and item_id not in self._detailed
        ):
            raise RuntimeError(f"item {item_id} was built before its details were read")
        rows = self.rows
        key, type_name, added, modified, _, version = rows.items[item_id]
        fields = dict(rows.fields.get(item_id, {}))
        paths = {
            rows.collection_paths[cid]
            for cid in rows.collections.get(item_id, ())
            if cid in rows.collection_paths
        }
        attachments = self._ordered(self.children.get(item_id, ())) if children else []
        return Item(
            key=key,
            item_type=type_name,
            fields=fields,
            creators=tuple(rows.creators.get(item_id, ())),
            tags=_tag_tuple(rows.tags.get(item_id)),
            collections=tuple(sorted(paths)),
            attachments=tuple(self._attachment(att_id) for att_id in attachments),
            related=self._related(item_id),
            citation_key=self._citation_key(key, fields),
            trashed=item_id in rows.trashed,
            date_added=_iso(added),
            date_modified=_iso(modified),
            library=self.info.library,
            version=int(version),
        )

    def _ordered(self, item_ids: Iterable[int]) -> list[int]:
        return sorted(item_ids, key=lambda i: (str(self.rows.items[i][2]), self.rows.items[i][0]))

    def _attachment(self, att_id: int) -> Attachment:
        _, mode, content_type, path = self.rows.attachments[att_id]
        annotations = [self._annotation(a, att_id) for a in self.annotations_of.get(att_id, ())]
        kept = sorted((a for a in annotations if a), key=lambda a: (a.sort_index, a.key))
        return Attachment(
            key=self.rows.items[att_id][0],
            title=self.rows.fields.get(att_id, {}).get("title", ""),
            content_type=content_type,
            link_mode=_link_mode(mode),
            path=path,
            annotations=tuple(kept),
        )

    def _annotation(self, ann_id: int, att_id: int) -> Annotation | None:
        row = self.rows.annotations[ann_id]
        _, kind, text, comment, color, page_label, sort_index, position = row
        key, _, added, modified, _, _ = self.rows.items[ann_id]
        if not isinstance(kind, int) or not 1 <= kind <= len(ANNOTATION_TYPES):
            self.warnings.append(f"annotation {key}: unknown annotation type {kind!r}, skipped")
            return None
        return Annotation(
            key=key,
            attachment_key=self.rows.items[att_id][0],
            annotation_type=ANNOTATION_TYPES[kind - 1],
            text=text or "",
            comment=comment or "",
            color=(color or "#ffd400").lower(),
            page_label=page_label or "",
            sort_index=sort_index or "",
            position=position or "",
            tags=_tag_tuple(self.rows.tags.get(ann_id)),
            date_added=_iso(added),
            date_modified=_iso(modified),
            image_path=str(self.image_dir / f"{key}.png")
            if self.image_dir is not None and key in self.cached_images()
            else "",
        )

    def _related(self, item_id: int) -> tuple[str, ...]:
        keys = set()
        for uri in self.rows.relations.get(item_id, ()):
            match = _RELATION_URI.match(uri)
            if match and self.info.uri_part.match(match["lib"]):
                keys.add(match["key"])
        return tuple(sorted(keys))

    def _citation_key(self, key: str, fields: dict[str, str]) -> str:
        """Native `citationKey` field, then Better BibTeX's database, then `Citation Key:` in
        Extra — the order in which each one is authoritative."""
        if fields.get("citationKey", "").strip():
            return fields["citationKey"].strip()
        if key in self.bbt_keys:
            return self.bbt_keys[key]
        match = _EXTRA_CITEKEY.search(fields.get("extra", ""))
        return match[1] if match else ""


# ------------------------------------------------------------------------------ the source


# what `paper_stem` and `item_edges` read of an item's fields (with its key, creators and
# tags), and `_Builder._citation_key`
NAMING_FIELDS = frozenset({"title", "date", "citationKey", "extra"})


class _StreamedItems(Sequence[Item]):
    """A full read's items, built `STREAM_CHUNK` at a time from the private copy each time
    they are gone through, so they are never all in memory at once: each chunk reads its
    items' rows, their attachments' and annotations' (`_query_family`) and their details,
    and lets them go with the chunk. Only the regular items' IDs and the collection tree
    stay (a 50,000-item library's light rows alone held ~100 MB).

    Holds the copy's connection and temp directory open until `close()` (or until it is
    garbage-collected). `heads()` goes through the items for naming notes only: without
    their attachments, annotations and relations, and with only the fields a note's name
    and its methods come from (`NAMING_FIELDS`): a 50,000-item library's naming pass read
    every detail of every item again. A read error while streaming is a
    `SourceError`, as during `read()`; items that fail to build add to `warnings`."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        temp: tempfile.TemporaryDirectory[str],
        make_builder: Callable[[_Rows], _Builder],
        regular: _Regular,
        tree: _Rows,
        item_ids: list[int],
        library_id: int,
        label: str,
    ) -> None:
        self._conn = conn
        self._make_builder = make_builder
        self._regular = regular
        self._tree = tree  # the collection tree (paths, parents, times), shared by the chunks
        self._ids = item_ids
        self._library_id = library_id
        self._label = label
        self.warnings: list[str] = []
        self._finalizer = weakref.finalize(self, _close_stream, conn, temp)

    def __len__(self) -> int:
        return len(self._ids)

    def __getitem__(self, index: Any) -> Any:  # Sequence's protocol; slices are rare
        if isinstance(index, slice):
            return tuple(self._build(self._ids[index], children=True))
        return next(iter(self._build([self._ids[index]], children=True)))

    def __iter__(self) -> Iterator[Item]:
        return self._build(self._ids, children=True)

    def __eq__(self, other: object) -> bool:  # as the tuple a whole read returns would be
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def heads(self) -> Iterator[Item]:
        return self._build(self._ids, children=False)

    def build(self, item_ids: list[int]) -> Iterator[Item]:
        return self._build(item_ids, children=True)

    def close(self) -> None:
        self._finalizer()

    def _build(self, item_ids: list[int], *, children: bool) -> Iterator[Item]:
        tree = self._tree
        for start in range(0, len(item_ids), STREAM_CHUNK):
            part = item_ids[start : start + STREAM_CHUNK]
            rows = _Rows(
                collection_paths=tree.collection_paths,
                collection_times=tree.collection_times,
                collection_parents=tree.collection_parents,
            )
            try:
                family = _query_family(
                    self._conn, self._library_id, self._regular, rows, set(part),
                    children=children,
                )  # fmt: skip
                _query_details(
                    self._conn, rows, family, annotations=children,
                    only_fields=None if children else NAMING_FIELDS,
                )  # fmt: skip
            except sqlite3.Error as exc:
                raise SourceError(
                    f"cannot read {self._label} while syncing: {exc}",
                    "run the sync again; if this persists, check the disk",
                ) from exc
            builder = self._make_builder(rows)
            built = [builder.item(item_id, children=children) for item_id in part]
            self.warnings.extend(builder.warnings)
            del rows, builder  # the chunk's rows go before the next chunk's are read
            yield from built


def _regular_ids(conn: sqlite3.Connection, library_id: int, regular: _Regular) -> list[int]:
    """The regular items of the library, in itemID order (`_Builder.regular`'s order)."""
    found = conn.execute(
        f"SELECT itemID FROM items WHERE +libraryID = :lib AND itemTypeID {regular.sql} "
        "ORDER BY itemID",
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


def _close_stream(conn: sqlite3.Connection, temp: tempfile.TemporaryDirectory[str]) -> None:
    conn.close()
    temp.cleanup()


class SqliteSource:
    """A Zotero data directory read through private snapshots of its SQLite files.

    `data_dir` is Zotero's data directory (holding `zotero.sqlite`, maybe
    `better-bibtex.sqlite`) or the path of the `.sqlite` file itself. `library_id` is Zotero's
    internal libraryID (default: the user's own library; groups have their own IDs).
    """

    name = "sqlite"

    def __init__(
        self,
        data_dir: Path | str,
        *,
        library_id: int | None = None,
        attempts: int = 5,
        retry_delay: float = 0.05,
    ) -> None:
        path = Path(data_dir).expanduser()
        if path.suffix == ".sqlite" or path.is_file():
            self.db_path, self.data_dir = path, path.parent
        else:
            self.db_path, self.data_dir = path / DB_NAME, path
        self.library_id = library_id
        self.attempts = max(1, attempts)
        self.retry_delay = retry_delay

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """Read the library (everything, or what changed since the cursor `since`).

        The returned cursor is opaque. `all_keys` lists every regular item key so the caller
        can detect permanent deletions — except when nothing at all changed since `since`
        (the source files are exactly as when that cursor's read fingerprinted them): then
        the read returns at once, without copying anything, with no items, `all_keys` None
        (not looked at) and `since` as its cursor. Raises `SourceError` (never a raw sqlite3
        error) when the files are missing, not Zotero's, damaged, or kept changing.
        """
        self._check_location()
        temp_root = self._temp_root()
        unchanged = self._unchanged(since)
        if unchanged is not None:
            return unchanged
        last_problem = ""
        previous_state: tuple[object, ...] | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.retry_delay * (2 ** (attempt - 1)))
            state: tuple[object, ...] | None = None
            temp = tempfile.TemporaryDirectory(prefix="zob-zotero-", dir=temp_root)
            kept = False
            try:
                tmp = Path(temp.name)
                # Fingerprinted before copying: the copy holds at least what it vouches for.
                taken, db_files = _wall_ns(), self._db_entries()
                copy, state = snapshot_database(self.db_path, tmp)
                fingerprint = partial(self._fingerprint_with, taken, db_files)
                snapshot = self._read_copy(copy, tmp, since, fingerprint, temp)
                kept = isinstance(snapshot.items, _StreamedItems)  # it owns the copy now
                return snapshot
            except _Unstable as exc:
                last_problem = str(exc)
            except sqlite3.DatabaseError as exc:
                if not _is_damage(exc):
                    raise self._database_error(exc) from None
                last_problem = f"{exc}"
                if state is not None and state == previous_state:
                    break  # same bytes, same damage: retrying will not help
            except OSError as exc:
                raise SourceError(
                    f"cannot read {self.db_path}: {exc.strerror or exc}",
                    "check the path and its permissions",
                ) from None
            finally:
                if not kept:
                    temp.cleanup()
            previous_state = state
        raise SourceError(
            f"could not take a consistent snapshot of {self.db_path}: {last_problem}",
            "if Zotero is busy (syncing, importing), try again in a moment; if this persists, "
            "quit Zotero and run Help → Troubleshooting → Check Database Integrity, or restore "
            "zotero.sqlite.bak",
        )

    # -- nothing changed?

    def _unchanged(self, since: str | None) -> LibrarySnapshot | None:
        """The answer to `read(since)` when the source files are exactly as `since`'s read
        found them before copying, and were settled then: nothing can have changed."""
        old = _Cursor.decode(since) if since is not None else None
        if old is None or not old.files:
            return None
        taken = _wall_ns()
        files = self._fingerprint(taken, self._db_entries() + self._side_entries(old.library))
        if files != old.files:
            return None
        return LibrarySnapshot(
            items=(),
            all_keys=None,  # not looked at: the caller skips its deletion checks
            cursor=since,
            library=old.library,
            source_name=self.name,
            incremental=True,
        )

    def _db_entries(self) -> list[_Entry | None]:
        db = self.db_path
        return [_path_entry(Path(f"{db}{suffix}"), True) for suffix in ("", "-wal", "-journal")]

    def _side_entries(self, library: Library) -> list[_Entry | None]:
        """Better BibTeX's files and the image cache of `library` (a new PNG adds an entry,
        which moves the directory's mtime)."""
        bbt = self.data_dir / BBT_NAME
        files = [_path_entry(Path(f"{bbt}{suffix}"), True) for suffix in ("", "-wal", "-journal")]
        return [*files, _path_entry(self._image_dir(library), False)]

    def _fingerprint_with(self, taken: int, db_files: list[_Entry | None], library: Library) -> str:
        """The fingerprint from the database's entries taken at `taken` and, now, the side
        files of `library` (known once the copy is open)."""
        return self._fingerprint(taken, db_files + self._side_entries(library))

    def _fingerprint(self, taken: int, entries: list[_Entry | None]) -> str:
        """A digest of the files' entries (and of what this source was asked to read), or ""
        when one could not be taken or is not settled: some mtime less than `SETTLE_NS`
        before `taken` (or after it), so a write in the same clock tick could hide."""
        if any(entry is None for entry in entries):
            return ""
        for entry in entries:
            if entry is not None and entry.exists and entry.mtime_ns > taken - SETTLE_NS:
                return ""
        text = repr((self.library_id, str(self.db_path), entries))
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    # -- checks

    def _check_location(self) -> None:
        if not self.data_dir.exists():
            raise SourceError(
                f"Zotero data directory {self.data_dir} does not exist",
                "check --zotero-dir (Zotero → Settings → Advanced → Files and Folders → "
                "Data Directory Location)",
            )
        if not self.db_path.is_file():
            raise SourceError(
                f"no {self.db_path.name} in {self.data_dir}: this is not Zotero's data directory",
                "check --zotero-dir (Zotero → Settings → Advanced → Files and Folders → "
                "Data Directory Location)",
            )

    def _temp_root(self) -> Path:
        """Where snapshots go: the system temp directory, which must not be inside Zotero's
        data directory (checked before anything is created there)."""
        root = Path(tempfile.gettempdir()).resolve()
        if root.is_relative_to(self.data_dir.resolve()):
            raise SourceError(
                f"the temporary directory {root} is inside Zotero's data directory",
                "set TMPDIR to a directory outside it",
            )
        return root

    def _database_error(self, exc: sqlite3.DatabaseError) -> SourceError:
        text = str(exc)
        if "not a database" in text or "encrypted" in text:
            return SourceError(
                f"{self.db_path} is not a Zotero database: {text}",
                "check --zotero-dir: it must be Zotero's data directory or its zotero.sqlite",
            )
        if "no such table" in text or "no such column" in text:
            return SourceError(
                f"{self.db_path} does not have the layout of a Zotero database ({text})",
                "check --zotero-dir; if it is Zotero's, report your Zotero version",
            )
        return SourceError(f"cannot read {self.db_path}: {text}", "check the file")

    # -- one attempt on a private copy

    def _read_copy(
        self,
        copy: Path,
        tmp: Path,
        since: str | None,
        fingerprint: Callable[[Library], str],
        temp: tempfile.TemporaryDirectory[str] | None = None,
    ) -> LibrarySnapshot:
        """A full read scans every table once; a cursor read asks SQLite what changed
        (`_read_since`). `fingerprint` gives the source files' fingerprint for the new cursor
        (taken before Better BibTeX's file is copied and the image cache is looked at).

        A full read of a large library (`STREAM_ITEMS`) streams its items: the connection
        and `temp`, the copy's folder, then belong to the snapshot's `_StreamedItems`."""
        old = _Cursor.decode(since) if since is not None else None
        conn = _open_copy(copy, str(self.db_path))
        streamed = False
        try:
            self._check_schema_version(conn)
            if old is not None and FAST_CURSOR_READS:
                return self._read_since(conn, copy, tmp, since, old, fingerprint)
            _check_tables(conn, READ_TABLES)
            info = _library_info(conn, self.library_id, str(self.db_path))
            files = fingerprint(info.library)
            if old is None and temp is not None and _regular_count(conn, info) > STREAM_ITEMS:
                bbt_keys, warnings = self._bbt_keys(
                    tmp, info.library_id, lambda: _keys_by_id(conn, info.library_id)
                )
                if since is not None:  # (`old` is None: it could not be decoded)
                    warnings.append("unrecognised sync cursor; reading the whole library")
                snapshot = self._streamed(conn, temp, info, bbt_keys, warnings, files)
                streamed = True
                return snapshot
            rows = _query_rows(conn, info.library_id, details=old is None)
            bbt_keys, warnings = self._bbt_keys(
                tmp, info.library_id, lambda: {i: row[0] for i, row in rows.items.items()}
            )
            return self._from_rows(conn, rows, info, bbt_keys, since, old, warnings, files)
        finally:
            if not streamed:
                conn.close()

    def _streamed(
        self,
        conn: sqlite3.Connection,
        temp: tempfile.TemporaryDirectory[str],
        info: _LibraryInfo,
        bbt_keys: dict[str, str],
        warnings: list[str],
        files: str,
    ) -> LibrarySnapshot:
        """`_snapshot` of a full read whose items stay in the copy until gone through. What
        the cursor needs is asked of SQLite, as a cursor read does (`_read_changes`: the
        same values as `_Builder` computes from the light rows), so no item's rows are
        held for it."""
        library_id = info.library_id
        regular = _Regular.read(conn)
        tree = _Rows()
        _query_collection_tree(conn, library_id, tree)
        _, max_item_id, newest = _library_stamps(conn, library_id)
        newest = max([newest, *tree.collection_times.values()])
        edge: set[int] = set()
        if newest:
            stamped = _touched_rows(conn, library_id, regular, newest)
            edge = {item_id for item_id, stamp in stamped if stamp == newest}
            moved = {c for c, when in tree.collection_times.items() if when == newest}
            if moved:  # renamed or moved: the items in them and below them
                parents = tree.collection_parents
                inside = {cid for cid in parents if _under(parents, cid, moved)}
                edge |= _collection_members(conn, library_id, regular, inside)
        if len(edge) > MAX_BOUNDARY:
            edge = set()
        image_dir = self._image_dir(info.library)
        images = _cached_image_keys(conn, library_id, image_dir)
        items = _StreamedItems(
            conn, temp,
            lambda rows: _Builder(rows, info, bbt_keys, image_dir, cached_images=images),
            regular, tree, _regular_ids(conn, library_id, regular), library_id,
            str(self.db_path),
        )  # fmt: skip
        boundary = {item.key: _item_hash(item) for item in items.build(sorted(edge))}
        cursor = _Cursor.of(
            info, time=newest, max_item_id=max_item_id,
            children=_children_digests(conn, library_id, max_item_id)[max_item_id],
            bbt_keys=bbt_keys, boundary=boundary, images=_images_digest(images), files=files,
        )  # fmt: skip
        return LibrarySnapshot(
            items=items,  # type: ignore[arg-type]  # a Sequence[Item]
            all_keys=_regular_keys(conn, library_id, regular),
            cursor=cursor.encode(),
            library=info.library,
            source_name=self.name,
            incremental=False,
            warnings=tuple(warnings),
        )

    def _read_since(
        self,
        conn: sqlite3.Connection,
        copy: Path,
        tmp: Path,
        since: str | None,
        old: _Cursor,
        fingerprint: Callable[[Library], str],
    ) -> LibrarySnapshot:
        """A cursor read: `_read_changes`, or when everything comes back (deleted children,
        Better BibTeX edits…) or too much changed, the light tables read into Python."""
        # It scans only CHANGE_TABLES whole; the other tables it reads by itemID, for the
        # changed items alone. quick_check is for what a read scans: a torn page on the path
        # of a lookup is still caught by SQLite's own page checks (a "malformed" error,
        # retried like any damage), and the files' before/after states (`snapshot_database`)
        # remain the first guard against a copy that raced a write. Checking itemData & co.
        # whole would cost more than all the rest of such a read; checking CHANGE_TABLES runs
        # beside the read, and the read's answer waits for it.
        conn.execute("PRAGMA cache_size=-16384")  # its scans revisit items' pages: 16 MB
        check = _BackgroundCheck(copy, str(self.db_path), CHANGE_TABLES)
        try:
            info = _library_info(conn, self.library_id, str(self.db_path))
            files = fingerprint(info.library)
            bbt_keys, warnings = self._bbt_keys(
                tmp, info.library_id, lambda: _keys_by_id(conn, info.library_id)
            )
            snapshot = self._read_changes(conn, info, old, bbt_keys, warnings, files)
        except Exception:
            damage = check.join()
            if isinstance(damage, sqlite3.DatabaseError) and _is_damage(damage):
                raise damage from None  # as if the check had run first: the copy is torn
            raise
        finally:
            check.join()
        check.wait()
        if snapshot is not None:
            return snapshot
        _check_tables(conn, [table for table in READ_TABLES if table not in CHANGE_TABLES])
        rows = _query_rows(conn, info.library_id, details=False)
        return self._from_rows(conn, rows, info, bbt_keys, since, old, warnings, files)

    def _from_rows(
        self,
        conn: sqlite3.Connection,
        rows: _Rows,
        info: _LibraryInfo,
        bbt_keys: dict[str, str],
        since: str | None,
        old: _Cursor | None,
        warnings: list[str],
        files: str,
    ) -> LibrarySnapshot:
        def loader(item_ids: Collection[int] | None) -> None:
            _query_details(conn, rows, item_ids)

        image_dir = self._image_dir(info.library)
        builder = _Builder(rows, info, bbt_keys, image_dir, None if old is None else loader)
        return self._snapshot(builder, since, old, warnings, files)

    def _read_changes(
        self,
        conn: sqlite3.Connection,
        info: _LibraryInfo,
        old: _Cursor,
        bbt_keys: dict[str, str],
        warnings: list[str],
        files: str,
    ) -> LibrarySnapshot | None:
        """`_snapshot` for a cursor read, with SQLite answering what changed: the same
        digests, stamps, `touched` sets and boundary hashes, but only the changed items (and
        their attachments and annotations) become Python rows. None when the answer is
        "everything" (`_Builder.needs_full_read`) or too many items changed to look them up
        one by one (`DETAILS_BY_ID_SHARE`): the caller then reads the way `_snapshot` does."""
        library_id = info.library_id
        if old.library_id != library_id or _bbt_digest(bbt_keys) != old.bbt:
            return None
        count, max_item_id, newest = _library_stamps(conn, library_id)
        digests = _children_digests(conn, library_id, old.max_item_id, max_item_id)
        if digests[old.max_item_id] != old.children:
            return None
        image_dir = self._image_dir(info.library)
        images = _cached_image_keys(conn, library_id, image_dir)
        if _images_digest(images) != old.images:
            return None
        regular = _Regular.read(conn)
        rows = _Rows()
        _query_collection_tree(conn, library_id, rows)
        newest = max([newest, *rows.collection_times.values()])
        # One query for both sets: the cursor's time and the new newest stamp (usually later).
        stamped = _touched_rows(conn, library_id, regular, min(old.time, newest or old.time))
        changed = {item_id for item_id, stamp in stamped if old.is_after(stamp)}
        edge = {item_id for item_id, stamp in stamped if newest and stamp == newest}
        parents = rows.collection_parents
        for found, moved in (
            (changed, {c for c, when in rows.collection_times.items() if old.is_after(when)}),
            (edge, {c for c, when in rows.collection_times.items() if newest and when == newest}),
        ):
            if moved:  # renamed or moved: the items in them and below them
                inside = {cid for cid in parents if _under(parents, cid, moved)}
                found |= _collection_members(conn, library_id, regular, inside)
        if len(edge) > MAX_BOUNDARY:
            edge = set()
        family = _query_family(conn, library_id, regular, rows, changed | edge)
        if len(family) > DETAILS_BY_ID_SHARE * count:
            return None
        if family:
            _query_details(conn, rows, family)
        builder = _Builder(rows, info, bbt_keys, image_dir, cached_images=images)
        wanted = sorted(changed)
        built = {i: builder.item(i) for i in wanted}
        # items of the old cursor's second, seen then exactly as now
        wanted = [i for i in wanted if old.boundary.get(built[i].key) != _item_hash(built[i])]
        boundary = {
            rows.items[i][0]: _item_hash(built[i] if i in built else builder.item(i))
            for i in sorted(edge)
        }
        cursor = _Cursor.of(
            info, time=newest, max_item_id=max_item_id, children=digests[max_item_id],
            bbt_keys=bbt_keys, boundary=boundary, images=_images_digest(images), files=files,
        )  # fmt: skip
        return LibrarySnapshot(
            items=tuple(built[i] for i in wanted),
            all_keys=_regular_keys(conn, library_id, regular),
            cursor=cursor.encode(),
            library=info.library,
            source_name=self.name,
            incremental=True,
            warnings=tuple(warnings + builder.warnings),
        )

    def _image_dir(self, library: Library) -> Path:
        """Where Zotero caches rendered image/ink annotations for this library."""
        cache = self.data_dir / "cache"
        if library.kind == "group":
            return cache / "groups" / str(library.group_id)
        return cache / "library"

    def _check_schema_version(self, conn: sqlite3.Connection) -> int:
        if not _has_table(conn, "version"):
            raise SourceError(
                f"{self.db_path} is a SQLite database but not a Zotero database "
                "(it has no `version` table)",
                "check --zotero-dir: it must be Zotero's data directory or its zotero.sqlite",
            )
        row = conn.execute("SELECT version FROM version WHERE schema='userdata'").fetchone()
        found = int(row[0]) if row and str(row[0]).isdigit() else None
        if found not in SUPPORTED_SCHEMAS:
            raise SchemaVersionError(found, str(self.db_path))
        return found

    def _bbt_keys(
        self, tmp: Path, library_id: int, keys_by_id: Callable[[], dict[int, str]]
    ) -> tuple[dict[str, str], list[str]]:
        """Better BibTeX keys from a snapshot of `better-bibtex.sqlite` (absent → none).
        `keys_by_id` gives the library's item keys by itemID (only old layouts need them).

        A changing file makes the whole attempt retry (`_Unstable`); a broken one only costs
        its keys, with a warning — it is an add-on's cache, not the library.
        """
        source = self.data_dir / BBT_NAME
        if not source.is_file():
            return {}, []
        target_dir = tmp / "bbt"
        target_dir.mkdir()
        copy, _ = snapshot_database(source, target_dir)
        try:
            with closing(_open_copy(copy, str(source))) as conn:
                return _read_bbt(conn, library_id, keys_by_id), []
        except (SourceError, sqlite3.DatabaseError, LookupError) as exc:
            reason = exc.message if isinstance(exc, SourceError) else str(exc)
            return {}, [f"{source}: Better BibTeX citation keys not read: {reason}"]

    def _snapshot(
        self,
        builder: _Builder,
        since: str | None,
        old: _Cursor | None,
        warnings: list[str],
        files: str = "",
    ) -> LibrarySnapshot:
        rows = builder.rows
        regular = set(builder.regular)
        all_keys = frozenset(rows.items[i][0] for i in builder.regular)
        wanted = builder.regular
        everything = True
        if since is not None and old is None:
            warnings.append("unrecognised sync cursor; reading the whole library")
        elif old is not None and not builder.needs_full_read(old):
            changed = builder.touched(old.is_after) & regular
            wanted = [i for i in builder.regular if i in changed]
            everything = False
        newest = builder.newest_stamp()
        edge = builder.touched(lambda stamp: stamp == newest) & regular if newest else set()
        if len(edge) > MAX_BOUNDARY:
            edge = set()
        builder.load_details(None if everything else set(wanted) | edge)
        built = {i: builder.item(i) for i in wanted}
        if old is not None:  # items of the old cursor's second, seen then exactly as now
            wanted = [i for i in wanted if old.boundary.get(built[i].key) != _item_hash(built[i])]
        boundary = {
            rows.items[i][0]: _item_hash(built[i] if i in built else builder.item(i))
            for i in sorted(edge)
        }
        return LibrarySnapshot(
            items=tuple(built[i] for i in wanted),
            all_keys=all_keys,
            cursor=builder.cursor(newest, boundary, files).encode(),
            library=builder.info.library,
            source_name=self.name,
            # Still incremental when everything is returned (children or Better BibTeX keys
            # changed): the items are then a superset of what changed.
            incremental=old is not None,
            warnings=tuple(warnings + builder.warnings),
        )
