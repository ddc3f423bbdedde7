"""The merge rules of DESIGN.md, one by one, through the real pipeline on a temp vault."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.model import Annotation, Creator
from bridge.sync import sync
from tests.helpers import (
    ModelSource,
    make_item,
    retitle,
    synced_paper,
    vault_config,
    with_annotations,
)


@pytest.fixture
def env(tmp_path: Path):
    item = make_item(
        "Deep Residual Learning for Image Recognition", citation_key="he2016deep", tags=("cnn",)
    )
    source = ModelSource([item])
    config = vault_config(tmp_path)
    sync(config, source=source)
    return source, config, tmp_path / "Papers" / "he2016deep.md", item


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in note"
    path.write_text(text.replace(old, new, 1))


def test_user_unchanged_takes_zoteros_value(env) -> None:
    source, config, path, item = env
    source.put(replace(item, fields={**item.fields, "title": "ResNet, revised"}))
    result = sync(config, source=source)
    assert result.updated == 1 and result.conflicts == 0
    assert "title: ResNet, revised" in path.read_text()


def test_user_change_is_kept_when_zotero_did_not_change(env) -> None:
    source, config, path, item = env
    edit(path, "title: Deep Residual", "title: My Deep Residual")
    source.put(replace(item, fields={**item.fields, "abstractNote": "New abstract."}))
    result = sync(config, source=source)
    text = path.read_text()
    assert result.conflicts == 0
    assert "title: My Deep Residual" in text and "New abstract." in text


def test_both_changed_scalar_conflict_preserves_users_value(env) -> None:
    source, config, path, item = env
    edit(path, "title: Deep Residual", "title: My Deep Residual")
    source.put(replace(item, fields={**item.fields, "title": "Zotero's new title"}))
    result = sync(config, source=source)
    text = path.read_text()
    assert result.conflicts == 1
    assert "title: Zotero's new title" in text
    assert "[!warning] zotero-bridge conflict: `title`" in text
    assert "My Deep Residual Learning for Image Recognition" in text
    again = sync(config, source=source)
    assert again.updated == 0 and again.conflicts == 0


def test_both_changed_lists_merge_as_sets(env) -> None:
    source, config, path, item = env
    edit(path, "tags:\n- cnn", "tags:\n- cnn\n- my-own")
    source.put(replace(item, tags=("vision",)))  # Zotero removed cnn, added vision
    sync(config, source=source)
    text = path.read_text()
    assert "\n- my-own" in text and "\n- vision" in text and "\n- cnn" not in text


def test_region_conflict_keeps_users_region_text(env) -> None:
    source, config, path, item = env
    edit(
        path, "An abstract.\n%% zob:end abstract %%", "An abstract. MY NOTE\n%% zob:end abstract %%"
    )
    source.put(replace(item, fields={**item.fields, "abstractNote": "Rewritten abstract."}))
    result = sync(config, source=source)
    text = path.read_text()
    assert result.conflicts == 1
    assert "Rewritten abstract.\n%% zob:end abstract %%" in text
    assert "> An abstract. MY NOTE" in text


def test_user_text_outside_regions_is_untouched(env) -> None:
    source, config, path, item = env
    edit(path, "### Method pipeline\n", "### Method pipeline\nMy own words.\n")
    edit(path, "status: to-read", "status: reading\nrating: 5\nmy_key: [a, b]")
    before = path.read_text()
    item2 = with_annotations(
        replace(item, fields={**item.fields, "title": "New"}),
        Annotation("ANNKEY22", "", "highlight", "highlighted", "a comment", "#2ea8e5", "4"),
    )
    source.put(item2)
    sync(config, source=source)
    after = path.read_text()
    body_before = before.split("## Highlights")[0].split("---\n", 2)[2]
    body_after = after.split("## Highlights")[0].split("---\n", 2)[2]
    # the header region follows Zotero (new title, the PDF the annotation came with); every
    # other byte of the body stays
    header_before, rest_before = body_before.split("%% zob:end header %%")
    header_after, rest_after = body_after.split("%% zob:end header %%")
    assert rest_before == rest_after
    assert "# Deep Residual" in header_before and "Open PDF" not in header_before
    assert "# New\n" in header_after and "[Open PDF](zotero://open-pdf/" in header_after
    assert "My own words." in after and "status: reading" in after and "rating: 5" in after
    assert "highlighted" in after and "^annkey22" in after


def test_broken_yaml_note_is_left_alone_and_reported(env) -> None:
    source, config, path, item = env
    path.write_text(path.read_text().replace("title:", "title: [broken", 1))
    before = path.read_bytes()
    source.put(replace(item, fields={**item.fields, "title": "Changed"}))
    result = sync(config, source=source)
    assert result.skipped == 1 and not result.ok
    assert "not valid YAML" in result.errors[0]["message"]
    assert path.read_bytes() == before


def test_broken_markers_note_is_left_alone(env) -> None:
    source, config, path, item = env
    path.write_text(path.read_text().replace("%% zob:end abstract %%\n", "", 1))
    before = path.read_bytes()
    source.put(replace(item, fields={**item.fields, "abstractNote": "Changed"}))
    result = sync(config, source=source)
    assert result.skipped == 1 and path.read_bytes() == before


def test_deleted_note_not_recreated_and_moved_note_found(env) -> None:
    source, config, path, item = env
    moved = path.parent.parent / "Elsewhere" / "renamed.md"
    moved.parent.mkdir()
    path.rename(moved)
    source.put(replace(item, fields={**item.fields, "title": "Moved title"}))
    result = sync(config, source=source)
    assert result.updated == 1 and "title: Moved title" in moved.read_text()
    assert not path.exists()
    moved.unlink()
    source.put(replace(item, fields={**item.fields, "title": "After delete"}))
    result = sync(config, source=source)
    assert not moved.exists() and not path.exists() and result.created == 0


def test_trashed_then_restored_status(env) -> None:
    source, config, path, item = env
    edit(path, "status: to-read", "status: reading")
    source.put(replace(item, trashed=True))
    result = sync(config, source=source)
    assert result.deleted == 1 and "status: deleted-in-zotero" in path.read_text()
    source.put(item)
    sync(config, source=source)
    assert "status: reading" in path.read_text()


def test_erased_item_keeps_its_note(env, tmp_path: Path) -> None:
    source, config, path, item = env
    other = make_item("Another paper")
    source.put(other)
    source.put(make_item("Third paper"))
    sync(config, source=source)
    source.erase(item.key)
    result = sync(config, source=source)
    assert result.deleted == 1 and path.exists()
    assert "status: deleted-in-zotero" in path.read_text()


@pytest.mark.parametrize("status", ["status: [reading, important]", None])
def test_trash_and_restore_gives_back_any_status(tmp_path: Path, status: str | None) -> None:
    item, source, config, note = synced_paper(tmp_path)
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


def test_reading_hint_is_given_once(tmp_path: Path) -> None:
    item, source, config, note = synced_paper(tmp_path)
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


def test_a_deleted_note_that_comes_back_is_synced_again(tmp_path: Path) -> None:
    item, source, config, note = synced_paper(tmp_path)
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


def test_markers_shown_in_a_code_block_are_text(tmp_path: Path) -> None:
    item, source, config, note = synced_paper(tmp_path)
    block = "```\n%% zob:begin annotations %%\n%% zob:end annotations %%\n```\n"
    note.write_text(
        note.read_text().replace("### Method pipeline\n", f"### Method pipeline\n{block}", 1)
    )
    retitle(source, item, "With a code block")
    result = sync(config, source=source)
    assert result.ok and block in note.read_text()


def test_crlf_in_a_zotero_abstract_makes_no_false_conflicts(tmp_path: Path) -> None:
    item = make_item("P", citation_key="crlf2020", fields={"abstractNote": "One.\r\n\r\nTwo."})
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    sync(config, source=source)
    for text in ("One.\r\n\r\nThree.", "Four.\r\n\r\nFive."):
        source.put(replace(item, fields={**item.fields, "abstractNote": text}))
        assert sync(config, source=source).conflicts == 0
