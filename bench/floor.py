"""The physical floor of a first sync: what no implementation can beat on this machine.

One pass that reads every row a sync needs from the same `zotero.sqlite` with plain `sqlite3`
(each table scanned once, rows fetched into Python tuples, nothing built from them), then
writes the same number of files with the same sizes (so the same total bytes) into an empty
folder, each with open/write/close and one folder fsync at the end. No rendering, no merging,
no state database: the bridge's cost above this is its own.
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

# Everything the sqlite source reads (see bridge/sources/sqlite/queries.py), one scan per table.
QUERIES = (
    "SELECT itemID, itemTypeID, key, dateAdded, dateModified, clientDateModified, version "
    "FROM items",
    "SELECT d.itemID, d.fieldID, v.value FROM itemData d "
    "JOIN itemDataValues v ON v.valueID = d.valueID",
    "SELECT creatorID, firstName, lastName, fieldMode FROM creators",
    "SELECT itemID, creatorID, creatorTypeID, orderIndex FROM itemCreators",
    "SELECT tagID, name FROM tags",
    "SELECT itemID, tagID FROM itemTags",
    "SELECT collectionID, collectionName, parentCollectionID, clientDateModified FROM collections",
    "SELECT collectionID, itemID FROM collectionItems",
    "SELECT itemID, parentItemID, linkMode, contentType, path FROM itemAttachments",
    "SELECT itemID, parentItemID, type, text, comment, color, pageLabel, sortIndex, position "
    "FROM itemAnnotations",
    "SELECT itemID, parentItemID, note FROM itemNotes",  # child notes reach paper notes
    "SELECT itemID, predicateID, object FROM itemRelations",
    "SELECT itemID, dateDeleted FROM deletedItems",
    "SELECT itemTypeID, typeName FROM itemTypesCombined",
    "SELECT fieldID, fieldName FROM fieldsCombined",
)


def read_rows(db_path: Path) -> int:
    """Read every needed row once; returns the number of rows."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return sum(len(conn.execute(query).fetchall()) for query in QUERIES)
    finally:
        conn.close()


def write_files(folder: Path, sizes: list[int]) -> int:
    """Write len(sizes) files of those sizes into `folder` (empty); returns the bytes written."""
    chunk = b"lorem ipsum dolor sit amet, consectetur adipiscing elit\n" * 2048
    total = 0
    for index, size in enumerate(sizes):
        data = chunk[:size] if size <= len(chunk) else chunk * (size // len(chunk) + 1)
        with open(folder / f"note-{index:06d}.md", "wb") as handle:
            handle.write(data[:size])
        total += size
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return total


def measure_floor(db_path: Path, sizes: list[int], scratch: Path) -> dict[str, float]:
    """`floor_s` = read + write, timed as one pass; parts reported for the table."""
    tmp = tempfile.mkdtemp(prefix="floor-", dir=scratch)  # left for the caller to delete
    began = time.perf_counter()
    rows = read_rows(db_path)
    read_done = time.perf_counter()
    written = write_files(Path(tmp), sizes)
    ended = time.perf_counter()
    return {
        "floor_s": ended - began,
        "floor_read_s": read_done - began,
        "floor_write_s": ended - read_done,
        "floor_rows": rows,
        "floor_bytes": written,
    }
