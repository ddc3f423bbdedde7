"""A sync does work in proportion to what changed: method notes, the reading queue and the
history are rebuilt only when their inputs changed — and are rebuilt when they did."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from zotero_db import ZoteroDB

import bridge.lineage_stage as lineage_stage
import bridge.workflow.queue as queue_module
from bridge.state import MIGRATIONS, State
from bridge.sync import PENDING, SyncOptions, sync
from tests.helpers import ModelSource, make_item, settled, vault_config
from tests.test_sqlite_source import fill_sample, new_db


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


class Calls:
    """Counts the calls of a real function (which still runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, module: object, name: str) -> None:
        self.count = 0
        real = getattr(module, name)

        def counted(*args: object, **kwargs: object) -> object:
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, counted)


@pytest.fixture
def lineage_library() -> ModelSource:
    return ModelSource(
        [
            make_item("NMS paper", key="NMSPAPER", citation_key="neubeck2006",
                      tags=("proposes:NMS",)),
            make_item("Soft-NMS paper", key="SOFTNMS1", citation_key="bodla2017",
                      tags=("extends:NMS",)),
            make_item("Unrelated paper", key="PLAIN001", citation_key="plain2020"),
        ]
    )  # fmt: skip


def test_a_change_outside_any_lineage_renders_no_method_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    planned = Calls(monkeypatch, lineage_stage, "plan_methods")
    lineage_library.put(make_item("Unrelated, renamed", key="PLAIN001", citation_key="plain2020"))
    result = sync(config, source=lineage_library)
    assert result.updated == 1
    assert planned.count == 0
    assert "Unrelated, renamed" in (tmp_path / "Papers" / "plain2020.md").read_text()


def test_a_change_to_a_lineage_paper_reaches_its_method_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    planned = Calls(monkeypatch, lineage_stage, "plan_methods")
    lineage_library.put(
        make_item("Soft-NMS, improved", key="SOFTNMS1", citation_key="bodla2017",
                  tags=("extends:NMS",))
    )  # fmt: skip
    sync(config, source=lineage_library)
    assert planned.count == 1
    note = (tmp_path / "Methods" / "NMS.md").read_text()
    assert "Soft-NMS, improved" in region(note, "extended-by")


def test_a_user_edit_of_a_method_note_is_seen_without_any_paper_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    method = tmp_path / "Methods" / "NMS.md"
    method.write_text(method.read_text() + "\nMy own thoughts.\n")
    settled(method)
    planned = Calls(monkeypatch, lineage_stage, "plan_methods")
    result = sync(config, source=lineage_library)
    assert planned.count == 1 and result.ok
    assert method.read_text().endswith("My own thoughts.\n")


def test_a_no_op_sync_renders_neither_method_notes_nor_the_queue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    planned = Calls(monkeypatch, lineage_stage, "plan_methods")
    rendered = Calls(monkeypatch, queue_module, "render_queue")
    result = sync(config, source=lineage_library)
    assert (planned.count, rendered.count) == (0, 0)
    assert result.created == result.updated == 0 and result.unchanged >= 3


def test_the_queue_lists_the_newest_papers_of_each_stage_and_counts_the_rest(
    tmp_path: Path,
) -> None:
    items = [
        make_item(f"Paper {year}", key=f"KEY{year}", citation_key=f"p{year}",
                  fields={"date": str(year)})
        for year in range(2001, 2006)
    ]  # fmt: skip
    sync(vault_config(tmp_path, queue_limit=2), source=ModelSource(items))
    listed = region((tmp_path / "Reading queue.md").read_text(), "queue-to-read")
    assert re.findall(r"\[\[(p\d+)\]\]", listed) == ["p2005", "p2004"]
    assert "and 3 more" in listed

    sync(vault_config(tmp_path, queue_limit=0), source=ModelSource(items))
    listed = region((tmp_path / "Reading queue.md").read_text(), "queue-to-read")
    assert re.findall(r"\[\[(p\d+)\]\]", listed) == [f"p{y}" for y in range(2005, 2000, -1)]
    assert "more" not in listed


def test_a_paper_changed_on_disk_moves_in_the_queue(tmp_path: Path) -> None:
    items = [make_item(f"Paper {n}", key=f"KEY{n}", citation_key=f"p{n}") for n in range(3)]
    config = vault_config(tmp_path)
    source = ModelSource(items)
    sync(config, source=source)
    note = tmp_path / "Papers" / "p1.md"
    note.write_text(note.read_text().replace("pass: 0", "pass: 1"))
    sync(config, source=source)
    queue = (tmp_path / "Reading queue.md").read_text()
    assert "[[p1]]" in region(queue, "queue-decide")
    assert "[[p1]]" not in region(queue, "queue-to-read")


