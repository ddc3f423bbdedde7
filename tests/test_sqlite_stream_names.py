"""A streamed library's naming pass (`heads()`) reads only what names come from
(`NAMING_FIELDS`, creators, tags): every note name, citation key and method must be the
ones the whole items give."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.lineage import item_edges
from bridge.sources.sqlite import NAMING_FIELDS, SqliteSource
from bridge.vault.names import paper_stem
from tests.test_sqlite_source import (
    _private_tempdir,  # noqa: F401 - autouse: snapshots in tmp_path
    fill_sample,
    new_db,
)
from tests.test_sqlite_stream import streamed_read


def named_library(tmp_path: Path) -> Path:
    with new_db(tmp_path) as db:
        fill_sample(db)
        db.add_item(title="Cited by key", extra="Citation Key: smith2020keyed\nNote: x",
                    tags=["proposes:Keyed Method"], date="2020-03-01")  # fmt: skip
        db.add_item(title="Methods in Extra: a study", extra="extends: Base Method",
                    date="ca. 1999", publicationTitle="A Journal")  # fmt: skip
        db.add_item(title="", date="")  # untitled, undated
        db.commit()
    return tmp_path / "Zotero"


def test_the_naming_pass_names_every_item_as_the_whole_item_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = named_library(tmp_path)
    whole = SqliteSource(data_dir).read()
    with streamed_read(data_dir, monkeypatch, chunk=3) as streamed:
        heads = list(streamed.items.heads())
        assert [h.key for h in heads] == [i.key for i in whole.items]
        for head, item in zip(heads, whole.items, strict=True):
            assert paper_stem(head) == paper_stem(item)
            assert head.citation_key == item.citation_key
            assert item_edges(head) == item_edges(item)
            assert set(head.fields) <= NAMING_FIELDS
            assert not head.attachments and not head.related
        # the sample holds fields the naming pass leaves out: it did read less
        assert any(set(item.fields) - NAMING_FIELDS for item in whole.items)
        assert {i.citation_key for i in whole.items} >= {"smith2020keyed"}
        methods = {
            m for i in whole.items for m in (*item_edges(i).proposes, *item_edges(i).extends)
        }
        assert {"Keyed Method", "Base Method"} <= methods
