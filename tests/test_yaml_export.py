"""`NoteYAML.export`'s fast path writes exactly what `yaml.dump` writes, and strings any YAML
reader (1.1 or 1.2 core) would type come back as the same strings."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge.config import Config
from bridge.sync import SyncOptions, sync
from bridge.vault import notefile
from bridge.vault.notefile import HANDLER
from tests.helpers import ModelSource, make_item

_OPTIONS: dict[str, Any] = {
    "sort_keys": False,
    "allow_unicode": True,
    "default_flow_style": False,
    "width": 10_000,
}


def reference(metadata: dict[Any, Any]) -> str:
    """The export without the fast path: plain `yaml.dump` with the (fixed) dumper."""
    if not metadata:
        return ""
    return yaml.dump(metadata, Dumper=notefile._Dumper, **_OPTIONS).rstrip("\n")


class _OldDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """The dumper before the YAML 1.2 resolvers were added: PyYAML's YAML 1.1 ones only."""


_OldDumper.add_representer(str, notefile._str_representer)


def old_export(metadata: dict[Any, Any]) -> str:
    if not metadata:
        return ""
    return yaml.dump(metadata, Dumper=_OldDumper, **_OPTIONS).rstrip("\n")


def outcome(function: Any, metadata: dict[Any, Any]) -> Any:
    """The text, or the type of the exception (a lone surrogate cannot be encoded, …)."""
    try:
        return function(metadata)
    except Exception as exc:  # noqa: BLE001 - both sides must fail the same way
        return type(exc)


def round_trips(text: Any, metadata: dict[Any, Any]) -> bool:
    if not isinstance(text, str):
        return False
    try:
        return (HANDLER.load(text) or {}) == metadata
    except Exception:  # noqa: BLE001 - e.g. `08`: _Loader's int resolver, PyYAML's octal constructor
        return False


TYPICAL = {
    "title": "Image descent convolutional robust normalization: metric explanation optimization",
    "aliases": [
        "Image descent convolutional robust normalization: metric explanation optimization"
    ],
    "authors": ["Philipp He", "Thomas O'Brien", "Zoë Müller"],
    "year": 2009,
    "venue": "Proceedings of ICLR 2009",
    "item_type": "conferencePaper",
    "doi": "10.3776/bench.6407",
    "url": "https://example.org/papers/6407",
    "zotero_key": "55IKKL93",
    "zotero": "zotero://select/library/items/55IKKL93",
    "pdf": "zotero://open-pdf/library/items/EUEGRMDY",
    "tags": ["federated-analysis", "reproduce"],
    "collections": ["Representation model/Kernel"],
    "date_added": "2022-12-26T09:00:00Z",
    "date_modified": "2022-12-26T09:00:00Z",
    "pass": 0,
    "status": "to-read",
}

# Pieces that mean something to YAML, or to the emitter's choice of style.
PIECES = [
    ": ", " #", "#", ":", "-", "- ", "?", "? ", "---", "...", "'", '"', "\\", "&a", "*a", "!x",
    "!!str", "|", ">", "%", "@", "`", ",", "[", "]", "{", "}", "=", "<<", "~", " ", "  ", "\t",
    "\n", "\n\n", "\r\n", "\r", "\x85", "\u2028", "\u2029", "\ufeff", "\ufffe", "\x00", "\x07",
    "\x1b", "\x7f", "\xa0", "é", "中文", "😀", "\ud800", "\U0010fffd", "0o17", "0x1f", "0x1F",
    "1e3", "1E+3", ".inf", "-.inf", ".NaN", "True", "yes", "No", "on", "OFF", "null", "Null",
    "NULL", "1:30", "010", "089", "0b101", "+1", "-0", "1_000", "1.", ".5", "2022-12-26",
    "2022-12-26T09:00:00Z", "y", "n", "abc", "Foo Bar", "x",
]  # fmt: skip
# The edges of the characters the fast path writes itself (see notefile._FAST_TEXT).
EDGES = ["\x1f", "\x20", "\x7e", "\x7f", "\x9f", "\xa0", "\u2027", "\u2028", "\u2029",
         "\u202a", "\ud7ff", "\ue000", "\ufefe", "\ufeff", "\uff00", "\ufffd", "\ufffe",
         "\uffff", "\U00010000", "é", "中"]  # fmt: skip
ASCII = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Text the fast path may take: printable, one line, with YAML's indicators in any place.
SAFE_PIECES = [p for p in PIECES if all(" " <= c <= "~" or "\xa0" <= c <= "\ud7ff" for c in p)]
WORDY = st.lists(st.one_of(st.sampled_from(SAFE_PIECES), st.text(ASCII, max_size=6)),
                 max_size=6).map("".join)  # fmt: skip
