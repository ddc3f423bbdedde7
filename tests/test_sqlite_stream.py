"""A large library's full read streams its items (`STREAM_ITEMS`): the same items, in the
same order, the same notes — and the private copy is gone when the sync is over."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import bridge.sources.sqlite.stream as sqlite_stream
from bridge.config import Config
from bridge.errors import SourceError
from bridge.model import LibrarySnapshot
from bridge.sources import ItemStream
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from tests.helpers import snapshot_tree
from tests.test_sqlite_source import (
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    fill_sample,
    new_db,
)


def stream_everything(monkeypatch: pytest.MonkeyPatch, chunk: int = 2) -> None:
    monkeypatch.setattr(sqlite_stream, "STREAM_ITEMS", 0)
    monkeypatch.setattr(sqlite_stream, "STREAM_CHUNK", chunk)  # several chunks, even here


@contextmanager
def streamed_read(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, chunk: int = 2
) -> Iterator[LibrarySnapshot]:
    """A streamed full read of `data_dir`, closed afterwards."""
    stream_everything(monkeypatch, chunk)
    snapshot = SqliteSource(data_dir).read()
    try:
        yield snapshot
    finally:
        snapshot.close()


def library(tmp_path: Path) -> Path:
    with new_db(tmp_path) as db:
        fill_sample(db)
        for index in range(7):
            key = db.add_item(title=f"Paper {index}", date=str(2000 + index),
                              tags=[f"extends:M{index}"])  # fmt: skip
            pdf = db.add_attachment(key, filename=f"p{index}.pdf")
            db.add_annotation(pdf, text=f"quote {index}", sort_index=f"{index:05d}|000000|00000")
        pdf = db.add_attachment(key, filename="newer.pdf")
        db.add_annotation(pdf, type=7, sort_index="99999|000000|00000")  # from a newer Zotero
        db.add_note(key, "<p>a child note</p>")
        standalone = db.add_attachment(None, filename="standalone.pdf")  # an item of its own
        db.add_annotation(standalone, text="standalone quote")
        db.commit()
    return tmp_path / "Zotero"


def test_a_streamed_read_gives_the_same_items_and_cursor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = library(tmp_path)
    whole = SqliteSource(data_dir).read()
    with streamed_read(data_dir, monkeypatch) as streamed:
        assert isinstance(streamed.items, sqlite_stream._StreamedItems)
        assert len(streamed.items) == len(whole.items) > 2 * sqlite_stream.STREAM_CHUNK
        assert tuple(streamed.items) == whole.items
        assert tuple(streamed.items) == whole.items  # a second pass reads them again
        assert [i.key for i in streamed.items.heads()] == [i.key for i in whole.items]
        assert all(not i.attachments for i in streamed.items.heads())
        assert streamed.items[1] == whole.items[1]
        assert (streamed.all_keys, streamed.cursor) == (whole.all_keys, whole.cursor)
        kinds = {i.item_type for i in whole.items}
        assert "attachment" in kinds and any(i.notes for i in whole.items)
        assert set(whole.warnings) <= set(streamed.warnings) | set(streamed.items.warnings)


def test_a_streamed_sync_writes_the_same_vault_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = library(tmp_path)
    whole, streamed = tmp_path / "whole", tmp_path / "streamed"
    whole.mkdir(), streamed.mkdir()
    first = sync(Config(vault=whole, source="sqlite", zotero_dir=data_dir))
    stream_everything(monkeypatch)
    second = sync(Config(vault=streamed, source="sqlite", zotero_dir=data_dir))
    assert first.created == second.created > 9
    assert any("unknown annotation type 7" in w for w in second.warnings)
    skip = ".zotero-bridge"
    assert {k: v for k, v in snapshot_tree(streamed).items() if not k.startswith(skip)} == {
        k: v for k, v in snapshot_tree(whole).items() if not k.startswith(skip)
    }
    # the private copy went with the sync (`_private_tempdir` made this the system temp dir)
    assert list(Path(tempfile.gettempdir()).iterdir()) == []


def test_the_real_zotero_database_streams_like_it_reads(
    real_zotero_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = SqliteSource(real_zotero_db).read()
    with streamed_read(real_zotero_db, monkeypatch, chunk=3) as streamed:
        assert tuple(streamed.items) == whole.items and whole.items


def test_a_copy_that_fails_while_streaming_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = library(tmp_path)
    stream_everything(monkeypatch)
    streamed = SqliteSource(data_dir).read()
    conn = streamed.items._conn
    conn.execute("PRAGMA query_only=OFF")
    conn.execute("DROP TABLE itemData")  # the copy breaking under the read, as a disk might
    with pytest.raises(SourceError, match="while syncing"):
        list(streamed.items)
    streamed.items.close()


def test_small_libraries_are_read_whole(tmp_path: Path) -> None:
    snapshot = SqliteSource(library(tmp_path)).read()
    assert isinstance(snapshot.items, tuple)


def test_a_streamed_sync_with_a_filter_still_reports_late_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = library(tmp_path)
    vault = tmp_path / "vault"
    vault.mkdir()
    stream_everything(monkeypatch)
    config = Config(vault=vault, source="sqlite", zotero_dir=data_dir, filter_tags=("extends:M6",))
    result = sync(config)
    assert result.created >= 1
    assert any("unknown annotation type 7" in w for w in result.warnings)


def test_a_streamed_read_hands_over_an_item_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What callers may rely on beyond a sequence: `heads`, `close` and `warnings`."""
    with new_db(tmp_path) as db:
        fill_sample(db)
    with streamed_read(tmp_path / "Zotero", monkeypatch) as snapshot:
        assert isinstance(snapshot.items, ItemStream)
        assert len(list(snapshot.items.heads())) == len(snapshot.items)
