"""The sqlite source's cursor reads: the unchanged-files short-circuit and the SQL fast path.

What must hold: a read after a cursor skips copying only when the source files are exactly as
that cursor's read found them, and were settled then (every mtime at least `SETTLE_NS` old);
any other cursor read answers exactly what the older, Python-side way of deciding what changed
answers (`FAST_CURSOR_READS = False`), digests and boundary hashes included.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

import bridge.sources.sqlite as sqlite_module
import bridge.sources.sqlite.build as sqlite_build
import bridge.sources.sqlite.changes as sqlite_changes
import bridge.sources.sqlite.copy as sqlite_copy
import bridge.sources.sqlite.cursor as sqlite_cursor
import bridge.sources.sqlite.queries as sqlite_queries
import bridge.sources.sqlite.schema as sqlite_schema
from bridge.model import Library
from bridge.sources.sqlite import SqliteSource
from tests.test_sqlite_source import (
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    tear_first_copy,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the source copies."""
    seen: list[Path] = []
    real_copy = sqlite_copy._copy_file

    def counting(source: Path, target: Path) -> None:
        seen.append(Path(source))
        real_copy(source, target)

    monkeypatch.setattr(sqlite_copy, "_copy_file", counting)
    return seen


def _library(tmp_path: Path, journal: str = "delete") -> tuple[Path, dict[str, str]]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite", journal=journal) as db:
        db.set_time("2025-01-01 09:00:00")
        keys = {"a": db.add_item(title="Alpha", collections=["Inbox"]), "b": db.add_item(title="B")}
        keys["pdf"] = db.add_attachment(keys["a"], filename="a.pdf")
        keys["image"] = db.add_annotation(keys["pdf"], type="image", page_label="2")
    return data_dir, keys


def _age(path: Path, seconds: float = 30.0) -> None:
    """Every file and directory under `path` last modified `seconds` ago: settled."""
    when = time.time_ns() - int(seconds * 1e9)
    for item in [path, *path.rglob("*")]:
        os.utime(item, ns=(when, when))


def _fingerprint(cursor: str | None) -> str:
    assert cursor is not None
    return json.loads(cursor.removeprefix(sqlite_module.CURSOR_PREFIX))["fp"]


# ------------------------------------------------------------------------------ short-circuit


def test_unchanged_settled_files_are_not_even_copied(tmp_path: Path, copies: list[Path]) -> None:
    data_dir, _ = _library(tmp_path)
    _age(data_dir)
    source = SqliteSource(data_dir)
    first = source.read()
    assert _fingerprint(first.cursor)
    copies.clear()

    again = source.read(since=first.cursor)

    assert copies == []
    assert again.items == () and again.all_keys is None  # deletions: not looked at this time
    assert again.cursor == first.cursor and again.incremental
    assert again.library == Library()
    assert source.read(since=again.cursor).items == ()
    assert copies == []


def test_a_write_that_keeps_size_and_mtime_is_seen_by_its_header(
    tmp_path: Path, copies: list[Path]
) -> None:
    data_dir, keys = _library(tmp_path)
    db_path = data_dir / "zotero.sqlite"
    _age(data_dir)
    source = SqliteSource(data_dir)
    first = source.read()
    before = db_path.stat()
    head = db_path.read_bytes()[:100]

    with ZoteroDB.open(db_path) as db:  # a rollback-journal commit: same pages, new counter
        db.set_time("2025-02-01 10:00:00")
        db.set_field(keys["b"], "title", "C")  # same length
    os.utime(db_path, ns=(before.st_atime_ns, before.st_mtime_ns))  # a write in the same tick
    after = db_path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert db_path.read_bytes()[:100] != head  # SQLite's file change counter moved
    copies.clear()

    changed = source.read(since=first.cursor)

    assert copies  # not short-circuited
    assert [(item.key, item.title) for item in changed.items] == [(keys["b"], "C")]


