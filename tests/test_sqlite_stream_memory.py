"""What a large sync keeps in memory: a streamed read holds no item's light rows (SQLite
answers what the cursor needs, each chunk reads its own rows), and a sync keeps a `Receipt`
of each action it carried out, not the action."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bridge.sources.sqlite as sqlite_module
from bridge.config import Config
from bridge.plan import Action, NoteKind, Receipt
from bridge.sources.sqlite import CURSOR_PREFIX, SqliteSource
from bridge.state import NoteState, State
from bridge.sync import SyncOptions, sync
from tests.test_sqlite_source import (
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    fill_sample,
    new_db,
)
from tests.test_sqlite_stream import streamed_read
from tests.zotero_db import ZoteroDB


def _boundary(cursor: str | None) -> dict[str, str]:
    assert cursor is not None
    return json.loads(cursor.removeprefix(CURSOR_PREFIX))["edge"]


def _forbid_light_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    def whole_tables(*args: object, **kwargs: object) -> None:
        raise AssertionError("a streamed read read the light tables whole")

    monkeypatch.setattr(sqlite_module, "_query_rows", whole_tables)


def _library(tmp_path: Path, newest: str) -> Path:
    """The sample library, standalone and trashed attachments, and a last second shared by
    several changes (`newest`: items, a trashed item, or a renamed collection)."""
    with new_db(tmp_path) as db:
        fill_sample(db)
        db.add_attachment(None, filename="standalone.pdf")
        parent = db.add_item(title="With a trashed PDF", collections=["Vision/Detection"])
        gone = db.add_attachment(parent, filename="gone.pdf")
        db.add_annotation(gone, text="in the trash")
        kept = db.add_attachment(parent, filename="kept.pdf")
        db.add_annotation(kept, text="kept", sort_index="00001|000000|00000")
        db.trash(gone)
        others = [db.add_item(title=f"Paper {n}", collections=["Reading"]) for n in range(5)]
        last = "2025-06-01 12:00:00"
        if newest == "items":
            for key in others[:3]:
                db.set_time(last)
                db.touch(key)
        elif newest == "trash":
            db.set_time(last)
            db.trash(others[0])
            db.set_time(last)
            db.touch(others[1])
        else:
            db.set_time(last)
            db.rename_collection("Vision", "Seeing")  # its subcollection's items too
        db.commit()
    return tmp_path / "Zotero"


@pytest.mark.parametrize("newest", ["items", "trash", "collection"])
def test_a_streamed_read_asks_sqlite_for_the_cursor_and_holds_no_light_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, newest: str
) -> None:
    data_dir = _library(tmp_path, newest)
    whole = SqliteSource(data_dir).read()
    _forbid_light_rows(monkeypatch)
    with streamed_read(data_dir, monkeypatch, chunk=3) as streamed:
        assert tuple(streamed.items) == whole.items
        assert [i.key for i in streamed.items.heads()] == [i.key for i in whole.items]
        assert all(not i.attachments for i in streamed.items.heads())
        assert (streamed.all_keys, streamed.cursor) == (whole.all_keys, whole.cursor)
        assert len(_boundary(streamed.cursor)) >= 2  # the last second's items, hashed
        # between chunks it holds the items' IDs and the collection tree: no item's rows
        assert not streamed.items._tree.items and not streamed.items._tree.attachments


def test_a_streamed_cursor_reads_on_like_a_whole_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next read after a streamed one finds exactly the change made since."""
    data_dir = _library(tmp_path, "collection")
    with streamed_read(data_dir, monkeypatch) as streamed:
        cursor = streamed.cursor
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-07-01 08:00:00")
        key = sorted(streamed.all_keys or ())[0]
        db.set_field(key, "title", "Changed after the stream")
        db.commit()
    again = SqliteSource(data_dir).read(since=cursor)
    assert [item.key for item in again.items] == [key]
    assert again.items[0].title == "Changed after the stream"


def test_a_sync_keeps_receipts_not_actions(tmp_path: Path) -> None:
    data_dir = _library(tmp_path, "items")
    vault = tmp_path / "vault"
    vault.mkdir()
    result = sync(Config(vault=vault, source="sqlite", zotero_dir=data_dir))
    papers = [a for a in result.actions if a.state is not None and a.state.kind == "paper"]
    # (the sample's book already in the trash gets no note)
    assert len(papers) >= 8 and all(isinstance(a, Receipt) for a in papers)
    assert all(not hasattr(a, "text") and a.state is NoteKind.of("paper") for a in papers)
    with State(vault) as state:  # each was logged (`record_note_events`) by its receipt
        logged = state.db.execute("SELECT note_id, kind, path, action FROM note_log").fetchall()
    assert {(a.note_id, "paper", a.path, a.kind) for a in papers} <= set(logged)
    # a dry run still shows the whole plan
    planned = sync(Config(vault=vault, source="sqlite", zotero_dir=data_dir), SyncOptions(
        dry_run=True, full=True))  # fmt: skip
    assert planned.actions and all(isinstance(a, Action) for a in planned.actions)


def test_a_receipt_describes_its_action_and_keeps_no_state() -> None:
    note = NoteState("K1", "paper", "Papers/a.md", "{}", "hash", "1;2;3")
    action = Action(
        "update", "K1", "Papers/a.md", text="x" * 1000, state=note,
        conflicts=["title"], reason="why", deleted=True,
    )  # fmt: skip
    receipt = action.receipt()
    assert receipt.describe() == action.describe()
    assert (receipt.kind, receipt.note_id, receipt.path, receipt.deleted) == (
        "update", "K1", "Papers/a.md", True,
    )  # fmt: skip
    assert receipt.state is NoteKind.of("paper") and receipt.conflicts == ("title",)
    assert Action("skip", "K2", "Papers/b.md", reason="bad").receipt().state is None
