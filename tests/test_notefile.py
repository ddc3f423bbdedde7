"""Parsing notes: frontmatter and managed regions, byte-for-byte outside them."""

from __future__ import annotations

import pytest

from bridge.errors import NoteError
from bridge.vault.notefile import find_regions, parse_note, region_texts, replace_regions


def test_body_is_kept_byte_for_byte() -> None:
    text = "---\ntitle: x\n---\n\n  leading spaces\n\ntrailing\n\n\n"
    note = parse_note("n.md", text)
    assert note.properties == {"title": "x"}
    assert note.render() == text


def test_dates_stay_text_and_crlf_bom_survive() -> None:
    text = "\ufeff---\r\ndate_added: 2024-01-02\r\n---\r\nbody\r\n"
    note = parse_note("n.md", text)
    assert note.properties == {"date_added": "2024-01-02"}
    assert note.render() == text
    assert note.render({"a": "b"}) == "\ufeff---\r\na: b\r\n---\r\nbody\r\n"


def test_no_frontmatter() -> None:
    note = parse_note("n.md", "# just a note\n")
    assert note.properties == {} and note.render() == "# just a note\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("---\ntitle: [unclosed\n---\n", "not valid YAML"),
        ("---\n- a\n- b\n---\n", "not a key: value map"),
        ("---\ntitle: x\n", "no closing"),
    ],
)
def test_broken_frontmatter_is_an_error(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_note("n.md", text)


def test_regions_found_and_replaced_in_place() -> None:
    body = (
        "before\n%% zob:begin abstract %%\nold\n%% zob:end abstract %%\nmiddle\n"
        "%% zob:begin lineage %%\n%% zob:end lineage %%\nafter\n"
    )
    assert region_texts("n.md", body) == {"abstract": "old", "lineage": ""}
    new = replace_regions("n.md", body, {"abstract": "new\ntext", "lineage": "L"}, "\n")
    assert new == (
        "before\n%% zob:begin abstract %%\nnew\ntext\n%% zob:end abstract %%\nmiddle\n"
        "%% zob:begin lineage %%\nL\n%% zob:end lineage %%\nafter\n"
    )


@pytest.mark.parametrize(
    "body",
    [
        "%% zob:begin a %%\n%% zob:begin b %%\n%% zob:end b %%\n%% zob:end a %%\n",
        "%% zob:begin a %%\n%% zob:end a %%\n%% zob:begin a %%\n%% zob:end a %%\n",
        "%% zob:begin a %%\n",
        "%% zob:end a %%\n",
    ],
    ids=["nested", "duplicated", "missing-end", "missing-begin"],
)
def test_broken_markers_are_an_error(body: str) -> None:
    with pytest.raises(NoteError, match="markers are broken"):
        find_regions("n.md", body)