def test_header_bytes_are_part_of_a_files_fingerprint(tmp_path: Path) -> None:
    """Size, mtime, ctime and inode kept, header changed: the entries differ by their head."""
    path = tmp_path / "zotero.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + bytes(200))
    first = sqlite_cursor._path_entry(path, True)
    with open(path, "r+b") as handle:
        handle.seek(24)
        handle.write(b"\x00\x00\x00\x07")
    second = sqlite_cursor._path_entry(path, True)
    assert first is not None and second is not None
    assert first._replace(head=second.head, ctime_ns=0, mtime_ns=0) == second._replace(
        ctime_ns=0, mtime_ns=0
    )
    assert first.head != second.head
    assert sqlite_cursor._path_entry(tmp_path / "nothing", True) == (
        sqlite_cursor._Entry(str(tmp_path / "nothing"), False)
    )


def test_an_unsettled_fingerprint_never_short_circuits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, copies: list[Path]
) -> None:
    """Files written less than SETTLE_NS before the fingerprint was taken: a second write in
    the same clock tick could keep size and mtime, so the cursor vouches for nothing."""
    data_dir, _ = _library(tmp_path)
    newest = max(p.stat().st_mtime_ns for p in data_dir.rglob("*"))
    monkeypatch.setattr(sqlite_module, "_wall_ns", lambda: newest + 1_000_000_000)  # 1 s on
    source = SqliteSource(data_dir)
    first = source.read()
    assert _fingerprint(first.cursor) == ""
    copies.clear()

    again = source.read(since=first.cursor)

    assert copies and again.all_keys is not None and again.items == ()
    # A clock behind the files' (a remote file system) is not settled either.
    monkeypatch.setattr(sqlite_module, "_wall_ns", lambda: newest - 10_000_000_000)
    assert _fingerprint(source.read().cursor) == ""


def test_a_new_cached_image_is_seen(tmp_path: Path, copies: list[Path]) -> None:
    """Zotero renders an image annotation's PNG later, touching no row: the cache directory
    is in the fingerprint, whether it existed before or not."""
    data_dir, keys = _library(tmp_path)
    _age(data_dir)
    source = SqliteSource(data_dir)
    first = source.read()
    cache = data_dir / "cache" / "library"
    cache.mkdir(parents=True)
    (cache / f"{keys['image']}.png").write_bytes(PNG)

    changed = source.read(since=first.cursor)

    assert copies  # the set of cached images is in the cursor: everything comes back
    item = {i.key: i for i in changed.items}[keys["a"]]
    assert item.annotations[0].image_path == str(cache / f"{keys['image']}.png")
    # The directory existed (and settled) before the next PNG appears in it.
    second = keys["image"]
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-03-01 10:00:00")
        second = db.add_annotation(keys["pdf"], type="ink")
    _age(data_dir)
    settled = source.read(since=changed.cursor)
    assert [i.key for i in settled.items] == [keys["a"]]
    assert source.read(since=settled.cursor).all_keys is None  # unchanged: short-circuit
    copies.clear()
    (cache / f"{second}.png").write_bytes(PNG)

    rendered = source.read(since=settled.cursor)

    assert copies
    item = {i.key: i for i in rendered.items}[keys["a"]]
    assert {a.key: bool(a.image_path) for a in item.annotations} == {
        keys["image"]: True,
        second: True,
    }


def test_better_bibtex_files_are_in_the_fingerprint(tmp_path: Path, copies: list[Path]) -> None:
    data_dir, keys = _library(tmp_path)
    conn = sqlite3.connect(data_dir / "better-bibtex.sqlite")
    conn.execute(
        "CREATE TABLE citationkey (itemID NOT NULL PRIMARY KEY, itemKey NOT NULL, "
        "libraryID NOT NULL, citationKey NOT NULL, pinned, UNIQUE (libraryID, itemKey))"
    )
    conn.execute("INSERT INTO citationkey VALUES (1, ?, 1, 'alpha2025', 0)", (keys["a"],))
    conn.commit()
    _age(data_dir)
    source = SqliteSource(data_dir)
    first = source.read()
    assert source.read(since=first.cursor).all_keys is None
    conn.execute("UPDATE citationkey SET citationKey = 'alpha2025b'")
    conn.commit()
    conn.close()
    copies.clear()

    changed = source.read(since=first.cursor)

    assert copies
    assert {i.key: i.citation_key for i in changed.items}[keys["a"]] == "alpha2025b"


