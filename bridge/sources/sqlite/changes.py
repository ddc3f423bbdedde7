"""A cursor read with SQLite answering what changed (`read_changes`).

A cursor read asks SQLite what changed instead of pulling the light tables into Python:
each function here computes in one query what `_Builder` computes from `_Rows` (same
values: `test_sqlite_fastpath.py` compares them).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from pathlib import Path

from bridge.model import LibrarySnapshot
from bridge.sources.sqlite import build, queries
from bridge.sources.sqlite.build import _Builder
from bridge.sources.sqlite.cursor import (
    _P,
    MAX_BOUNDARY,
    _bbt_digest,
    _Cursor,
    _images_digest,
    _item_hash,
)
from bridge.sources.sqlite.queries import (
    _chunks,
    _query_collection_tree,
    _query_family,
    _Rows,
    _under,
)
from bridge.sources.sqlite.schema import _LibraryInfo, _Regular

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
        for table in ("itemAttachments", "itemAnnotations", "itemNotes"):
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
# regular item it belongs to (`_Builder._top`: annotation → attachment / note → parent, two steps,
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
                WHEN at.parentItemID THEN at.parentItemID
                WHEN nt.parentItemID THEN nt.parentItemID ELSE s.id END, s.stamp
    FROM stamped s
    LEFT JOIN itemAnnotations an ON an.itemID = s.id
    LEFT JOIN itemAttachments at ON at.itemID = s.id
    LEFT JOIN itemNotes nt ON nt.itemID = s.id
), hop2(id, stamp) AS (
    SELECT CASE WHEN mine.itemID IS NULL THEN h.id
                WHEN an.itemID IS NOT NULL THEN an.parentItemID
                WHEN at.parentItemID THEN at.parentItemID
                WHEN nt.parentItemID THEN nt.parentItemID ELSE h.id END, h.stamp
    FROM hop1 h
    LEFT JOIN items mine ON mine.itemID = h.id AND +mine.libraryID = :lib
    LEFT JOIN itemAnnotations an ON an.itemID = h.id
    LEFT JOIN itemAttachments at ON at.itemID = h.id
    LEFT JOIN itemNotes nt ON nt.itemID = h.id
)
SELECT h.id, h.stamp FROM hop2 h JOIN items r ON r.itemID = h.id
WHERE +r.libraryID = :lib AND {regular}
"""


def _touched_rows(
    conn: sqlite3.Connection, library_id: int, regular: _Regular, since: str
) -> list[tuple[int, str]]:
    """(regular item, stamp) for every item or trash stamp at or after `since`."""
    sql = _TOUCHED_SQL.format(regular=regular.where("r"))
    return conn.execute(sql, {"lib": library_id, "t": since, **regular.params}).fetchall()


def _collection_members(
    conn: sqlite3.Connection, library_id: int, regular: _Regular, cids: Collection[int]
) -> set[int]:
    """The regular items of the library in any of the collections `cids`."""
    found: set[int] = set()
    for _, part in _chunks(cids):
        marks = ",".join(f":c{n}" for n in range(len(part)))
        params = {f"c{n}": cid for n, cid in enumerate(part)}
        found.update(
            item_id
            for (item_id,) in conn.execute(
                "SELECT DISTINCT ci.itemID FROM collectionItems ci "
                "JOIN items r ON r.itemID = ci.itemID "
                f"WHERE ci.collectionID IN ({marks}) AND +r.libraryID = :lib "
                f"AND {regular.where('r')}",
                {**params, "lib": library_id, **regular.params},
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
    where = f"FROM items WHERE +libraryID = :lib AND {regular.where()}"
    params = {"lib": library_id, **regular.params}
    # One string is cheaper than 10,000 rows; keys hold no NUL, which the count makes sure of.
    count, joined = conn.execute(
        f"SELECT count(*), group_concat(key, char(0)) {where}", params
    ).fetchone()
    keys = joined.split("\0") if joined is not None else []
    if len(keys) != count:
        keys = [key for (key,) in conn.execute(f"SELECT key {where}", params)]
    return frozenset(keys)


def _changed_and_edge(
    conn: sqlite3.Connection,
    library_id: int,
    regular: _Regular,
    rows: _Rows,
    old: _Cursor,
    newest: str,
) -> tuple[set[int], set[int]]:
    """The regular items changed since `old` (`_Builder.touched(old.is_after)`), and those of
    the `newest` second, whose hashes the new cursor keeps (none when there are too many).
    `rows` hold the collection tree."""
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
    return changed, edge


def read_changes(
    conn: sqlite3.Connection,
    info: _LibraryInfo,
    old: _Cursor,
    bbt_keys: dict[str, str],
    warnings: list[str],
    files: str,
    *,
    image_dir: Path,
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
    images = _cached_image_keys(conn, library_id, image_dir)
    if _images_digest(images) != old.images:
        return None
    regular = _Regular.read(conn)
    rows = _Rows()
    _query_collection_tree(conn, library_id, rows)
    newest = max([newest, *rows.collection_times.values()])
    changed, edge = _changed_and_edge(conn, library_id, regular, rows, old, newest)
    family = _query_family(conn, library_id, regular, rows, changed | edge)
    if len(family) > build.DETAILS_BY_ID_SHARE * count:
        return None
    if family:
        queries._query_details(conn, rows, family)
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
        incremental=True,
        warnings=tuple(warnings + builder.warnings),
    )
