"""Properties Obsidian reads as the bridge means them: YAML 1.2 values, Date & time values,
declared property types (`.obsidian/types.json`), a short venue for lists, no duplicate URL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bridge.config import Config
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from bridge.vault.notefile import HANDLER, parse_note
from bridge.vault.obsidian_types import BRIDGE_TYPES
from bridge.vault.render import obsidian_datetime
from tests.helpers import new_library

TRICKY = [
    "0o17", "1e3", "yes", "no", "on", "off", "y", "n", "~", "null", "NULL", "true", "False",
    "2024-01-02", "2024-01-02T10:11:12", "1:30", "12:30:45", "010", "08", "0x1F", "1_000",
    "0b101", ".inf", "-.5", "+1", ".NaN", "1.0e+3", "=", "<<", "", " x", "- a", "a: b", "#c",
    "'q'", '"q"', "1,000", "@a", "%x", "!x", "*x", "&x", "? x", "١٢",
]  # fmt: skip


def yaml12(text: str):
    """What a YAML 1.2 reader (as Obsidian's) makes of `text`: ruamel.yaml, pure Python."""
    return YAML(typ="safe", pure=True).load(io.StringIO(text))


@pytest.mark.parametrize("value", TRICKY)
def test_tricky_strings_read_back_as_the_same_strings_in_yaml_1_2(value: str) -> None:
    text = HANDLER.export({"title": value, "tags": [value, "x"]})
    assert yaml12(text) == {"title": value, "tags": [value, "x"]}


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30))
def test_any_string_reads_back_the_same_in_yaml_1_2(value: str) -> None:
    # as a note holds it: the frontmatter's last line ends before the closing `---` (a
    # block scalar's final newline is that line break)
    assert yaml12(HANDLER.export({"venue": value}) + "\n")["venue"] == value


@pytest.fixture
def library(tmp_path: Path):
    db, data_dir, vault = new_library(tmp_path)
    db.add_item(
        "conferencePaper",
        title="Adam: A Method for Stochastic Optimization",
        date="2015",
        proceedingsTitle="3rd International Conference on Learning Representations, ICLR 2015,"
        " San Diego, CA, USA, May 7-9, 2015, Conference Track Proceedings",
        DOI="10.48550/arXiv.1412.6980",
        url="https://doi.org/10.48550/arXiv.1412.6980",
        citation_key="kingma2015adam",
        date_added="2024-01-02 10:11:12",
    )
    db.add_item(
        "journalArticle",
        title="Deep learning",
        date="2015",
        publicationTitle="Nature",
        journalAbbreviation="Nature",
        DOI="10.1038/nature14539",
        citation_key="lecun2015deep",
        url="https://www.nature.com/articles/nature14539",
    )
    db.add_item(
        "journalArticle", title="0o17", date="2020", citation_key="yes",
        publicationTitle="1e3", tags=["on"],
    )  # fmt: skip
    db.commit()
    return data_dir, vault


def run(data_dir: Path, vault: Path) -> object:
    result = sync(Config(vault=vault, zotero_dir=data_dir), source=SqliteSource(data_dir))
    assert result.ok, result.errors
    return result


def props(path: Path) -> dict:
    return parse_note(str(path), path.read_text(encoding="utf-8")).properties


def test_short_venue_dates_and_no_doi_url(library) -> None:
    data_dir, vault = library
    run(data_dir, vault)
    adam = props(vault / "Papers" / "kingma2015adam.md")
    assert adam["venue_short"] == "ICLR 2015" and adam["venue"].startswith("3rd International")
    assert "url" not in adam  # it only repeated the DOI link
    assert adam["date_added"] == "2024-01-02T10:11:12"
    lecun = props(vault / "Papers" / "lecun2015deep.md")
    assert "venue_short" not in lecun  # `Nature` is short already
    assert lecun["url"] == "https://www.nature.com/articles/nature14539"
    queue = (vault / "Reading queue.md").read_text(encoding="utf-8")
    assert "(2015, ICLR 2015)" in queue and "San Diego" not in queue


def test_a_whole_note_reads_back_in_yaml_1_2(library) -> None:
    data_dir, vault = library
    run(data_dir, vault)
    text = (vault / "Papers" / "yes.md").read_text(encoding="utf-8")
    front = yaml12(text.split("---\n")[1])
    assert front["title"] == "0o17" and front["citekey"] == "yes"
    assert front["venue"] == "1e3" and front["tags"] == ["on"] and front["year"] == 2020
    assert front == props(vault / "Papers" / "yes.md")


@pytest.mark.parametrize(
    ("zotero", "obsidian"),
    [
        ("2024-01-02 10:11:12", "2024-01-02T10:11:12"),
        ("2024-01-02T10:11:12Z", "2024-01-02T10:11:12"),
        ("2024-01-02 10:11", "2024-01-02T10:11:00"),
        ("", ""),
        ("yesterday", "yesterday"),
    ],
)
def test_obsidian_datetime(zotero: str, obsidian: str) -> None:
    assert obsidian_datetime(zotero) == obsidian


def test_types_json_is_created_only_in_an_obsidian_vault(library) -> None:
    data_dir, vault = library
    run(data_dir, vault)
    assert not (vault / ".obsidian").exists()  # not an Obsidian vault yet: nothing made
    (vault / ".obsidian").mkdir()
    run(data_dir, vault)
    types = json.loads((vault / ".obsidian" / "types.json").read_text())["types"]
    assert types == BRIDGE_TYPES
    assert types["year"] == "number" and types["date_added"] == "datetime"
    assert types["authors"] == "multitext" and types["tags"] == "tags"


def test_types_json_is_merged_never_replaced(library) -> None:
    data_dir, vault = library
    (vault / ".obsidian").mkdir()
    mine = {"types": {"year": "text", "rating": "number"}, "other": [1, 2]}
    (vault / ".obsidian" / "types.json").write_text(json.dumps(mine))
    run(data_dir, vault)
    data = json.loads((vault / ".obsidian" / "types.json").read_text())
    assert data["types"]["year"] == "text"  # the user's choice stays
    assert data["types"]["rating"] == "number" and data["other"] == [1, 2]
    assert data["types"]["pass"] == "number" and data["types"]["date_modified"] == "datetime"
    before = (vault / ".obsidian" / "types.json").stat().st_mtime_ns
    run(data_dir, vault)  # nothing missing: not written again
    assert (vault / ".obsidian" / "types.json").stat().st_mtime_ns == before


def test_a_broken_types_json_is_reported_and_left_alone(library) -> None:
    data_dir, vault = library
    (vault / ".obsidian").mkdir()
    (vault / ".obsidian" / "types.json").write_text('{"types": {"year": "number",')
    result = run(data_dir, vault)
    assert (vault / ".obsidian" / "types.json").read_text() == '{"types": {"year": "number",'
    assert any("types.json" in w and "left it alone" in w for w in result.warnings)