def test_cursors_without_a_fingerprint_or_for_another_library_read(
    tmp_path: Path, copies: list[Path]
) -> None:
    data_dir, _ = _library(tmp_path)
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        library_id = db.add_group(4242, "Lab")
        group_key = db.add_item(title="Group paper", library_id=library_id)
    _age(data_dir)
    user, group = SqliteSource(data_dir), SqliteSource(data_dir, library_id=library_id)
    cursor = user.read().cursor
    assert cursor is not None
    payload = json.loads(cursor.removeprefix(sqlite_module.CURSOR_PREFIX))
    older = {k: v for k, v in payload.items() if k not in ("fp", "kind", "gid")}
    old_cursor = sqlite_module.CURSOR_PREFIX + json.dumps(older)
    copies.clear()

    from_old = user.read(since=old_cursor)  # a cursor from before fingerprints: a real read

    assert copies and from_old.all_keys is not None and from_old.items == ()
    copies.clear()
    assert user.read(since=from_old.cursor).all_keys is None and copies == []
    # The same files, another library: never answered from the user library's cursor.
    other = group.read(since=cursor)
    assert copies and other.library == Library("group", 4242)
    assert other.all_keys == {group_key}
    copies.clear()
    unchanged = group.read(since=group.read().cursor)
    assert unchanged.all_keys is None and unchanged.library == Library("group", 4242)


# ------------------------------------------------------------------------------ the SQL fast path


def _random_library(tmp_path: Path, rnd: random.Random) -> tuple[Path, int]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-01-01 09:00:00")
        group = db.add_group(77, "Lab")
        for i in range(40):
            library_id = group if i % 5 == 4 else 1
            key = db.add_item(
                rnd.choice(["journalArticle", "book"]),
                title=f"Item {i}",
                tags=rnd.sample(["t0", "t1", "t2"], rnd.randrange(3)),
                collections=rnd.sample(["Inbox", "Inbox/Sub", "Read"], rnd.randrange(3))
                if library_id == 1
                else [],
                library_id=library_id,
            )
            for a in range(rnd.choice([0, 1, 2])):
                pdf = db.add_attachment(key, filename=f"{i}-{a}.pdf")
                for _ in range(rnd.randrange(4)):
                    db.add_annotation(pdf, type=rnd.choice(["highlight", "image", "ink"]))
            if rnd.random() < 0.2:
                db.add_note(key, "<p>note</p>")
        standalone = db.add_attachment(None, filename="standalone.pdf")
        db.add_annotation(standalone, text="a standalone file is an item of its own")
        db.add_attachment(None, filename="unread.pdf")
    return data_dir, group


def _keys(conn: sqlite3.Connection, sql: str) -> list[str]:
    return [key for (key,) in conn.execute(sql)]


