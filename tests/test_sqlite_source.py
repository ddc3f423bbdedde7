"""The sqlite source against real Zotero files and Zotero-layout databases built per schema.

What must hold (DESIGN.md, "Reading Zotero safely"): Zotero's files are never written, locked
or joined by new files; every committed change is seen, also while Zotero holds its exclusive
lock (rollback journal) or keeps changes in an un-checkpointed WAL; torn copies are retried;
bad paths and files give a `SourceError` that says what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from zotero_db import ZoteroDB, hold_exclusive_lock

import bridge.sources.sqlite as sqlite_module
import bridge.sources.sqlite.build as sqlite_build
import bridge.sources.sqlite.copy as sqlite_copy
import bridge.sources.sqlite.cursor as sqlite_cursor
import bridge.sources.sqlite.queries as sqlite_queries
from bridge.errors import SchemaVersionError, SourceError
from bridge.model import ANNOTATION_TYPES, Creator, Item, Library
from bridge.sources import Source
from bridge.sources.sqlite import SqliteSource

# ------------------------------------------------------------------------------ helpers


@pytest.fixture(autouse=True)
def _private_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Snapshots go to a temp root of this test only, so leftovers can be counted."""
    root = tmp_path / "system-tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def new_db(tmp_path: Path, schema: int = 123, journal: str = "delete") -> ZoteroDB:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir(exist_ok=True)
    return ZoteroDB.create(data_dir / "zotero.sqlite", schema=schema, journal=journal)


def fill_sample(db: ZoteroDB) -> dict[str, str]:
    """A small library touching every part of the model; returns keys by role."""
    db.set_time("2025-01-01 09:00:00")
    keys = {}
    keys["resnet"] = db.add_item(
        "conferencePaper",
        title="Deep Residual Learning for Image Recognition",
        date="2016-06-27",
        creators=[("author", "Kaiming", "He"), ("author", "", "李航", 1), ("editor", "A", "B")],
        tags=["cnn", ("auto-tag", 1)],
        collections=["Vision/Detection", "Reading"],
        extra="Citation Key: he2016deep\nproposes: ResNet",
        DOI="10.1109/CVPR.2016.90",
        proceedingsTitle="CVPR",
        abstractNote="Deeper neural networks are more difficult to train.",
        url="https://arxiv.org/abs/1512.03385",
        accessDate="2024-02-03 04:05:06",
    )
    keys["highway"] = db.add_item(
        "journalArticle", title="Highway Networks", date="May 2015", citation_key="srivastava2015"
    )
    keys["pdf"] = db.add_attachment(keys["resnet"], filename="he2016.pdf", title="Full Text PDF")
    keys["html"] = db.add_attachment(
        keys["resnet"], content_type="text/html", link_mode="linked_url", url="https://x.org"
    )
    keys["highlight"] = db.add_annotation(
        keys["pdf"],
        text="residual",
        comment="key idea",
        color="#FF6666",
        page_label="3",
        sort_index="00002|000100|00200",
        position={"pageIndex": 2, "rects": [[1, 2, 3, 4]]},
        tags=["method"],
    )
    keys["note_ann"] = db.add_annotation(
        keys["pdf"],
        type="note",
        comment="see fig 2",
        page_label="1",
        sort_index="00000|000001|00010",
    )
    db.add_note(keys["resnet"], "<p>my note</p>")
    db.relate(keys["resnet"], keys["highway"])
    keys["trashed"] = db.add_item("book", title="Old Book", date="2001")
    db.trash(keys["trashed"])
    return keys


def tree_state(path: Path) -> dict[str, str]:
    """Every file under `path` with its sha256: proof that nothing was written or added."""
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def by_key(items: tuple[Item, ...]) -> dict[str, Item]:
    return {item.key: item for item in items}


def title_in_file(path: Path, key: str, flags: str = "") -> str:
    """Read a title straight from a file (used only on files we own, or with immutable=1)."""
    conn = sqlite3.connect(f"file:{path}?{flags}" if flags else f"file:{path}", uri=True)
    try:
        row = conn.execute(
            "SELECT v.value FROM items i JOIN itemData d ON d.itemID = i.itemID "
            "JOIN fieldsCombined f ON f.fieldID = d.fieldID AND f.fieldName = 'title' "
            "JOIN itemDataValues v ON v.valueID = d.valueID WHERE i.key = ?",
            (key,),
        ).fetchone()
    finally:
        conn.close()
    return row[0]


# ------------------------------------------------------------------------------ (a) real fixture


