"""The streamed full read of a large library: items built a chunk at a time from the
private copy each time they are gone through, never all in memory at once.
"""

from __future__ import annotations

import sqlite3
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from bridge.errors import SourceError
from bridge.model import (
    Item,
    LibrarySnapshot,
)
from bridge.sources.sqlite import queries
from bridge.sources.sqlite.build import _Builder
from bridge.sources.sqlite.changes import (
    _cached_image_keys,
    _children_digests,
    _collection_members,
    _library_stamps,
    _regular_keys,
    _touched_rows,
)
from bridge.sources.sqlite.cursor import MAX_BOUNDARY, _Cursor, _images_digest, _item_hash
from bridge.sources.sqlite.queries import (
    _query_collection_tree,
    _query_family,
    _regular_count,
    _regular_ids,
    _Rows,
    _under,
)
from bridge.sources.sqlite.schema import _LibraryInfo, _Regular

# A full read of a library with more regular items than this hands them over as a stream
# (`_StreamedItems`): built a chunk at a time from the private copy, never all at once. A
# 50,000-item library's items take ~400 MB as objects; streamed, a sync stays near 200 MB.
STREAM_ITEMS = 20_000
STREAM_CHUNK = 1_000


# what `paper_stem` and `item_edges` read of an item's fields (with its key, creators and
# tags), and `_Builder._citation_key`
NAMING_FIELDS = frozenset({"title", "date", "citationKey", "extra"})


class _StreamedItems(Sequence[Item]):
    """The `ItemStream` of a full read: its items, built `STREAM_CHUNK` at a time from the
    private copy each time they are gone through, so they are never all in memory at once:
    each chunk reads its items' rows, their attachments' and annotations' (`_query_family`)
    and their details, and lets them go with the chunk. Only the regular items' IDs and the
    collection tree stay (a 50,000-item library's light rows alone held ~100 MB).

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
                queries._query_details(
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


def _close_stream(conn: sqlite3.Connection, temp: tempfile.TemporaryDirectory[str]) -> None:
    conn.close()
    temp.cleanup()


def read_streamed(
    conn: sqlite3.Connection,
    temp: tempfile.TemporaryDirectory[str],
    info: _LibraryInfo,
    bbt_keys: dict[str, str],
    warnings: list[str],
    files: str,
    *,
    image_dir: Path,
    label: str,
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
    images = _cached_image_keys(conn, library_id, image_dir)
    items = _StreamedItems(
        conn, temp,
        lambda rows: _Builder(rows, info, bbt_keys, image_dir, cached_images=images),
        regular, tree, _regular_ids(conn, library_id, regular), library_id,
        label,
    )  # fmt: skip
    boundary = {item.key: _item_hash(item) for item in items.build(sorted(edge))}
    cursor = _Cursor.of(
        info, time=newest, max_item_id=max_item_id,
        children=_children_digests(conn, library_id, max_item_id)[max_item_id],
        bbt_keys=bbt_keys, boundary=boundary, images=_images_digest(images), files=files,
    )  # fmt: skip
    return LibrarySnapshot(
        items=items,
        all_keys=_regular_keys(conn, library_id, regular),
        cursor=cursor.encode(),
        library=info.library,
        incremental=False,
        warnings=tuple(warnings),
    )


def _is_large(conn: sqlite3.Connection, info: _LibraryInfo) -> bool:
    """Whether a full read of the library streams its items (`STREAM_ITEMS`)."""
    return _regular_count(conn, info) > STREAM_ITEMS