def test_an_interrupted_sync_catches_up_the_history_from_every_paper(
    tmp_path: Path, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    with State(tmp_path) as state:
        assert state.get_meta(PENDING) is None  # a finished sync clears it
        with state.transaction():
            state.db.execute("DELETE FROM progress_log")
            state.set_meta(PENDING, "1")  # as a sync killed after writing notes leaves it
    sync(config, source=lineage_library)
    with State(tmp_path) as state:
        logged = {row[0] for row in state.db.execute("SELECT note_id FROM progress_log")}
        assert logged == {"NMSPAPER", "SOFTNMS1", "PLAIN001"}
        assert state.get_meta(PENDING) is None


def test_facts_cached_before_the_queue_columns_existed_are_migrated(tmp_path: Path) -> None:
    items = [make_item("Old paper", key="OLDKEY01", citation_key="old2001",
                       tags=("proposes:Old Method",))]  # fmt: skip
    config = vault_config(tmp_path)
    sync(config, source=ModelSource(items))
    with State(tmp_path) as state, state.transaction():  # back to a schema-3 state DB
        state.db.execute("DELETE FROM migrations WHERE version >= 4")
        state.db.execute("DROP TABLE seen_text")
        for index in ("paper_meta_stage", "paper_meta_lineage", "progress_log_note",
                      "notes_light"):  # fmt: skip
            state.db.execute(f"DROP INDEX {index}")
        for column in ("lineage", "stage", "sort_year", "sort_title"):
            state.db.execute(f"ALTER TABLE paper_meta DROP COLUMN {column}")
    with State(tmp_path) as state:
        assert state.schema_version == len(MIGRATIONS)
        row = state.db.execute(
            "SELECT lineage, stage, sort_year, sort_title FROM paper_meta"
        ).fetchone()
        assert row == (1, "to-read", 2016, "old paper")
    result = sync(config, source=ModelSource(items), options=SyncOptions())
    assert result.ok


def test_the_state_db_keeps_bases_out_of_memory_until_asked(tmp_path: Path) -> None:
    sync(vault_config(tmp_path), source=ModelSource([make_item("A", key="AAAAAAAA")]))
    with State(tmp_path) as state:
        note = state.notes()["AAAAAAAA"]
        assert note.base_raw is None
        assert note.base["properties"]["title"] == "A"
    with sqlite3.connect(tmp_path / ".zotero-bridge" / "state.sqlite") as db:
        assert db.execute("SELECT count(*) FROM paper_meta").fetchone() == (1,)


def test_counts_of_a_first_and_a_second_sync(tmp_path: Path, lineage_library: ModelSource) -> None:
    first = sync(vault_config(tmp_path), source=lineage_library)
    assert (first.created, first.unchanged) == (3 + 1, 0)  # three papers, one method (NMS)
    second = sync(vault_config(tmp_path), source=lineage_library)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 4)


def test_an_incremental_sync_with_the_same_keys_looks_up_only_its_notes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with new_db(tmp_path) as db:
        keys = fill_sample(db)
        for index in range(5):
            db.add_item(title=f"Filler {index}", date="2010")
        db.commit()
    data_dir = tmp_path / "Zotero"
    vault = tmp_path / "vault"
    vault.mkdir()
    config = vault_config(vault, source="sqlite", zotero_dir=data_dir)
    first = sync(config)
    everything: list[str | None] = []
    real_notes = State.notes

    def notes(self: State, kind: str | None = None) -> dict:
        everything.append(kind)
        return real_notes(self, kind)

    monkeypatch.setattr(State, "notes", notes)
    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.set_field(keys["resnet"], "title", "Deep Residual Learning, revised")
        db.commit()
    result = sync(config)
    assert None not in everything  # not every note: the changed item's and its links' alone
    # the paper, and the ResNet method note that lists it by title
    assert (result.updated, result.updated + result.unchanged) == (2, first.created)
    note = next((vault / "Papers").glob("he2016deep*.md")).read_text()
    assert "Deep Residual Learning, revised" in note
    assert "'[[srivastava2015]]'" in note  # the related item's note, found by key

    with ZoteroDB.open(data_dir / "zotero.sqlite") as db:
        db.erase(keys["highway"])
        db.commit()
    result = sync(config)  # a key is gone: the whole check, which marks the note
    assert None in everything and result.deleted == 1


def test_a_method_note_that_could_not_be_written_is_tried_again(
    tmp_path: Path, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    method = tmp_path / "Methods" / "NMS.md"
    method.chmod(0o444)  # the user's wish: left alone, and said so at every sync
    lineage_library.put(
        make_item("Soft-NMS, improved", key="SOFTNMS1", citation_key="bodla2017",
                  tags=("extends:NMS",))
    )  # fmt: skip
    first = sync(config, source=lineage_library)
    again = sync(config, source=lineage_library)
    assert [e["path"] for e in first.errors] == ["Methods/NMS.md"]
    assert [e["path"] for e in again.errors] == ["Methods/NMS.md"]
    method.chmod(0o644)
    sync(config, source=lineage_library)
    assert "Soft-NMS, improved" in region(method.read_text(), "extended-by")


def test_a_queue_that_could_not_be_written_is_tried_again(
    tmp_path: Path, lineage_library: ModelSource
) -> None:
    config = vault_config(tmp_path)
    sync(config, source=lineage_library)
    queue = tmp_path / "Reading queue.md"
    queue.chmod(0o444)
    lineage_library.put(make_item("Plain, renamed", key="PLAIN001", citation_key="plain2020"))
    first = sync(config, source=lineage_library)
    again = sync(config, source=lineage_library)
    assert [e["path"] for e in first.errors] == ["Reading queue.md"]
    assert [e["path"] for e in again.errors] == ["Reading queue.md"]
    queue.chmod(0o644)
    assert sync(config, source=lineage_library).ok
    assert "Plain, renamed" in queue.read_text()