LONG_REPEATS = [0, 499, 500, 501, 666, 667, 668, 999, 1000, 1001, 3332, 3333, 3334, 4995, 4998,
                5000, 5002]  # fmt: skip
TEXT = st.one_of(
    st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=())),
    st.text(st.one_of(ASCII, st.sampled_from(EDGES))),
    st.lists(st.one_of(st.sampled_from(PIECES), st.text(ASCII, max_size=8)), max_size=8).map(
        "".join
    ),
    WORDY,
    WORDY,
    st.sampled_from(PIECES),
    # near the fast path's length limit, and near the dumper's width (where it folds lines)
    st.builds(
        lambda word, n, strip: ((word + " ") * n).strip() if strip else (word + " ") * n,
        st.sampled_from(["a", "ab", "a:b", "é"]),
        st.sampled_from(LONG_REPEATS),
        st.booleans(),
    ),
)
IDENTIFIERS = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,20}", fullmatch=True)
KEYS = st.one_of(
    IDENTIFIERS,
    IDENTIFIERS,
    st.sampled_from(
        [
            "title",
            "tags",
            "pass",
            "status",
            "null",
            "yes",
            "true",
            "on",
            "Off",
            "y",
            "_",
            "1",
            "0o17",
            "1e3",
            "-",
            "a b",
            "a: b",
            "#x",
            "",
            "é",
            "date added",
            "k" * 64,
            "k" * 65,
            "k" * 200,
            "x\ny",
            "😀",
        ]
    ),  # fmt: skip
    TEXT,
)
SCALARS = st.one_of(
    TEXT,
    st.integers(),
    st.sampled_from([0, -1, 10**18 - 1, 10**18, -(10**18) + 1, -(10**18), 2**63, 10**30]),
    st.booleans(),
    st.none(),
    st.floats(),
)
FLAT = st.one_of(SCALARS, st.lists(SCALARS, max_size=5))
VALUES = st.recursive(
    FLAT,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(KEYS, inner, max_size=4)),
    max_leaves=12,
)
NOTE_SCALARS = st.one_of(WORDY, st.integers(), st.booleans(), st.none())
PROPERTIES = st.one_of(
    # the shape of a paper note's properties
    st.dictionaries(IDENTIFIERS, st.one_of(NOTE_SCALARS, st.lists(NOTE_SCALARS)), max_size=12),
    st.dictionaries(IDENTIFIERS, FLAT, max_size=12),
    st.dictionaries(KEYS, FLAT, max_size=12),
    st.dictionaries(KEYS, VALUES, max_size=12),
)


@st.composite
def with_shared_lists(draw: st.DrawFn) -> dict[Any, Any]:
    """Properties where one list object may stand for several keys (PyYAML anchors those)."""
    properties = draw(PROPERTIES)
    keys = [k for k, v in properties.items() if isinstance(v, list)]
    if len(keys) >= 2 and draw(st.booleans()):
        properties[keys[1]] = properties[keys[0]]
    return properties


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(with_shared_lists(), st.just(TYPICAL)))
@example({"a": "x\n\n", "b": 1})
@example({"a": "x\n\n", "b": "y\n"})
@example({"a": "\n-\u2028", "b": 1})
@example({"a": ["x", "y"], "b": []})
@example({"a": "\ud800", "b": 1.5})
@example({"a": 1.5, "b": "\ud800"})
@example({"a": [1], "b": {"c": object()}})
def test_export_matches_yaml_dump_byte_for_byte(properties: dict[Any, Any]) -> None:
    new = outcome(HANDLER.export, properties)
    assert new == outcome(reference, properties)
    if round_trips(outcome(old_export, properties), properties):
        assert round_trips(new, properties)


def test_typical_properties_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = reference(TYPICAL)

    def no_dump(data: Any) -> str:
        raise AssertionError(f"fell back to yaml.dump for {data!r}")

    monkeypatch.setattr(notefile, "_dump", no_dump)
    assert HANDLER.export(TYPICAL) == expected
    assert HANDLER.export(TYPICAL) == expected  # and again, from the cache
    assert "title: 'Image descent convolutional robust normalization: metric" in expected
    assert "date_added: '2022-12-26T09:00:00Z'" in expected