def test_real_zotero_7_database_reads_expected_items(real_zotero_db: Path) -> None:
    data_dir = real_zotero_db.parent
    before = tree_state(data_dir)
    source: Source = SqliteSource(data_dir)  # satisfies the protocol (checked statically)

    snapshot = source.read()

    assert len(snapshot.items) == 27  # 45 items, of which 18 are attachments
    assert snapshot.all_keys == {item.key for item in snapshot.items}
    assert snapshot.library == Library()
    assert not snapshot.incremental and snapshot.warnings == ()
    items = by_key(snapshot.items)
    assert {i.item_type for i in snapshot.items} == {"journalArticle", "dataset", "document"}

    mic = items["DUUR3Y3E"]
    assert mic.title == (
        "Antibiotic susceptibility testing using minimum inhibitory concentration (MIC) assays"
    )
    assert mic.creators[0] == Creator("author", "Nikol", "Kadeřábková")
    assert mic.fields["date"] == "2024-11-07"  # stored as "2024-11-07 2024-11-07"
    assert mic.fields["accessDate"] == "2025-08-08T12:57:32Z"
    assert mic.fields["DOI"] == "10.1038/s44259-024-00051-6"
    assert mic.collections == ("Vivli 2025",)
    assert mic.date_added == "2025-08-08T12:57:32Z"
    (pdf,) = mic.attachments
    assert (pdf.key, pdf.content_type, pdf.link_mode) == (
        "HZU3HNL8",
        "application/pdf",
        "imported_url",
    )
    assert pdf.path.startswith("storage:Kadeřábková et al. - 2024")

    assert items["W69MMGQS"].fields["date"] == "7/2003"  # stored as "2003-07-00 7/2003"
    assert items["ZXLJDYPE"].fields["date"] == "2024-5-9"
    assert items["NM5537RE"].item_type == "dataset"
    assert items["NM5537RE"].title == "CABBAGE"
    histology = items["MV3YPNNQ"]
    assert histology.collections == ("MSc 2025 - 2026/cect and vasculature",)
    assert {"CECT", "murine heart"} <= set(histology.tags)
    assert histology.creators[0].display == "Camille Pestiaux"
    two = items["NYPEKN2M"].attachments  # a PDF and an HTML snapshot, in the order added
    assert [a.key for a in two] == ["R8Q5FEQI", "YWG4RWVM"]
    assert sum(len(i.attachments) for i in snapshot.items) == 18

    assert tree_state(data_dir) == before  # same bytes, no new files (-journal, -shm, …)


def test_real_fixture_copy_can_be_extended_with_the_builder(real_zotero_db: Path) -> None:
    db = ZoteroDB.open(real_zotero_db)
    key = db.add_item(title="Added to a copy", creators=[("author", "Ada", "Lovelace")])
    att = db.add_attachment(key, filename="a.pdf")
    db.add_annotation(att, text="hello", color="#2ea8e5")
    db.relate(key, "DUUR3Y3E")
    db.close()

    items = by_key(SqliteSource(real_zotero_db.parent).read().items)

    assert len(items) == 28
    assert items[key].annotations[0].text == "hello"
    assert items[key].related == ("DUUR3Y3E",)
    assert items["DUUR3Y3E"].related == (key,)


