"""`.zotero-bridge/library.json`: every item, for the Obsidian plugin, written at each sync."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

from bridge.library_index import INDEX_NAME, MAX_TITLE
from bridge.statefolder import StateFileRefused
from bridge.sync import sync
from tests.helpers import vault_config, with_the_plugin


def read_index(vault: Path) -> dict:
    return json.loads((vault / ".zotero-bridge" / INDEX_NAME).read_text())


def rows(vault: Path) -> dict[str, dict]:
    return {row["key"]: row for row in read_index(vault)["items"]}


@pytest.fixture
def library(tmp_path: Path) -> tuple[ZoteroDB, dict[str, str], Path]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite", schema=123, journal="delete")
    db.set_time("2025-01-01 09:00:00")
    keys = {
        "resnet": db.add_item(
            "conferencePaper", title="Deep Residual Learning", date="2016-06-27",
            creators=[("author", "Kaiming", "He"), ("author", "Xiangyu", "Zhang")],
            citation_key="he2016deep", proceedingsTitle="CVPR", tags=["reading"],
        ),
        "hostile": db.add_item(
            "journalArticle", title="<% tp.system.exec('rm') %> [[Evil]] " + "x" * 400,
            date="2020", creators=[("author", "Eve", "<script>")], citation_key="bad key]]",
            tags=["reading"],
        ),
        "unfiled": db.add_item("journalArticle", title="Outside the filters", date="2019"),
        "trashed": db.add_item("journalArticle", title="In the trash", tags=["reading"]),
    }  # fmt: skip
    db.add_attachment(keys["resnet"], filename="he.pdf", title="Full Text PDF")
    db.commit()
    db.trash(keys["trashed"])
    db.commit()
    return db, keys, data_dir


def test_every_untrashed_item_is_indexed_noted_or_not(tmp_path: Path, library) -> None:
    db, keys, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir, filter_tags=("reading",))
    sync(config)
    index = read_index(vault)
    assert index["complete"] and index["count"] == 3
    found = rows(vault)
    assert set(found) == {keys["resnet"], keys["hostile"], keys["unfiled"]}
    resnet = found[keys["resnet"]]
    assert resnet["citekey"] == "he2016deep" and resnet["year"] == 2016
    assert resnet["surnames"] == ["He", "Zhang"] and resnet["venue"] == "CVPR"
    assert resnet["note"] and (vault / resnet["note"]).is_file()
    assert resnet["pass"] == 0 and resnet["status"] == "to-read" and resnet["pdf"]
    assert found[keys["unfiled"]]["note"] is None  # outside [filters]: citable, no note
    hostile = found[keys["hostile"]]
    assert hostile["citekey"] == ""  # not a plain key: left out, the item key stands in
    assert "<%" not in hostile["title"] and "[[" not in hostile["title"]
    assert len(hostile["title"]) <= MAX_TITLE
    mode = os.stat(vault / ".zotero-bridge" / INDEX_NAME).st_mode & 0o777
    assert mode == 0o644


def test_a_vault_without_the_plugin_gets_no_index_until_the_plugin_is_installed(
    tmp_path: Path, library
) -> None:
    _, keys, data_dir = library
    vault = tmp_path / "vault"
    vault.mkdir()
    config = vault_config(vault, zotero_dir=data_dir)
    sync(config)  # nothing reads an index here: none is written (a sync pays nothing for it)
    assert not (vault / ".zotero-bridge" / INDEX_NAME).exists()
    with_the_plugin(vault)
    sync(config)  # nothing changed in Zotero: the whole index is built from one full read
    assert keys["resnet"] in rows(vault)


def test_an_incremental_sync_merges_what_changed(tmp_path: Path, library) -> None:
    db, keys, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir)
    sync(config)
    before = (vault / ".zotero-bridge" / INDEX_NAME).stat().st_mtime_ns
    sync(config)  # nothing changed: the index is not rewritten
    assert (vault / ".zotero-bridge" / INDEX_NAME).stat().st_mtime_ns == before
    db.set_field(keys["unfiled"], "title", "Renamed in Zotero")
    db.erase(keys["hostile"])
    db.commit()
    sync(config)
    found = rows(vault)
    assert found[keys["unfiled"]]["title"] == "Renamed in Zotero"
    assert keys["hostile"] not in found and keys["resnet"] in found


def test_a_lost_index_is_rebuilt_whole_on_an_incremental_sync(tmp_path: Path, library) -> None:
    db, keys, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir)
    sync(config)
    (vault / ".zotero-bridge" / INDEX_NAME).write_text("{broken")
    db.set_field(keys["resnet"], "title", "Deep Residual Learning, again")
    db.commit()
    sync(config)
    index = read_index(vault)
    assert index["complete"] and index["count"] == 3


def test_an_index_damaged_by_someone_else_is_rebuilt_by_a_no_op_sync(
    tmp_path: Path, library
) -> None:
    db, keys, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir)
    sync(config)
    (vault / ".zotero-bridge" / INDEX_NAME).write_text("{broken")
    sync(config)  # nothing changed in Zotero or the notes
    assert read_index(vault)["count"] == 3


def test_a_link_planted_as_the_index_is_refused(tmp_path: Path, library) -> None:
    db, keys, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir)
    sync(config)
    target = tmp_path / "outside.json"
    target.write_text("precious")
    index = vault / ".zotero-bridge" / INDEX_NAME
    index.unlink()
    index.symlink_to(target)
    db.set_field(keys["resnet"], "title", "Changed")
    db.commit()
    with pytest.raises(StateFileRefused):
        sync(config)
    assert target.read_text() == "precious"


def test_search_ranks_as_the_plugin_s_modal_does() -> None:
    """The same order as obsidian-plugin/test/ranking.test.ts: exact title, citation key,
    author, year, then words anywhere."""
    from bridge.library_index import search

    def row(key: str, title: str, **kw: object) -> dict:
        return {"key": key, "title": title, "citekey": "", "authors": [], "surnames": [],
                "year": None, "venue": "", **kw}  # fmt: skip

    rows = [
        row("YEAR0001", "B", year=2016),
        row("AUTH0001", "C", authors=["Jo 2016son"], surnames=["2016son"]),
        row("CITE0001", "D", citekey="2016paper"),
        row("TITL0001", "2016"),
        row("NONE0001", "Nothing here"),
    ]
    assert [r["key"] for r in search(rows, "2016", 10)] == [
        "TITL0001", "CITE0001", "AUTH0001", "YEAR0001",
    ]  # fmt: skip
    assert [r["key"] for r in search(rows, "nothing here", 10)] == ["NONE0001"]


LOAD_UNDER_LIMIT = """
import resource, sys
from pathlib import Path
from bridge.library_index import load
from bridge.statefolder import StateFolder
resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))
with StateFolder(Path(sys.argv[1]), create=False) as folder:
    index = load(folder)
print(len(index["items"]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="RLIMIT_AS is a POSIX limit")
def test_a_small_index_loads_without_reserving_a_gigabyte(tmp_path: Path, library) -> None:
    """`load` asked `os.read` for 1 GiB whatever the file's size: Python reserves that much
    first, so under a memory limit (ulimit -v, a small machine with strict overcommit) every
    incremental sync and every `/items` failed with MemoryError on a kilobyte file."""
    import subprocess
    import sys

    _, _, data_dir = library
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    config = vault_config(vault, zotero_dir=data_dir, filter_tags=("reading",))
    sync(config)
    run = subprocess.run(
        [sys.executable, "-c", LOAD_UNDER_LIMIT, str(vault)],
        capture_output=True, text=True, timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert run.returncode == 0 and int(run.stdout) >= 2, run.stderr[-2000:]