def test_what_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    dumped: list[Any] = []
    real_dump = notefile._dump

    def spy(data: Any) -> str:
        dumped.append(data)
        return real_dump(data)

    monkeypatch.setattr(notefile, "_dump", spy)
    shared = ["a"]
    cases: list[tuple[dict[Any, Any], list[Any]]] = [
        ({"a": "😀 title", "b": "plain"}, [{"a": "😀 title"}]),  # astral: libyaml escapes it
        ({"a": "two\nlines", "b": 1}, [{"a": "two\nlines"}]),
        ({"a": 1.5, "b": [1, 2.5]}, [{"a": 1.5}, {"b": [1, 2.5]}]),
        ({"date added": "x", "null": "y"}, [{"date added": "x"}, {"null": "y"}]),
        ({"a": "x" * 2001}, [{"a": "x" * 2001}]),
        ({"a": {"nested": 1}}, [{"a": {"nested": 1}}]),  # whole document
        ({"a": [[1]], "b": 1}, [{"a": [[1]], "b": 1}]),
        ({"a": shared, "b": shared}, [{"a": shared, "b": shared}]),  # anchors
        ({1: "int key"}, [{1: "int key"}]),
        ({"a": "x\n\n", "b": 1}, [{"a": "x\n\n"}, {"a": "x\n\n", "b": 1}]),  # `...` at the end
    ]
    for properties, expected_dumps in cases:
        dumped.clear()
        assert HANDLER.export(properties) == reference(properties)
        assert dumped == expected_dumps, properties


@pytest.mark.parametrize(
    ("properties", "text"),
    [
        ({"tags": ["a", "b"]}, "tags:\n- a\n- b"),
        ({"tags": []}, "tags: []"),
        ({"pdf": None}, "pdf: null"),
        ({"note": ""}, "note: ''"),
        ({"read": True, "n": -3}, "read: true\nn: -3"),
        ({"t": "It's: here"}, "t: 'It''s: here'"),
        ({"t": " lead"}, "t: ' lead'"),
        ({"t": "- item"}, "t: '- item'"),
        ({"t": "-item"}, "t: -item"),
        ({"t": "a#b", "u": "a #b"}, "t: a#b\nu: 'a #b'"),
        ({"t": "---"}, "t: '---'"),
        ({"url": "https://x.org/a?b=c#d"}, "url: https://x.org/a?b=c#d"),
    ],
)
def test_shapes(properties: dict[str, Any], text: str) -> None:
    assert HANDLER.export(properties) == text == reference(properties)


TYPED_LOOKING = ["0o17", "0x1f", "1e3", ".inf", "True", "yes", "null", "~", "1:30", "010"]


@pytest.mark.parametrize("value", [*TYPED_LOOKING, "0x1F", "1E3", "+1e3", "089", "-5", ".5"])
def test_strings_that_look_typed_come_back_as_strings(value: str) -> None:
    for properties in ({"v": value}, {"v": [value, "x"]}, {value: "x"}):
        text = HANDLER.export(properties)
        assert text == reference(properties)
        assert HANDLER.load(text) == properties, text
    assert HANDLER.export({"v": value}) == f"v: '{value}'"


def test_yaml_1_2_numbers_were_plain_before_and_are_quoted_now() -> None:
    assert old_export({"v": "0o17"}) == "v: 0o17"  # the bug: read back as the int 15
    assert HANDLER.load(old_export({"v": "0o17"})) == {"v": 15}
    assert HANDLER.export({"v": "0o17"}) == "v: '0o17'"


def test_numbers_stay_numbers() -> None:
    properties = {"year": 2009, "pass": 0, "n": -12, "big": 10**20, "f": 1.5, "e": 1e20,
                  "inf": math.inf, "flag": False}  # fmt: skip
    text = HANDLER.export(properties)
    assert text == reference(properties)
    assert HANDLER.load(text) == properties
    assert "year: 2009\npass: 0\nn: -12\nbig: 100000000000000000000\nf: 1.5\n" in text


def test_an_int_too_long_to_print_fails_as_yaml_dump_does() -> None:
    properties = {"title": "x", "n": 10**5000}  # beyond Python's int-to-text digit limit
    assert outcome(HANDLER.export, properties) is outcome(reference, properties) is ValueError


def test_integers_load_as_yaml_1_2_core_reads_them() -> None:
    loaded = HANDLER.load("a: 010\nb: 08\nc: 0o17\nd: 0x1F\ne: -12\nf: 089\n")
    assert loaded == {"a": 10, "b": 8, "c": 15, "d": 31, "e": -12, "f": 89}


def test_a_value_its_tag_cannot_take_costs_the_note_not_the_sync(tmp_path: Path) -> None:
    source = ModelSource([make_item("Odd", citation_key="odd2020")])
    sync(Config(vault=tmp_path), source=source)
    note = tmp_path / "Papers" / "odd2020.md"
    note.write_text(note.read_text().replace("pass: 0\n", "pass: 0\nroom: 08\n", 1))
    assert sync(Config(vault=tmp_path), source=source).ok  # `08` is eight, not an error
    note.write_text(note.read_text().replace("room: 08\n", "room: !!int 12x\n", 1))
    before = note.read_bytes()
    result = sync(Config(vault=tmp_path), source=source, options=SyncOptions(full=True))
    assert result.skipped == 1 and "not valid YAML" in result.errors[0]["message"]
    assert note.read_bytes() == before