def test_reader_never_opens_zotero_files_for_writing(
    real_zotero_db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every `open` and `sqlite3.connect` the source makes is recorded: inside the data
    directory only binary reads happen, and SQLite never touches it."""
    data_dir = real_zotero_db.parent.resolve()
    opened: list[tuple[Path, str]] = []
    connected: list[Path] = []
    real_open, real_connect = open, sqlite3.connect

    def spy_open(file, mode="r", *args, **kwargs):
        opened.append((Path(file).resolve(), mode))
        return real_open(file, mode, *args, **kwargs)

    def spy_connect(database, *args, **kwargs):
        connected.append(Path(str(database).removeprefix("file:").split("?")[0]).resolve())
        return real_connect(database, *args, **kwargs)

    for module in (sqlite_copy, sqlite_cursor):  # every file the source opens itself
        monkeypatch.setattr(module, "open", spy_open, raising=False)
    monkeypatch.setattr(sqlite3, "connect", spy_connect)

    SqliteSource(data_dir).read()

    inside = [(p, m) for p, m in opened if p.is_relative_to(data_dir)]
    assert inside and all(mode == "rb" for _, mode in inside)
    assert connected and not any(p.is_relative_to(data_dir) for p in connected)


def test_accepts_the_sqlite_file_path_itself(real_zotero_db: Path) -> None:
    assert len(SqliteSource(real_zotero_db).read().items) == 27


# ------------------------------------------------------------------------------ (b) schemas


@pytest.mark.parametrize("schema", [120, 121, 122, 123, 125, 126, 129])
def test_every_supported_schema_reads_identically(tmp_path: Path, schema: int) -> None:
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    with new_db(reference_dir, schema=123) as db:
        fill_sample(db)
    with new_db(tmp_path, schema=schema) as db:
        fill_sample(db)

    expected = SqliteSource(reference_dir / "Zotero").read()
    got = SqliteSource(tmp_path / "Zotero").read()

    assert got.items == expected.items
    assert got.all_keys == expected.all_keys


@pytest.mark.parametrize(
    ("schema", "table", "column", "present"),
    [
        (121, "itemAttachments", "lastRead", False),
        (125, "itemAttachments", "lastRead", True),
        (125, "libraries", "isAdmin", True),
        (123, "items", "clientVersion", False),
        (129, "items", "clientVersion", True),
        (129, "itemDataValues", "valueNormalized", True),
        (129, "creators", "lastNameNormalized", True),
    ],
)
def test_builder_schema_variants_have_zoteros_columns(
    tmp_path: Path, schema: int, table: str, column: str, present: bool
) -> None:
    with new_db(tmp_path, schema=schema) as db:
        fill_sample(db)
        db.commit()
        columns = {row[1] for row in db.conn.execute(f"PRAGMA table_info({table})")}
        assert (column in columns) is present
        assert db.conn.execute("PRAGMA foreign_key_check").fetchall() == []


@pytest.mark.parametrize("version", [119, 130, 200])
def test_unknown_schema_version_is_refused(tmp_path: Path, version: int) -> None:
    with new_db(tmp_path) as db:
        db.add_item(title="x")
        db.conn.execute("UPDATE version SET version=? WHERE schema='userdata'", (version,))

    with pytest.raises(SchemaVersionError) as caught:
        SqliteSource(tmp_path / "Zotero").read()

    assert caught.value.found == version
    assert str(version) in str(caught.value)


def test_missing_userdata_version_is_refused(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        db.conn.execute("DELETE FROM version WHERE schema='userdata'")
    with pytest.raises(SchemaVersionError) as caught:
        SqliteSource(tmp_path / "Zotero").read()
    assert caught.value.found is None


# ------------------------------------------------------------------------------ (c) running Zotero


def _locked_for_readers(path: Path) -> bool:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0)
        try:
            conn.execute("SELECT count(*) FROM items").fetchone()
        finally:
            conn.close()
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc)
    return False


def test_reads_while_zotero_7_holds_the_exclusive_lock(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
    path = db.path
    with hold_exclusive_lock(path, "delete") as zotero:
        assert _locked_for_readers(path)  # the simulation is real: mode=ro fails
        zotero.set_time("2025-03-01 10:00:00")
        zotero.call("set_field", keys["highway"], "title", "Highway Networks (edited)")
        before = tree_state(path.parent)

        snapshot = SqliteSource(path.parent).read()

        assert by_key(snapshot.items)[keys["highway"]].title == "Highway Networks (edited)"
        assert _locked_for_readers(path)  # Zotero still holds its lock
        assert tree_state(path.parent) == before
        assert (path.parent / "zotero.sqlite-journal").exists()  # Zotero's own, persisted


def test_reads_committed_changes_still_in_zotero_10s_wal(tmp_path: Path) -> None:
    with new_db(tmp_path, schema=129, journal="wal") as db:
        keys = fill_sample(db)
    path = db.path
    with hold_exclusive_lock(path, "wal") as zotero:
        assert _locked_for_readers(path)
        zotero.set_time("2025-03-01 10:00:00")
        zotero.call("set_field", keys["highway"], "title", "Only in the WAL")
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > 0
        assert not Path(f"{path}-shm").exists()  # exclusive WAL: no shared memory file
        # The change is committed but not checkpointed: the main file alone lacks it.
        assert title_in_file(path, keys["highway"], "immutable=1") == "Highway Networks"
        before = tree_state(path.parent)

        snapshot = SqliteSource(path.parent).read()

        assert by_key(snapshot.items)[keys["highway"]].title == "Only in the WAL"
        assert tree_state(path.parent) == before
        assert _locked_for_readers(path)


def test_write_in_progress_is_rolled_back_in_the_copy_only(tmp_path: Path) -> None:
    """Zotero mid-transaction (or crashed in one): uncommitted pages already spilled into
    the main file and a hot journal next to it. The reader sees the last committed state."""
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
    path = db.path
    with hold_exclusive_lock(path, "delete") as zotero:
        main_before = hashlib.sha256(path.read_bytes()).hexdigest()
        big = "x" * 300_000
        zotero.call_uncommitted("set_field", keys["resnet"], "abstractNote", big, cache_size=5)
        zotero.call_uncommitted("set_field", keys["highway"], "title", "Uncommitted", cache_size=5)
        journal = Path(f"{path}-journal")
        assert journal.read_bytes()[:8] == sqlite_module.JOURNAL_MAGIC  # hot
        assert hashlib.sha256(path.read_bytes()).hexdigest() != main_before  # spilled
        before = tree_state(path.parent)

        items = by_key(SqliteSource(path.parent).read().items)

        assert items[keys["highway"]].title == "Highway Networks"
        assert items[keys["resnet"]].fields["abstractNote"].startswith("Deeper neural")
        assert tree_state(path.parent) == before


def test_hot_journal_of_a_multi_database_commit_is_never_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hot journal that names a super-journal would make SQLite look inside Zotero's data
    directory; the reader retries instead and finally says a write is in progress."""
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
    path = db.path
    connected: list[str] = []
    real_connect = sqlite3.connect

    def spy_connect(database, *args, **kwargs):
        connected.append(str(database))
        return real_connect(database, *args, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", spy_connect)
    with hold_exclusive_lock(path, "delete") as zotero:
        big = "y" * 300_000
        zotero.call_uncommitted("set_field", keys["highway"], "abstractNote", big, cache_size=5)
        journal = Path(f"{path}-journal")
        name = str(path.parent / "zotero.sqlite-mj0123ABCD").encode()
        lock_page = 0x40000000 // 4096 + 1
        with open(journal, "ab") as handle:  # the super-journal record SQLite appends at commit
            handle.write(lock_page.to_bytes(4, "big") + name)
            handle.write(len(name).to_bytes(4, "big") + sum(name).to_bytes(4, "big"))
            handle.write(sqlite_module.JOURNAL_MAGIC)
        connected.clear()

        with pytest.raises(SourceError, match="several databases is in progress"):
            SqliteSource(path.parent, retry_delay=0).read()

        assert connected == []  # no copy was ever opened
        zotero.kill()


def test_copy_that_changed_underneath_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with new_db(tmp_path) as db:
        fill_sample(db)
    calls: list[Path] = []
    real_copy = sqlite_copy._copy_file

    def copy_while_zotero_writes(source: Path, target: Path) -> None:
        real_copy(source, target)
        calls.append(source)
        if len(calls) == 1:  # a write lands while the first copy is being taken
            stat = source.stat()
            os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    monkeypatch.setattr(sqlite_copy, "_copy_file", copy_while_zotero_writes)

    snapshot = SqliteSource(tmp_path / "Zotero").read()

    assert len(snapshot.items) == 3
    assert len(calls) == 2


def tear_first_copy(monkeypatch: pytest.MonkeyPatch, root: int, page_size: int) -> list[Path]:
    """The first copy of the database gets a torn page `root` (half old, half garbage), as a
    copy racing Zotero's write would. Returns the copies' sources, one per attempt."""
    calls: list[Path] = []
    real_copy = sqlite_copy._copy_file

    def copy(source: Path, target: Path) -> None:
        real_copy(source, target)
        calls.append(source)
        if len(calls) == 1:
            with open(target, "r+b") as handle:
                handle.seek((root - 1) * page_size + 8)
                handle.write(b"\xa5\x5a" * (page_size // 4))

    monkeypatch.setattr(sqlite_copy, "_copy_file", copy)
    return calls


@pytest.mark.parametrize(
    "torn",
    [
        "items",  # a table page: the scan itself would trip over it
        "itemData_fieldID",  # an index page we never scan: only quick_check sees it
    ],
)
def test_torn_copy_is_detected_and_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torn: str
) -> None:
    """A page copied half before and half after a write: the attempt is thrown away, even
    when the torn page is one our queries would not touch (it proves the copy raced a write)."""
    with new_db(tmp_path) as db:
        fill_sample(db)
        for i in range(300):  # several pages per table and index
            db.add_item(title=f"filler {i}", DOI=f"10.1/{i}")
        db.commit()
        (root,) = db.conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name=?", (torn,)
        ).fetchone()
        (page_size,) = db.conn.execute("PRAGMA page_size").fetchone()
    calls = tear_first_copy(monkeypatch, root, page_size)

    snapshot = SqliteSource(tmp_path / "Zotero").read()

    assert len(snapshot.items) == 303
    assert len(calls) == 2


def test_files_that_never_settle_give_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _private_tempdir: Path
) -> None:
    with new_db(tmp_path) as db:
        fill_sample(db)
    real_copy = sqlite_copy._copy_file

    def always_changing(source: Path, target: Path) -> None:
        real_copy(source, target)
        stat = source.stat()
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))

    monkeypatch.setattr(sqlite_copy, "_copy_file", always_changing)

    with pytest.raises(SourceError, match="consistent snapshot.*changed while being copied"):
        SqliteSource(tmp_path / "Zotero", retry_delay=0).read()
    assert list(_private_tempdir.iterdir()) == []