def _random_edit(db: ZoteroDB, rnd: random.Random, data_dir: Path, group: int) -> None:
    """One edit Zotero could make, in either library; some leave no stamp at all."""
    conn = db.conn
    db.flush()
    regular = _keys(
        conn,
        "SELECT i.key FROM items i JOIN itemTypesCombined t USING (itemTypeID) "
        "WHERE t.typeName NOT IN ('attachment', 'note', 'annotation')",
    )
    children = {
        kind: _keys(conn, f"SELECT i.key FROM {table} t JOIN items i USING (itemID)")
        for kind, table in (
            ("att", "itemAttachments"), ("ann", "itemAnnotations"), ("note", "itemNotes")
        )
    }  # fmt: skip
    key = rnd.choice(regular)
    choice = rnd.randrange(17)
    if choice == 0:
        db.set_field(key, "title", f"edited {rnd.randrange(10**6)}")
    elif choice == 1:
        db.add_tag(key, f"t{rnd.randrange(5)}")
    elif choice == 2 and db._items[key][1] == 1:
        db.add_to_collection(key, rnd.choice(["Inbox", "Read", "New/Child"]))
    elif choice == 3:
        paths = sorted(path for lib, path in db._collections if lib == 1)
        if paths:
            db.rename_collection(rnd.choice(paths), f"R{rnd.randrange(10**6)}")
    elif choice == 4:
        trashed = conn.execute(
            "SELECT 1 FROM deletedItems d JOIN items i USING (itemID) WHERE i.key = ?", (key,)
        ).fetchone()
        (db.restore if trashed else db.trash)(key)
    elif choice == 5 and children["ann"]:
        db.set_annotation(rnd.choice(children["ann"]), comment=f"c{rnd.randrange(10**6)}")
    elif choice == 6:
        pdf = db.add_attachment(key, filename="new.pdf")
        db.add_annotation(pdf, type=rnd.choice(["highlight", "image"]))
    elif choice == 7 and children["ann"] and rnd.random() < 0.4:
        db.erase(rnd.choice(children["ann"]))  # no stamp left: the children digest
    elif choice == 8 and children["att"] and rnd.random() < 0.3:
        db.trash(rnd.choice(children["att"]))
    elif choice == 9 and children["ann"]:  # Zotero renders an image: no row changes
        annotation = rnd.choice(children["ann"])
        where = "library" if db._items[annotation][1] == 1 else "groups/77"
        cache = data_dir / "cache" / where
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"{annotation}.png").write_bytes(PNG)
    elif choice == 10:
        db.add_item(title="brand new", library_id=rnd.choice([1, group]))
    elif choice == 11 and rnd.random() < 0.3:
        db.erase(key)
    elif choice == 12:  # a trash entry whose item keeps its stamp (any kind of item)
        any_key = rnd.choice(regular + children["att"] + children["ann"])
        conn.execute(
            "INSERT OR REPLACE INTO deletedItems VALUES (?, ?)", (db.item_id(any_key), db._edit())
        )
    elif choice == 13 and children["att"]:  # an attachment dragged onto another item
        attachment = rnd.choice(children["att"])
        same_library = [k for k in regular if db._items[k][1] == db._items[attachment][1]]
        conn.execute(
            "UPDATE itemAttachments SET parentItemID = ? WHERE itemID = ?",
            (db.item_id(rnd.choice(same_library)), db.item_id(attachment)),
        )
        db.touch(attachment)
    elif choice == 14 and children["note"]:  # a child note edited: its own stamp
        db.set_note(rnd.choice(children["note"]), f"<p>edited {rnd.randrange(10**6)}</p>")
    elif choice == 15 and children["note"] and rnd.random() < 0.5:
        db.erase(rnd.choice(children["note"]))  # no stamp left: the children digest
    elif choice == 16:
        db.add_note(key, "<p>a new child note</p>")


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("which", ["user", "group"])
def test_fast_cursor_reads_answer_what_the_python_way_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, which: str
) -> None:
    """Snapshot for snapshot — items, all_keys, warnings and the cursor with its digests and
    boundary hashes — over random edits, often in the cursor's own second."""
    monkeypatch.setattr(sqlite_cursor, "SETTLE_NS", 10**18)  # every read is a real read
    monkeypatch.setattr(sqlite_build, "DETAILS_BY_ID_SHARE", 100.0)  # never too many for SQL
    rnd = random.Random(seed)
    data_dir, group = _random_library(tmp_path, rnd)
    source = SqliteSource(data_dir, library_id=group if which == "group" else None)
    fast_answers: list[bool] = []
    real_changes = SqliteSource._read_changes

    def spy(self: SqliteSource, *args: object, **kwargs: object) -> object:
        answer = real_changes(self, *args, **kwargs)  # type: ignore[arg-type]
        fast_answers.append(answer is not None)
        return answer

    monkeypatch.setattr(SqliteSource, "_read_changes", spy)
    cursor = source.read().cursor
    clock = datetime(2025, 2, 1, 12, 0, 0)
    for _ in range(14):
        with ZoteroDB.open(data_dir / "zotero.sqlite", seed=rnd.randrange(10**6)) as db:
            for _ in range(rnd.randrange(0, 3)):
                clock += timedelta(seconds=rnd.choice([0, 0, 1, 30]))
                db.set_time(clock.isoformat(sep=" "))
                _random_edit(db, rnd, data_dir, group)
        monkeypatch.setattr(sqlite_module, "FAST_CURSOR_READS", True)
        fast = source.read(since=cursor)
        monkeypatch.setattr(sqlite_module, "FAST_CURSOR_READS", False)
        slow = source.read(since=cursor)
        full = {item.key: item for item in source.read().items}

        assert fast == slow
        assert all(full[item.key] == item for item in fast.items)
        cursor = fast.cursor
    assert any(fast_answers)  # the SQL way answered (it hands "everything" over)


