"""A user's frontmatter survives the bridge's property updates byte-for-byte where it can."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from bridge.config import Config
from bridge.sync import sync
from tests.helpers import ModelSource, make_item

USER_YAML = """# TODO ask Bob about this paper
pass: 0  # finished pass 1 on the train
reading_time: 1:30
peer_reviewed: no
version: 1.10
room: 010
yes: keep me
quoted: "double"
"""


def setup(tmp_path: Path):
    item = make_item("Original", citation_key="paper2021")
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    sync(config, source=source)
    return item, source, config, tmp_path / "Papers" / "paper2021.md"


def test_comments_and_values_survive_a_title_change(tmp_path: Path) -> None:
    item, source, config, note = setup(tmp_path)
    text = note.read_text().replace("pass: 0\n", USER_YAML, 1)
    note.write_text(text)
    source.put(replace(item, fields={**item.fields, "title": "Changed: in Zotero"}))
    result = sync(config, source=source)
    assert result.updated == 1 and result.ok
    after = note.read_text()
    assert USER_YAML in after
    assert "title: 'Changed: in Zotero'" in after


def test_duplicate_keys_and_aliases_leave_the_note_alone(tmp_path: Path) -> None:
    item, source, config, note = setup(tmp_path)
    for bad in ("rating: 1\nrating: 2\n", "base: &b 1\ncopy: *b\n"):
        note.write_text(note.read_text().replace("pass: 0\n", f"pass: 0\n{bad}", 1))
        before = note.read_bytes()
        source.put(replace(item, fields={**item.fields, "title": f"T {len(bad)}"}))
        result = sync(config, source=source)
        assert result.skipped == 1 and note.read_bytes() == before
        note.write_text(note.read_text().replace(bad, ""))