# ------------------------------------------------------------------------------ (d) citation keys


def _write_bbt(data_dir: Path, rows: list[tuple[int, str, int, str, int]]) -> None:
    """A `better-bibtex.sqlite` in Better BibTeX 7's layout."""
    conn = sqlite3.connect(data_dir / "better-bibtex.sqlite")
    conn.execute(
        "CREATE TABLE citationkey (itemID NOT NULL PRIMARY KEY, itemKey NOT NULL, "
        "libraryID NOT NULL, citationKey NOT NULL CHECK (citationKey <> ''), "
        "pinned CHECK (pinned in (0, 1)), UNIQUE (libraryID, itemKey))"
    )
    conn.executemany("INSERT INTO citationkey VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def test_citation_key_precedence_native_then_bbt_then_extra(tmp_path: Path) -> None:
    extra = "PMID: 1\nCitation Key: fromExtra"
    with new_db(tmp_path) as db:
        native = db.add_item(title="a", citation_key="native", extra=extra)
        bbt = db.add_item(title="b", extra=extra)
        only_extra = db.add_item(title="c", extra=extra)
        none = db.add_item(title="d")
        other_library = db.add_item(title="e")
        ids = {k: db.item_id(k) for k in (native, bbt, other_library)}
    data_dir = tmp_path / "Zotero"
    _write_bbt(
        data_dir,
        [
            (ids[native], native, 1, "bbtNative", 0),
            (ids[bbt], bbt, 1, "bbtKey", 1),
            (ids[other_library], other_library, 7, "elsewhere", 0),
        ],
    )
    before = tree_state(data_dir)

    items = by_key(SqliteSource(data_dir).read().items)

    assert items[native].citation_key == "native"
    assert items[bbt].citation_key == "bbtKey"
    assert items[only_extra].citation_key == "fromExtra"
    assert items[none].citation_key == ""
    assert items[other_library].citation_key == ""
    assert tree_state(data_dir) == before


def test_broken_better_bibtex_file_only_costs_its_keys(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        key = db.add_item(title="a", extra="Citation Key: fromExtra")
    (tmp_path / "Zotero" / "better-bibtex.sqlite").write_text("not sqlite")

    snapshot = SqliteSource(tmp_path / "Zotero").read()

    assert by_key(snapshot.items)[key].citation_key == "fromExtra"
    assert len(snapshot.warnings) == 1 and "better-bibtex.sqlite" in snapshot.warnings[0]


# ------------------------------------------------------------------------------ (e) fields


def test_dates_creators_and_fields_are_normalised(tmp_path: Path) -> None:
    dates = ["2016-06-27", "June 2016", "2016", "7/2003", "27 June 2016", "Spring 2020"]
    with new_db(tmp_path) as db:
        keys = [db.add_item(title=f"t{i}", date=d) for i, d in enumerate(dates)]
        key = db.add_item(
            "book",
            title="Names",
            creators=[
                ("author", "", "李航", 1),
                ("editor", "Grace", "Hopper"),
                ("author", "", "WHO", 1),
            ],
            accessDate="2024-02-03T04:05:06Z",
            publisher="",
        )
        db.commit()
        stored = {v for (v,) in db.conn.execute("SELECT value FROM itemDataValues")}
    assert "2016-06-00 June 2016" in stored and "2016-00-00 2016" in stored

    items = by_key(SqliteSource(tmp_path / "Zotero").read().items)

    assert [items[k].fields["date"] for k in keys] == dates
    assert [items[k].year for k in keys] == [2016, 2016, 2016, 2003, 2016, 2020]
    names = items[key]
    assert names.creators == (
        Creator("author", "", "李航", name_only=True),
        Creator("editor", "Grace", "Hopper"),
        Creator("author", "", "WHO", name_only=True),
    )
    assert names.fields == {"title": "Names", "accessDate": "2024-02-03T04:05:06Z"}


def test_related_items_tags_and_collections(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
        lonely = db.add_item(title="no relations")
    items = by_key(SqliteSource(tmp_path / "Zotero").read().items)

    resnet = items[keys["resnet"]]
    assert resnet.related == (keys["highway"],)
    assert items[keys["highway"]].related == (keys["resnet"],)
    assert items[lonely].related == ()
    assert resnet.tags == ("auto-tag", "cnn")
    assert resnet.collections == ("Reading", "Vision/Detection")
    assert resnet.citation_key == "he2016deep"
    assert items[keys["highway"]].citation_key == "srivastava2015"
    assert [a.key for a in resnet.attachments] == [keys["pdf"], keys["html"]]
    pdf, html = resnet.attachments
    assert (pdf.title, pdf.link_mode) == ("Full Text PDF", "imported_file")
    assert pdf.path == "storage:he2016.pdf"
    assert (html.link_mode, html.content_type) == ("linked_url", "text/html")


def test_synced_library_relations_and_user_id(tmp_path: Path) -> None:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite", user_id=987654) as db:
        a, b = db.add_item(title="A"), db.add_item(title="B")
        db.relate(a, b)
        assert db.uri(b) == f"http://zotero.org/users/987654/items/{b}"

    snapshot = SqliteSource(data_dir, library_id=987654).read()  # zotero.org user ID

    assert snapshot.library == Library()
    assert by_key(snapshot.items)[a].related == (b,)


def test_group_library_is_read_on_its_own(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        mine = db.add_item(title="Mine")
        library_id = db.add_group(4242, "Lab")
        a = db.add_item(title="Group paper A", library_id=library_id)
        b = db.add_item(title="Group paper B", library_id=library_id)
        db.relate(a, b)
    data_dir = tmp_path / "Zotero"

    group = SqliteSource(data_dir, library_id=library_id).read()
    user = SqliteSource(data_dir).read()

    assert group.library == Library("group", 4242)
    assert group.all_keys == {a, b}
    assert all(item.library == Library("group", 4242) for item in group.items)
    assert by_key(group.items)[a].related == (b,)
    assert user.all_keys == {mine}
    by_group_id = SqliteSource(data_dir, library_id=4242).read()  # the API sources' notion
    assert by_group_id.library == Library("group", 4242) and by_group_id.all_keys == {a, b}
    with pytest.raises(SourceError, match="no user or group library with libraryID 9") as caught:
        SqliteSource(data_dir, library_id=9).read()
    assert "4242" in str(caught.value)  # the hint lists the libraries there are


# ------------------------------------------------------------------------------ (f) trash


def test_trashed_items_are_flagged_and_still_counted(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
        db.trash(keys["html"])  # a trashed attachment disappears from its parent
    snapshot = SqliteSource(tmp_path / "Zotero").read()
    items = by_key(snapshot.items)

    assert items[keys["trashed"]].trashed
    assert not items[keys["resnet"]].trashed
    assert keys["trashed"] in snapshot.all_keys
    assert [a.key for a in items[keys["resnet"]].attachments] == [keys["pdf"]]

    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.restore(keys["trashed"])
    assert not by_key(SqliteSource(tmp_path / "Zotero").read().items)[keys["trashed"]].trashed


# ------------------------------------------------------------------------------ (g) annotations


def test_annotations_of_every_type(tmp_path: Path) -> None:
    colors = ["#ffd400", "#FF6666", "#5fb236", "#2EA8E5", "#a28ae5", "#ffed00"]
    with new_db(tmp_path) as db:
        key = db.add_item(title="Annotated")
        pdf = db.add_attachment(key, filename="a.pdf")
        made = []
        for index, (kind, color) in enumerate(zip(ANNOTATION_TYPES, colors, strict=True)):
            made.append(
                db.add_annotation(
                    pdf,
                    type=kind,
                    text=f"text {kind}" if kind in ("highlight", "underline") else None,
                    comment=f"comment {index}",
                    color=color,
                    page_label=str(index + 1),
                    sort_index=f"{index:05d}|000000|00000",
                    tags=[f"tag{index}", ("shared", 1)],
                    date_added="2025-02-03 04:05:06",
                )
            )
        db.add_annotation(pdf, type=7, sort_index="99999|000000|00000")  # from a newer Zotero
    snapshot = SqliteSource(tmp_path / "Zotero").read()

    annotations = snapshot.items[0].annotations
    assert [a.key for a in annotations] == made  # sorted by sortIndex
    assert [a.annotation_type for a in annotations] == list(ANNOTATION_TYPES)
    assert [a.color for a in annotations] == [c.lower() for c in colors]
    assert [a.page_label for a in annotations] == ["1", "2", "3", "4", "5", "6"]
    first = annotations[0]
    assert (first.text, first.comment, first.attachment_key) == ("text highlight", "comment 0", pdf)
    assert first.tags == ("shared", "tag0")
    assert first.date_added == "2025-02-03T04:05:06Z"
    assert first.page_index == 0 and json.loads(first.position)["rects"]
    assert annotations[1].text == ""  # a note annotation has no text
    assert any("unknown annotation type 7" in w for w in snapshot.warnings)


# ------------------------------------------------------------------------------ (h) incremental


def _incremental_library(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    with new_db(tmp_path) as db:
        db.set_time("2025-01-01 09:00:00")
        keys = {"a": db.add_item(title="A", collections=["Inbox/Sub"]), "b": db.add_item(title="B")}
        keys["c"] = db.add_item(title="C")
        keys["pdf"] = db.add_attachment(keys["a"], filename="a.pdf")
        keys["ann"] = db.add_annotation(keys["pdf"], text="first", comment="old")
        keys["ann2"] = db.add_annotation(keys["pdf"], text="second")
    return tmp_path / "Zotero", keys


def _edit(data_dir: Path, when: str, action: str, *args: object, **kwargs: object) -> None:
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_time(when)
        getattr(db, action)(*args, **kwargs)


def test_annotation_edit_returns_only_its_parent_item(tmp_path: Path) -> None:
    data_dir, keys = _incremental_library(tmp_path)
    source = SqliteSource(data_dir)
    first = source.read()
    stamps = dict(
        sqlite3.connect(data_dir / "zotero.sqlite").execute(
            "SELECT key, clientDateModified FROM items"
        )
    )

    _edit(data_dir, "2025-02-01 12:00:00", "set_annotation", keys["ann"], comment="new comment")

    after = dict(
        sqlite3.connect(data_dir / "zotero.sqlite").execute(
            "SELECT key, clientDateModified FROM items"
        )
    )
    # Like Zotero: only the annotation's own row moved.
    assert {k for k in after if after[k] != stamps[k]} == {keys["ann"]}
    second = source.read(since=first.cursor)
    assert second.incremental
    assert [i.key for i in second.items] == [keys["a"]]
    assert second.items[0].annotations[0].comment == "new comment"
    assert second.all_keys == {keys["a"], keys["b"], keys["c"]}
    assert source.read(since=second.cursor).items == ()  # nothing changed since


def test_edit_in_the_cursors_own_second_is_not_lost(tmp_path: Path) -> None:
    """Zotero's stamps have one-second steps: a later edit may carry the cursor's own second.
    It must come through; an item of that second that did not change must not repeat."""
    data_dir, keys = _incremental_library(tmp_path)
    source = SqliteSource(data_dir)
    _edit(data_dir, "2025-02-01 12:00:00", "set_field", keys["b"], "title", "B1")
    first = source.read()
    assert source.read(since=first.cursor).items == ()

    _edit(data_dir, "2025-02-01 12:00:00", "set_field", keys["b"], "title", "B2")  # same second

    again = source.read(since=first.cursor)
    assert [(item.key, item.title) for item in again.items] == [(keys["b"], "B2")]
    assert source.read(since=again.cursor).items == ()


def test_incremental_sees_field_tag_collection_and_trash_changes(tmp_path: Path) -> None:
    data_dir, keys = _incremental_library(tmp_path)
    source = SqliteSource(data_dir)
    cursor = source.read().cursor

    _edit(data_dir, "2025-02-01 12:00:00", "set_field", keys["b"], "title", "B2")
    changed = source.read(since=cursor)
    assert [i.key for i in changed.items] == [keys["b"]]

    for day, (action, args, expected) in enumerate(
        [
            ("add_tag", (keys["c"], "new"), keys["c"]),
            ("add_to_collection", (keys["b"], "Inbox"), keys["b"]),
            ("trash", (keys["c"],), keys["c"]),
            ("add_attachment", (keys["b"],), keys["b"]),
        ],
        start=1,
    ):
        cursor = changed.cursor
        _edit(data_dir, f"2025-03-{day:02d} 12:00:00", action, *args)
        changed = source.read(since=cursor)
        assert [i.key for i in changed.items] == [expected], action


def test_collection_rename_returns_the_items_inside_it(tmp_path: Path) -> None:
    data_dir, keys = _incremental_library(tmp_path)
    source = SqliteSource(data_dir)
    cursor = source.read().cursor

    _edit(data_dir, "2025-02-01 12:00:00", "rename_collection", "Inbox", "Queue")

    changed = source.read(since=cursor)
    assert [(i.key, i.collections) for i in changed.items] == [(keys["a"], ("Queue/Sub",))]


def test_erased_item_leaves_all_keys_and_removed_children_force_a_full_read(
    tmp_path: Path,
) -> None:
    data_dir, keys = _incremental_library(tmp_path)
    source = SqliteSource(data_dir)
    cursor = source.read().cursor

    _edit(data_dir, "2025-02-01 12:00:00", "erase", keys["c"])
    after_erase = source.read(since=cursor)
    assert after_erase.all_keys == {keys["a"], keys["b"]}
    assert after_erase.items == ()

    # Deleting an annotation leaves no timestamp behind on its parent; the cursor's child
    # digest notices, and everything is returned so the parent's note loses the highlight.
    _edit(data_dir, "2025-03-01 12:00:00", "erase", keys["ann2"])
    after_delete = source.read(since=after_erase.cursor)
    assert after_delete.incremental
    items = by_key(after_delete.items)
    assert set(items) == {keys["a"], keys["b"]}
    assert [a.key for a in items[keys["a"]].annotations] == [keys["ann"]]


def test_better_bibtex_key_change_forces_a_full_read(tmp_path: Path) -> None:
    data_dir, keys = _incremental_library(tmp_path)
    _write_bbt(data_dir, [(1, keys["a"], 1, "old2025", 0)])
    source = SqliteSource(data_dir)
    cursor = source.read().cursor
    conn = sqlite3.connect(data_dir / "better-bibtex.sqlite")
    conn.execute("UPDATE citationkey SET citationKey='new2025'")
    conn.commit()
    conn.close()

    changed = source.read(since=cursor)

    assert by_key(changed.items)[keys["a"]].citation_key == "new2025"
    assert len(changed.items) == 3


def test_unrecognised_cursor_means_a_full_read(tmp_path: Path) -> None:
    data_dir, _ = _incremental_library(tmp_path)
    snapshot = SqliteSource(data_dir).read(since="garbage")
    assert len(snapshot.items) == 3 and not snapshot.incremental
    assert "cursor" in snapshot.warnings[0]


# ------------------------------------------------------------------------------ (i) bad input


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="does not exist") as caught:
        SqliteSource(tmp_path / "nowhere").read()
    assert "--zotero-dir" in str(caught.value)


def test_directory_without_zotero_database(tmp_path: Path) -> None:
    (tmp_path / "Zotero").mkdir()
    with pytest.raises(SourceError, match="no zotero.sqlite in") as caught:
        SqliteSource(tmp_path / "Zotero").read()
    assert "Data Directory Location" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"hello, I am a text file\n" * 100, "is not a Zotero database: file is not a database"),
        (b"", "is empty"),
    ],
)
def test_file_that_is_not_sqlite(tmp_path: Path, content: bytes, message: str) -> None:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    (data_dir / "zotero.sqlite").write_bytes(content)
    with pytest.raises(SourceError, match=message) as caught:
        SqliteSource(data_dir).read()
    assert "--zotero-dir" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None


def test_sqlite_file_that_is_not_zotero(tmp_path: Path) -> None:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    conn = sqlite3.connect(data_dir / "zotero.sqlite")
    conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(SourceError, match="not a Zotero database"):
        SqliteSource(data_dir).read()


def test_temp_directory_inside_the_data_directory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with new_db(tmp_path) as db:
        db.add_item(title="x")
    inside = tmp_path / "Zotero" / "tmp"
    inside.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(inside))
    with pytest.raises(SourceError, match="inside Zotero's data directory"):
        SqliteSource(tmp_path / "Zotero").read()
    assert list(inside.iterdir()) == []


def test_truncated_database_fails_fast_with_advice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _private_tempdir: Path
) -> None:
    source_dir = tmp_path / "complete"
    source_dir.mkdir()
    with new_db(source_dir) as db:
        for i in range(400):
            db.add_item(title=f"paper {i}", abstractNote="words " * 50)
    data = db.path.read_bytes()
    broken = tmp_path / "Zotero"
    broken.mkdir()
    (broken / "zotero.sqlite").write_bytes(data[: len(data) // 2])
    copies: list[Path] = []
    real_copy = sqlite_copy._copy_file
    monkeypatch.setattr(sqlite_copy, "_copy_file", lambda s, t: (copies.append(s), real_copy(s, t)))

    with pytest.raises(SourceError) as caught:
        SqliteSource(broken, retry_delay=0).read()

    message = str(caught.value)
    assert "malformed" in message and "zotero.sqlite.bak" in message
    assert len(copies) == 2  # unchanged bytes, same damage: no pointless retries
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert list(_private_tempdir.iterdir()) == []


# ------------------------------------------------------------------------------ (j) leftovers


def test_no_files_left_behind_anywhere(tmp_path: Path, _private_tempdir: Path) -> None:
    with new_db(tmp_path, schema=129, journal="wal") as db:
        keys = fill_sample(db)
    data_dir = tmp_path / "Zotero"
    _write_bbt(data_dir, [(1, keys["resnet"], 1, "he2016", 0)])
    before = tree_state(data_dir)
    source = SqliteSource(data_dir)

    cursor = source.read().cursor
    source.read(since=cursor)
    with hold_exclusive_lock(db.path, "wal") as zotero:
        zotero.call("set_field", keys["highway"], "title", "WAL title")
        during = tree_state(data_dir)
        assert by_key(source.read().items)[keys["highway"]].title == "WAL title"
        assert tree_state(data_dir) == during

    after = tree_state(data_dir)  # Zotero's own checkpoint on close changed zotero.sqlite
    assert sorted(after) == sorted(before)
    assert after["better-bibtex.sqlite"] == before["better-bibtex.sqlite"]
    assert list(_private_tempdir.iterdir()) == []


# ----------------------------------------------------------------------- (h2) incremental = full


def _random_library(tmp_path: Path, rnd: random.Random) -> Path:
    with new_db(tmp_path) as db:
        db.set_time("2025-01-01 09:00:00")
        keys = []
        for i in range(40):
            key = db.add_item(
                rnd.choice(["journalArticle", "book", "conferencePaper"]),
                title=f"Item {i}",
                date=rnd.choice(["2016-06-27", "May 2015", "2001"]),
                creators=[
                    ("author", f"F{j}", f"L{rnd.randrange(9)}") for j in range(rnd.randrange(3))
                ],
                tags=rnd.sample([f"t{n}" for n in range(6)], rnd.randrange(3)),
                collections=rnd.sample(
                    ["Inbox", "Inbox/Sub", "Read/Old", "Other"], rnd.randrange(3)
                ),
                DOI=f"10.1/{i}",
            )
            keys.append(key)
            for a in range(rnd.choice([0, 0, 1, 2])):
                pdf = db.add_attachment(key, filename=f"{i}-{a}.pdf", title=f"PDF {a}")
                for n in range(rnd.randrange(4)):
                    db.add_annotation(
                        pdf,
                        text=f"text {i} {a} {n}",
                        tags=rnd.sample(["a0", "a1", "a2"], rnd.randrange(2)),
                    )
        for _ in range(10):
            a, b = rnd.sample(keys, 2)
            db.relate(a, b)
    return tmp_path / "Zotero"


def _random_edit(db: ZoteroDB, rnd: random.Random, full: dict[str, Item]) -> None:
    """One edit Zotero could make, on items the last full read returned."""
    regular = sorted(full)
    key = rnd.choice(regular)
    attachments = [att.key for item in full.values() for att in item.attachments]
    annotations = [a.key for item in full.values() for a in item.annotations]
    paths = sorted(path for lib, path in db._collections if lib == 1)
    choice = rnd.randrange(14)
    if choice == 0:
        db.set_field(key, "title", f"edited {rnd.randrange(10**6)}")
    elif choice == 1:
        db.set_field(key, "date", rnd.choice(["2019-03-04", "", "June 1999"]))
    elif choice == 2:
        db.add_tag(key, f"t{rnd.randrange(8)}")
    elif choice == 3 and full[key].tags:
        db.remove_tag(key, rnd.choice(full[key].tags))
    elif choice == 4:
        db.add_to_collection(key, rnd.choice([*paths, "New/Child"]))
    elif choice == 5 and full[key].collections:
        db.remove_from_collection(key, rnd.choice(full[key].collections))
    elif choice == 6 and paths:
        db.rename_collection(rnd.choice(paths), f"R{rnd.randrange(10**6)}")
    elif choice == 7:
        db.relate(key, rnd.choice(regular))
    elif choice == 8:
        (db.restore if full[key].trashed else db.trash)(key)
    elif choice == 9 and annotations:
        db.set_annotation(rnd.choice(annotations), comment=f"c{rnd.randrange(10**6)}")
    elif choice == 10:
        pdf = db.add_attachment(key, filename="new.pdf")
        db.add_annotation(pdf, text="new", tags=["fresh"])
    elif choice == 11 and attachments:
        db.add_annotation(rnd.choice(attachments), text="added")
    elif choice == 12:
        db.add_item(
            title="brand new", tags=["t1"], collections=rnd.sample(paths, min(1, len(paths)))
        )
    elif choice == 13 and rnd.random() < 0.3:
        db.erase(key)


@pytest.mark.parametrize("seed", range(6))
def test_incremental_read_returns_the_items_of_a_full_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A cursor read looks up the details of the changed items alone: each item it returns is
    exactly the full read's item, and the read is the one a whole-table read would give."""
    # Every read a real one: some rounds edit nothing, and once the files are 2 s old such a
    # read would not look at all (`all_keys` None; test_sqlite_fastpath.py covers that).
    monkeypatch.setattr(sqlite_cursor, "SETTLE_NS", 10**18)
    rnd = random.Random(seed)
    data_dir = _random_library(tmp_path, rnd)
    source = SqliteSource(data_dir)
    by_id_calls: list[int] = []
    real_details = sqlite_queries._query_details

    def details(conn: sqlite3.Connection, rows: object, ids: object, **kw: bool) -> None:
        if ids is not None:
            by_id_calls.append(len(ids))  # type: ignore[arg-type]
        real_details(conn, rows, ids, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_queries, "_query_details", details)
    previous = source.read()
    clock = datetime(2025, 2, 1, 12, 0, 0)
    for _ in range(12):
        full_before = by_key(source.read().items)
        with ZoteroDB.open(data_dir / "zotero.sqlite", seed=rnd.randrange(10**6)) as db:
            for _ in range(rnd.randrange(1, 4)):
                # Often in the second of the cursor itself: the `>=` rule and boundary hashes.
                clock += timedelta(seconds=rnd.choice([0, 0, 1, 30]))
                db.set_time(clock.isoformat(sep=" "))
                _random_edit(db, rnd, full_before)
        monkeypatch.setattr(sqlite_build, "DETAILS_BY_ID_SHARE", 100.0)  # always by itemID
        incremental = source.read(since=previous.cursor)
        monkeypatch.setattr(sqlite_build, "DETAILS_BY_ID_SHARE", 0.0)  # always whole tables
        scanned = source.read(since=previous.cursor)
        full = source.read()

        assert incremental == scanned
        assert incremental.incremental and incremental.all_keys == full.all_keys
        everything = by_key(full.items)
        for item in incremental.items:
            assert item == everything[item.key]
        previous = incremental
    assert by_id_calls  # the by-itemID path was taken


def test_cursor_read_looks_up_only_the_changed_items(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fields, creators, tags… of unchanged items are not read at all by a cursor read."""
    with new_db(tmp_path) as db:
        db.set_time("2025-01-01 09:00:00")
        keys = [db.add_item(title=f"T{i}", creators=[("author", "A", f"B{i}")]) for i in range(30)]
        pdf = db.add_attachment(keys[0], filename="a.pdf")
        db.add_annotation(pdf, text="hi", tags=["x"])
    data_dir = tmp_path / "Zotero"
    source = SqliteSource(data_dir)
    cursor = source.read().cursor
    _edit(data_dir, "2025-02-01 12:00:00", "add_tag", keys[0], "new")
    looked_up: list[object] = []
    real_details = sqlite_queries._query_details

    def details(conn: sqlite3.Connection, rows: object, ids: object, **kw: bool) -> None:
        looked_up.append(ids if ids is None else sorted(ids))  # type: ignore[call-overload]
        real_details(conn, rows, ids, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(sqlite_queries, "_query_details", details)

    changed = source.read(since=cursor)

    (item,) = changed.items
    assert item.key == keys[0] and item.tags == ("new",) and item.annotations[0].tags == ("x",)
    assert looked_up == [[1, 31, 32]]  # the item, its attachment, its annotation
    assert len(changed.all_keys) == 30