def test_children_digest_in_sql_is_the_python_one(tmp_path: Path) -> None:
    data_dir, group = _random_library(tmp_path, random.Random(3))
    for library_id in (1, group):
        with sqlite3.connect(data_dir / "zotero.sqlite") as conn:
            info = sqlite_schema._library_info(conn, library_id, "test")
            rows = sqlite_queries._query_rows(conn, library_id, details=False)
            builder = sqlite_build._Builder(rows, info, {})
            top = max(rows.items)
            for low in (0, 5, top // 2, top - 1, top, top + 10):
                got = sqlite_changes._children_digests(conn, library_id, low, top)
                assert got[low] == builder._children_digest(low)
                assert got[top] == builder._children_digest(top)
        conn.close()


@pytest.mark.parametrize("with_group", [False, True])
def test_children_digest_sees_unstamped_erasures_moves_and_swaps(
    tmp_path: Path, with_group: bool
) -> None:
    """The digest is what catches child changes that leave no stamp. Without a group the
    database holds one library, and the digest is summed without a join to `items`."""
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-01-01 09:00:00")
        parents = [db.add_item("journalArticle", title=f"Item {i}") for i in range(3)]
        pdfs = [db.add_attachment(key, filename=f"{n}.pdf") for n, key in enumerate(parents)]
        for pdf in pdfs:
            db.add_annotation(pdf, type="highlight")
        if with_group:
            group = db.add_group(77, "Lab")
            other = db.add_item("book", title="Theirs", library_id=group)
            db.add_annotation(db.add_attachment(other, filename="g.pdf"), type="highlight")
    conn = sqlite3.connect(data_dir / "zotero.sqlite")
    ids = dict(conn.execute("SELECT key, itemID FROM items"))
    pdf_ids = [ids[key] for key in pdfs]
    top = max(ids.values())

    def digest() -> str:
        got = sqlite_changes._children_digests(conn, 1, top)[top]
        rows = sqlite_queries._query_rows(conn, 1, details=False)
        info = sqlite_schema._library_info(conn, 1, "test")
        assert got == sqlite_build._Builder(rows, info, {})._children_digest(top)
        return got

    seen = {digest()}
    # no clientDateModified is touched below: only the digest can tell
    conn.execute(
        "UPDATE itemAttachments SET parentItemID = ? WHERE itemID = ?",
        (ids[parents[1]], pdf_ids[0]),
    )  # moved
    seen.add(digest())
    conn.execute(
        "UPDATE itemAttachments SET parentItemID = ? WHERE itemID = ?",
        (ids[parents[0]], pdf_ids[1]),
    )  # and the other way: the two swapped parents
    seen.add(digest())
    conn.execute("DELETE FROM itemAnnotations WHERE parentItemID = ?", (pdf_ids[2],))  # erased
    seen.add(digest())
    assert len(seen) == 4
    conn.close()


def test_torn_copy_during_a_cursor_read_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor read checks the tables it scans (beside the read, in a thread): a torn
    index page of itemAttachments, which no query of it touches, still costs the attempt."""
    monkeypatch.setattr(sqlite_cursor, "SETTLE_NS", 10**18)
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-01-01 09:00:00")
        key = db.add_item(title="Annotated")
        pdf = db.add_attachment(key, filename="a.pdf")
        for i in range(300):
            db.add_annotation(pdf, text=f"highlight {i}", comment="x" * 40)
            other = db.add_item(title=f"Other {i}")
            db.add_attachment(other, filename=f"{i}.pdf", content_type=f"application/x-{i:04d}")
        db.commit()
        (root,) = db.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'itemAttachments_contentType'"
        ).fetchone()
        (page_size,) = db.conn.execute("PRAGMA page_size").fetchone()
    source = SqliteSource(data_dir, retry_delay=0)
    cursor = source.read().cursor
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_time("2025-02-01 09:00:00")
        db.set_field(key, "title", "Annotated (edited)")
    calls = tear_first_copy(monkeypatch, root, page_size)

    changed = source.read(since=cursor)

    assert len(calls) == 2
    assert [(i.key, i.title) for i in changed.items] == [(key, "Annotated (edited)")]
    assert len(changed.items[0].annotations) == 300
