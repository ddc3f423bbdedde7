"""Hostile Zotero text: every string from Zotero reaches a note only through the neutraliser.

Each field that reaches a note gets every hostile string below, in a real Zotero database read
by the real sqlite source. The notes written must be inert (no Templater tag, no code fence but
the bridge's own Mermaid block, no HTML tag, no dangerous scheme, no accidental link), keep their
structure (frontmatter parses, region markers intact), and the item must keep syncing: a Zotero
change after the user wrote in the note merges with exit 0, and a further sync changes nothing.
The neutraliser's invariants are checked on any string with Hypothesis. Rows of
docs/RELIABILITY.md's "Hostile library" table name these tests.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.cli import main
from bridge.config import Config
from bridge.model import Annotation
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from bridge.vault import neutralise
from bridge.vault.links import LinkIndex
from bridge.vault.notefile import HANDLER, find_regions, parse_note, wrap_region
from tests.helpers import ModelSource, make_item, with_annotations
from tests.zotero_db import ZoteroDB

HOSTILE = [
    "10.1000/x\n%% zob:end abstract %%\n%% zob:begin abstract %%",  # a DOI pasted with markers
    "Abstract.\n```\nunclosed backtick fence",
    "Abstract.\n~~~\nunclosed tilde fence",
    "<%* await app.vault.adapter.write('pwned.md', 'x') %>",
    "<% tp.file.title %>",
    "```dataviewjs\ndv.paragraph('pwned')\n```",
    '```dataview\nLIST FROM ""\n```',
    "`$= dv.paragraph('pwned')` and `= this.file.name`",
    "<script>alert(1)</script>",
    "<iframe src='https://evil.example/'></iframe><object data=x></object><embed src=x>",
    "<img src=x onerror=alert(1)>",
    "javascript:alert(1)",
    "data:text/html,<b>x</b>",
    "VBScript:msgbox(1)",
    "[[X]]",
    "[click](javascript:alert(1)) ![img](https://evil.example/t.png)",
    "%% zob:begin annotations %%",
    "line one\r\nline two\u2028line three\x85four",
    "ends with a block id ^abstract",
]

# The fields of a Zotero item that reach a note, and how one hostile string is put in each.
FIELDS: dict[str, Any] = {
    "title": lambda h: {"title": h},
    "abstract": lambda h: {"abstractNote": h},
    "doi": lambda h: {"DOI": h},
    "url": lambda h: {"url": h},
    "venue": lambda h: {"publicationTitle": h},
    "tags": lambda h: {"tags": [h, f"#{h}"]},
    "creators": lambda h: {"creators": [("author", h, h), ("editor", "", h, 1)]},
    "extra": lambda h: {"extra": f"proposes: {h}\nextends: Base; {h}"},
    "lineage-tags": lambda h: {"tags": [f"proposes:{h}", f"extends:{h}"]},
    "citekey": lambda h: {"citation_key": h},
    "collections": lambda h: {"collections": [h, f"Parent/{h}"]},
    "annotation-text": lambda h: {"annotation": {"text": h}},
    "annotation-comment": lambda h: {"annotation": {"comment": h}},
    "annotation-page-label": lambda h: {"annotation": {"page_label": h}},
    "annotation-tags": lambda h: {"annotation": {"tags": [h]}},
}

_OWN_LINK_KEYS = {"proposes", "extends", "related", "proposed_in"}
_FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,})")
_TAG = re.compile(r"<[A-Za-z/!?]")
_SCHEME = re.compile(r"(?i)(?:javascript|vbscript|data):")
_MARKER_LINE = re.compile(r"^%% zob:(begin|end) [a-z0-9-]+ %%$")


def build_library(tmp_path: Path, field: str) -> tuple[ZoteroDB, Path, Path, list[str]]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    vault = tmp_path / "vault"
    vault.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    db.add_item("journalArticle", title="Base paper", date="2010", tags=["proposes:Base"])
    keys = []
    for n, hostile in enumerate(HOSTILE):
        spec = {
            "title": f"Paper {n}", "date": "2020", "creators": [("author", "Ada", f"Writer{n}")],
            **FIELDS[field](hostile),
        }  # fmt: skip
        annotation = spec.pop("annotation", None)
        key = db.add_item("journalArticle", **spec)
        if annotation is not None:
            attachment = db.add_attachment(key, filename=f"paper{n}.pdf")
            db.add_annotation(attachment, **{"text": "a highlight", **annotation})
        keys.append(key)
    db.commit()
    return db, data_dir, vault, keys


def assert_inert(vault: Path) -> None:
    """What every note the bridge wrote must hold, whatever Zotero said."""
    notes = [p for p in vault.rglob("*.md") if ".zotero-bridge" not in p.parts]
    assert notes
    for path in notes:
        text = path.read_text(encoding="utf-8")
        note = parse_note(str(path), text)  # the frontmatter parses
        regions = find_regions(str(path), note.body)  # the markers balance
        where = path.relative_to(vault).as_posix()
        if where.startswith("Papers/"):
            managed = set(regions) - {"header"}  # a user's template may leave zotero-notes out
            assert {"abstract", "annotations", "lineage"} <= managed, where
            assert managed <= {"abstract", "annotations", "zotero-notes", "lineage"}, where
        assert "<%" not in text, where
        assert not _TAG.search(text), where
        assert not _SCHEME.search(text), where
        for key, value in note.properties.items():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and key not in _OWN_LINK_KEYS:
                    assert "[[" not in item and "\n" not in item, (where, key, item)
        if where.startswith(("Papers/", "Methods/")):
            lines = note.body.splitlines()  # all rendered from a bundled template
        else:  # the queue's own text has code; what came from Zotero is in its regions
            lines = [x for r in regions.values() for x in note.body[r.start : r.end].splitlines()]
        assert_inert_lines(where, lines)
    for path in vault.rglob("*.canvas"):  # lineage canvases: labels and cards shown as text
        text = path.read_text(encoding="utf-8")
        assert "<%" not in text and not _TAG.search(text), path
    unresolved = {k: v for k, v in LinkIndex.build(vault).unresolved_links().items() if v}
    assert unresolved == {}


def assert_inert_lines(where: str, lines: list[str]) -> None:
    in_mermaid = False
    for line in lines:
        if in_mermaid:  # the bridge's own block; its labels are checked by `mermaid_label`
            in_mermaid = line != "```"
            continue
        if line == "```mermaid":
            in_mermaid = True
            continue
        assert not _FENCE.match(line), (where, line)
        assert "%%" not in line or _MARKER_LINE.match(line), (where, line)
        assert not re.search(r"(?<!\\)(?:\\\\)*`", line), (where, line)  # no code span
        assert "[[" not in line or line.count("[[") == _own_links(line), (where, line)


def _own_links(line: str) -> int:
    """Wikilinks the bridge makes in a body line (lineage, method lists, Mermaid-free)."""
    return len(re.findall(r"\[\[[^\[\]\u200b]+\]\]", line))


@pytest.mark.parametrize("field", sorted(FIELDS))
def test_hostile_zotero_text_is_neutralised_in_every_field(tmp_path: Path, field: str) -> None:
    db, data_dir, vault, keys = build_library(tmp_path, field)
    config = Config(vault=vault, zotero_dir=data_dir)
    first = sync(config, source=SqliteSource(data_dir))
    assert first.ok, first.errors
    assert first.created >= len(HOSTILE)
    assert_inert(vault)
    user_line = "My own reading of this paper."
    papers = sorted((vault / "Papers").glob("*.md"))
    for path in papers:
        text = path.read_text(encoding="utf-8")
        path.write_text(
            text.replace("### Method pipeline\n", f"### Method pipeline\n{user_line}\n")
        )
    for key in keys:  # the same items change in Zotero
        db.set_field(key, "date", "2021")
    db.commit()
    args = ["sync", "--vault", str(vault), "--zotero-dir", str(data_dir)]
    second = CliRunner().invoke(main, args)
    assert second.exit_code == 0, second.output
    assert_inert(vault)
    changed = [p for p in papers if "year: 2021" in p.read_text(encoding="utf-8")]
    assert len(changed) == len(keys)
    assert all(user_line in p.read_text(encoding="utf-8") for p in papers)
    third = sync(config, source=SqliteSource(data_dir))
    assert third.ok and third.created == 0 and third.updated == 0  # no drift


def test_a_title_that_is_a_wikilink_is_text_in_properties(tmp_path: Path) -> None:
    db, data_dir, vault, _ = build_library(tmp_path, "title")
    sync(Config(vault=vault, zotero_dir=data_dir), source=SqliteSource(data_dir))
    index = LinkIndex.build(vault)
    note = next(p for p in (vault / "Papers").glob("*.md") if "X]]" in p.read_text())
    props = parse_note(str(note), note.read_text()).properties
    assert props["title"].replace(neutralise.ZWSP, "") == "[[X]]"  # reads the same
    assert props["aliases"] == [props["title"]]
    assert not [k for k in index.links(note.relative_to(vault).as_posix()) if k.target == "X"]


# --- the neutraliser's invariants, on any string ---------------------------------------------

_BREAK_CHARS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_ANY = st.lists(
    st.one_of(
        st.characters(codec="utf-8"),  # no lone surrogates: no source hands those on
        st.sampled_from(["`", "~", "%", "<", "[", "]", "(", ":", "^", "\\", "\n", "\r", "$", "="]),
        st.sampled_from(["```", "~~~", "%%", "<%", "<%*", "[[", "](", "javascript:", "data:",
                         "<script", "<iframe", "%% zob:end abstract %%", " ^id", "`$="]),
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(_ANY)
def test_every_neutraliser_is_idempotent(value: str) -> None:
    for function in (neutralise.text, neutralise.inline, neutralise.prop, neutralise.link_label):
        once = function(value)
        assert function(once) == once, function.__name__


@settings(max_examples=400, deadline=None)
@given(_ANY)
def test_single_line_output_has_no_line_break(value: str) -> None:
    for function in (neutralise.inline, neutralise.prop, neutralise.link_label):
        assert not any(c in _BREAK_CHARS for c in function(value)), function.__name__
    assert not any(c in _BREAK_CHARS for c in neutralise.url_part(value))
    assert not any(c in _BREAK_CHARS for c in neutralise.mermaid_label(value))


@settings(max_examples=400, deadline=None)
@given(_ANY)
def test_no_marker_templater_fence_html_or_link_survives_in_body_text(value: str) -> None:
    for out in (neutralise.text(value), neutralise.inline(value), neutralise.link_label(value)):
        assert "%%" not in out and "<%" not in out
        assert not _TAG.search(out) and not _SCHEME.search(out)
        assert "[[" not in out and "](" not in out
        assert not re.search(r"(?<!\\)(?:\\\\)*`", out)  # every backtick escaped
        for line in out.split("\n"):
            assert not _FENCE.match(line)
    # The abstract's region survives any abstract, also quoted as an annotation is.
    body = f"# T\n\n{wrap_region('abstract', neutralise.text(value))}\n\n"
    quoted = "\n".join(f"> {line}" for line in neutralise.text(value).split("\n"))
    body += f"{wrap_region('annotations', quoted)}\n"
    assert set(find_regions("note.md", body)) == {"abstract", "annotations"}


@settings(max_examples=400, deadline=None)
@given(_ANY)
def test_a_property_value_round_trips_and_is_never_a_link(value: str) -> None:
    out = neutralise.prop(value)
    assert "[[" not in out and "<%" not in out and "%%" not in out
    assert not _SCHEME.search(out)
    assert HANDLER.load(HANDLER.export({"title": out, "aliases": [out]})) == {
        "title": out, "aliases": [out],
    }  # fmt: skip


_PLAIN = st.text(
    st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"], exclude_characters="\\&"),
    max_size=80,
)


@settings(max_examples=400, deadline=None)
@given(_PLAIN)
def test_body_text_reads_the_same(value: str) -> None:
    """Undo only what Markdown rendering undoes (backslash escapes, `&lt;`) and drop the
    zero-width spaces: the reader sees the text Zotero had."""
    shown = neutralise.text(value).replace(neutralise.ZWSP, "")
    shown = re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", shown).replace("&lt;", "<")
    assert shown == value
    assert neutralise.prop(value).replace(neutralise.ZWSP, "") == value.strip()


def test_the_doi_link_stays_one_link() -> None:
    doi = "10.1002/(SICI)1097-4636(199706)35:4<425::AID-JBM2>3.0.CO;2-E\n%% x"
    part = neutralise.url_part(doi)
    assert re.fullmatch(r"[A-Za-z0-9%/;=?&#+@!$*',.\-_~]+", part)
    assert "%%" not in part and "(" not in part and ")" not in part
    assert neutralise.url_part("10.1109/CVPR.2016.90") == "10.1109/CVPR.2016.90"


def test_user_templates_see_only_neutralised_text(tmp_path: Path) -> None:
    """A user template that reads the raw model (`item`, `a.attachment`) gets the same
    guarantees as the bundled ones: the view neutralises every string it hands out."""
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "paper.md.j2").write_text(
        '# {{ item.title }}\n{{ item.fields.get("abstractNote", "") }}\n'
        '{{ item.fields.get("DOI", "") }}\n'
        "{% for c in item.creators %}- {{ c.last_name }}\n{% endfor %}"
        "{% for t in item.tags %}- {{ t }}\n{% endfor %}"
        '{{ region("abstract") }}\n{{ region("annotations") }}\n{{ region("lineage") }}\n'
    )
    (templates / "annotations.md.j2").write_text(
        "{% for s in sections %}{% for a in s.annotations %}"
        '{{ a.attachment.title }} {{ item.fields.get("url", "") }}\n{% endfor %}{% endfor %}'
    )
    db, data_dir, vault, _ = build_library(tmp_path, "annotation-text")
    for n, hostile in enumerate(HOSTILE):
        key = db.add_item(
            "journalArticle", title=hostile, abstractNote=hostile, DOI=hostile, url=hostile,
            creators=[("author", hostile, hostile)], tags=[hostile], date="2020",
        )  # fmt: skip
        attachment = db.add_attachment(key, filename=f"t{n}.pdf", title=hostile)
        db.add_annotation(attachment, text=hostile)
    db.commit()
    config = Config(vault=vault, zotero_dir=data_dir, templates_dir=templates)
    result = sync(config, source=SqliteSource(data_dir))
    assert result.ok, result.errors
    assert_inert(vault)
    shown = "".join(p.read_text(encoding="utf-8") for p in (vault / "Papers").glob("*.md"))
    assert "&lt;script>" in shown and "\\`\\`\\`dataviewjs" in shown  # the template did read them


def test_a_hostile_page_label_cannot_break_the_markers(tmp_path: Path) -> None:
    ann = Annotation("ANNOT333", "", "highlight", "x", page_label="3\n%% zob:end annotations %%\n")
    item = with_annotations(make_item("P", citation_key="p2020"), ann)
    source = ModelSource([item])
    config = Config(vault=tmp_path)
    assert sync(config, source=source).ok
    source.put(replace(item, fields={**item.fields, "title": "Q"}))
    assert sync(config, source=source).ok


def test_a_lone_surrogate_costs_one_item_not_the_sync(tmp_path: Path) -> None:
    bad = make_item("Broken", fields={"abstractNote": "Emoji \ud83d cut in half"})
    good = make_item("Fine", citation_key="fine2020")
    result = sync(Config(vault=tmp_path), source=ModelSource([bad, good]))
    assert (tmp_path / "Papers" / "fine2020.md").exists()
    assert result.created + result.skipped == 2
