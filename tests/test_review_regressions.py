"""Regressions for problems a code review reproduced (each test failed before its fix)."""

from __future__ import annotations

import os
import unicodedata
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.apply import SyncResult, apply
from bridge.config import Config, config_from_dict
from bridge.errors import ConfigError
from bridge.model import Annotation, Creator
from bridge.plan import PlanContext, plan
from bridge.state import State
from bridge.sync import make_renderer, sync
from bridge.vault.fs import Vault
from tests.helpers import ModelSource, make_item, with_annotations


@pytest.fixture
def env(tmp_path: Path):
    item = make_item("A paper", citation_key="paper2022")
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    sync(config, source=source)
    return item, source, config, tmp_path / "Papers" / "paper2022.md"


def retitle(source: ModelSource, item, title: str):
    new = replace(item, fields={**item.fields, "title": title})
    source.put(new)
    return new


def test_same_size_save_in_the_same_mtime_tick_is_not_overwritten(env) -> None:
    item, source, config, note = env
    retitle(source, item, "Zotero title")
    ctx = PlanContext(config.papers_folder, make_renderer(config))
    with State(config.vault) as state:
        actions = plan(source.read(), state.notes(), Vault(config.vault), ctx)
        stat = os.stat(note)
        text = note.read_text()
        same_size = text.replace("- **Problem:** \n", "- **Problem:**X\n", 1)
        assert len(same_size.encode()) == len(text.encode())
        note.write_text(same_size)
        os.utime(note, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a coarse clock: same mtime
        result = apply(actions, Vault(config.vault), state, SyncResult())
    assert len(result.deferred) == 1 and "**Problem:**X" in note.read_text()


@pytest.mark.parametrize("status", ["status: [reading, important]", None])
def test_trash_and_restore_gives_back_any_status(env, status: str | None) -> None:
    item, source, config, note = env
    text = note.read_text()
    note.write_text(text.replace("status: to-read\n", f"{status}\n" if status else "", 1))
    source.put(replace(item, trashed=True))
    sync(config, source=source)
    assert "status: deleted-in-zotero" in note.read_text()
    source.put(item)
    sync(config, source=source)
    after = note.read_text()
    if status:
        assert "status:\n- reading\n- important" in after or status in after
    else:
        assert "status:" not in after


def test_reading_hint_is_given_once(env) -> None:
    item, source, config, note = env
    annotated = with_annotations(item, Annotation("ANNOT222", "", "highlight", "text"))
    source.put(annotated)
    sync(config, source=source)
    assert "status: reading" in note.read_text()
    note.write_text(note.read_text().replace("status: reading", "status: to-read"))
    source.put(item)  # highlights removed …
    sync(config, source=source)
    source.put(annotated)  # … and added again
    sync(config, source=source)
    assert "status: to-read" in note.read_text()


def test_a_lone_surrogate_costs_one_item_not_the_sync(tmp_path: Path) -> None:
    bad = make_item("Broken", fields={"abstractNote": "Emoji \ud83d cut in half"})
    good = make_item("Fine", citation_key="fine2020")
    result = sync(Config(vault=tmp_path), source=ModelSource([bad, good]))
    assert (tmp_path / "Papers" / "fine2020.md").exists()
    assert result.created + result.skipped == 2


def test_a_deleted_note_that_comes_back_is_synced_again(env) -> None:
    item, source, config, note = env
    saved = note.read_text()
    note.unlink()
    sync(config, source=source)
    note.write_text(saved)  # undo in the file manager, git checkout, a sync service
    retitle(source, item, "After the return")
    result = sync(config, source=source)
    assert result.updated == 1 and "title: After the return" in note.read_text()


def test_moved_note_with_hundreds_of_authors_is_found(tmp_path: Path) -> None:
    authors = tuple(Creator("author", f"First{i}", f"Author{i}") for i in range(400))
    item = make_item("Big collaboration", citation_key="atlas2012", creators=authors)
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    sync(config, source=source)
    moved = tmp_path / "Elsewhere.md"
    (tmp_path / "Papers" / "atlas2012.md").rename(moved)
    retitle(source, item, "Observation of a new particle")
    result = sync(config, source=source)
    assert result.updated == 1 and "title: Observation of a new particle" in moved.read_text()


def test_a_note_with_a_very_long_name_stays_writable(env) -> None:
    item, source, config, note = env
    long = note.with_name("研" * 82 + ".md")  # 246 bytes + .md: allowed, temp name must fit
    note.rename(long)
    retitle(source, item, "Still updated")
    result = sync(config, source=source)
    assert result.ok and result.updated == 1 and "title: Still updated" in long.read_text()


def test_markers_shown_in_a_code_block_are_text(env) -> None:
    item, source, config, note = env
    block = "```\n%% zob:begin annotations %%\n%% zob:end annotations %%\n```\n"
    note.write_text(
        note.read_text().replace("### Method pipeline\n", f"### Method pipeline\n{block}", 1)
    )
    retitle(source, item, "With a code block")
    result = sync(config, source=source)
    assert result.ok and block in note.read_text()


def test_a_hostile_page_label_cannot_break_the_markers(tmp_path: Path) -> None:
    ann = Annotation("ANNOT333", "", "highlight", "x", page_label="3\n%% zob:end annotations %%\n")
    item = with_annotations(make_item("P", citation_key="p2020"), ann)
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    assert sync(config, source=source).ok
    source.put(replace(item, fields={**item.fields, "title": "Q"}))
    assert sync(config, source=source).ok


def test_an_nfd_name_counts_as_taken(tmp_path: Path) -> None:
    (tmp_path / "Papers").mkdir()
    nfd = unicodedata.normalize("NFD", "Müller 2020 - Über Netze")
    (tmp_path / "Papers" / f"{nfd}.md").write_text("my own note\n")
    item = make_item(
        "Über Netze", fields={"date": "2020"}, creators=(Creator("author", "Hans", "Müller"),)
    )
    sync(Config(vault=tmp_path), source=ModelSource([item]))
    names = [unicodedata.normalize("NFC", p.stem) for p in (tmp_path / "Papers").iterdir()]
    assert len(names) == len({n.casefold() for n in names}) == 2


def test_crlf_in_a_zotero_abstract_makes_no_false_conflicts(tmp_path: Path) -> None:
    item = make_item("P", citation_key="crlf2020", fields={"abstractNote": "One.\r\n\r\nTwo."})
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    sync(config, source=source)
    for text in ("One.\r\n\r\nThree.", "Four.\r\n\r\nFive."):
        source.put(replace(item, fields={**item.fields, "abstractNote": text}))
        assert sync(config, source=source).conflicts == 0


def test_papers_and_methods_folders_must_differ() -> None:
    with pytest.raises(ConfigError, match="must be different"):
        config_from_dict({"papers_folder": "Notes", "methods_folder": "notes"})
