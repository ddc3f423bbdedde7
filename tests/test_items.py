"""Every kind of item a real library holds, with the citation keys it really has.

Libraries are built in Zotero's own tables (tests/zotero_db.py) and read by the sqlite source;
`better-bibtex.sqlite` is written in both of Better BibTeX's layouts."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest

from bridge.citekeys import generated_key
from bridge.config import Config, config_from_dict
from bridge.errors import ConfigError
from bridge.model import Creator, Item
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from tests.zotero_db import ZoteroDB


def new_db(tmp_path: Path) -> ZoteroDB:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir(parents=True, exist_ok=True)
    return ZoteroDB.create(data_dir / "zotero.sqlite")


def sync_db(tmp_path: Path, **config: object):
    vault = tmp_path / "vault"
    vault.mkdir(exist_ok=True)
    data_dir = tmp_path / "Zotero"
    cfg = Config(vault=vault, zotero_dir=data_dir, **config)  # type: ignore[arg-type]
    return sync(cfg, source=SqliteSource(data_dir))


def notes(tmp_path: Path) -> dict[str, str]:
    """zotero_key → note file name, for every paper note."""
    found = {}
    for path in (tmp_path / "vault" / "Papers").glob("*.md"):
        match = re.search(r"^zotero_key: (\S+)$", path.read_text(), re.M)
        assert match, path
        found[match[1]] = path.name
    return found


def note_text(tmp_path: Path, key: str) -> str:
    return (tmp_path / "vault" / "Papers" / notes(tmp_path)[key]).read_text()


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


# ------------------------------------------------------------------------- citation keys


def _bbt_new(data_dir: Path, rows: list[tuple[int, str, int, str, int]]) -> None:
    """Better BibTeX ≥ 7: table `citationkey`."""
    conn = sqlite3.connect(data_dir / "better-bibtex.sqlite")
    conn.execute(
        "CREATE TABLE citationkey (itemID NOT NULL PRIMARY KEY, itemKey NOT NULL, "
        "libraryID NOT NULL, citationKey NOT NULL CHECK (citationKey <> ''), "
        "pinned CHECK (pinned in (0, 1)), UNIQUE (libraryID, itemKey))"
    )
    conn.executemany("INSERT INTO citationkey VALUES (?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def _bbt_loki(data_dir: Path, records: list[dict], *, raw: str | None = None) -> None:
    """Better BibTeX < 7: a LokiJS document in table `better-bibtex`, row
    `better-bibtex.citekey`."""
    conn = sqlite3.connect(data_dir / "better-bibtex.sqlite")
    conn.execute('CREATE TABLE "better-bibtex" (name TEXT PRIMARY KEY NOT NULL, data TEXT)')
    document = {"name": "citekey", "data": records, "idIndex": list(range(len(records)))}
    conn.execute(
        'INSERT INTO "better-bibtex" VALUES (?, ?)',
        ("better-bibtex.citekey", raw if raw is not None else json.dumps(document)),
    )
    conn.execute('INSERT INTO "better-bibtex" VALUES (?, ?)', ("better-bibtex", "{}"))
    conn.commit()
    conn.close()


def test_better_bibtex_keys_in_the_new_and_the_old_layout_name_notes(tmp_path: Path) -> None:
    for layout in ("new", "old"):
        root = tmp_path / layout
        with new_db(root) as db:
            a = db.add_item(title="Alpha paper", creators=[("author", "A", "Ames")])
            b = db.add_item(title="Beta paper", creators=[("author", "B", "Bell")])
            ids = {k: db.item_id(k) for k in (a, b)}
        data_dir = root / "Zotero"
        if layout == "new":
            _bbt_new(data_dir, [(ids[a], a, 1, "ames2020alpha", 0)])
        else:
            _bbt_loki(
                data_dir,
                [
                    {"itemID": ids[a], "libraryID": 1, "itemKey": a, "citekey": "ames2020alpha",
                     "pinned": False, "meta": {"revision": 0}, "$loki": 1},
                    {"itemID": ids[b], "citekey": "bellByID", "pinned": True, "$loki": 2},
                    {"itemID": 999, "libraryID": 4, "itemKey": "ZZZZZZZZ", "citekey": "elsewhere"},
                ],
            )  # fmt: skip
        result = sync_db(root)
        assert not [w for w in result.warnings if "Better BibTeX" in w], result.warnings
        found = notes(root)
        assert found[a] == "ames2020alpha.md"
        assert "citekey: ames2020alpha\n" in note_text(root, a)
        if layout == "old":  # a record with only an itemID is matched through the database
            assert found[b] == "bellByID.md"


def test_unreadable_better_bibtex_storage_is_a_warning_and_the_sync_goes_on(
    tmp_path: Path,
) -> None:
    with new_db(tmp_path) as db:
        key = db.add_item(title="Gamma", extra="Citation Key: fromExtra2020")
    _bbt_loki(tmp_path / "Zotero", [], raw="{not json")

    result = sync_db(tmp_path)

    assert any("Better BibTeX" in w and "not JSON" in w for w in result.warnings)
    assert notes(tmp_path)[key] == "fromExtra2020.md"  # Extra's key still names the note


def test_generated_keys_are_stable_deduplicated_and_never_rename(tmp_path: Path) -> None:
    he = [("author", "Kaiming", "He")]
    with new_db(tmp_path) as db:
        first = db.add_item(
            title="Deep Residual Learning", date="2016", creators=he, date_added="2024-01-01"
        )
        second = db.add_item(
            title="Deep Networks, Again", date="2016", creators=he, date_added="2024-02-01"
        )
        accent = db.add_item(
            title="Über die Methode", date="1905", creators=[("author", "Jörg", "Müller")]
        )
    sync_db(tmp_path)
    found = notes(tmp_path)
    assert (found[first], found[second]) == ("heDeep2016.md", "heDeep2016a.md")
    assert found[accent] == "mullerUber1905.md"
    assert "citekey:" not in note_text(tmp_path, first)  # made up: never a property

    # A later key from Zotero (BBT pins one) updates the property, never the file name.
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.set_field(first, "citationKey", "he2016resnet")
        third = db.add_item(title="Deep Thoughts", date="2016", creators=he)
    sync_db(tmp_path)
    again = notes(tmp_path)
    assert again[first] == "heDeep2016.md" and again[second] == "heDeep2016a.md"
    assert again[third] == "heDeep2016b.md"
    assert "citekey: he2016resnet\n" in note_text(tmp_path, first)
    assert len(list((tmp_path / "vault" / "Papers").glob("*.md"))) == 4


def test_citekey_change_keeps_the_note_file_and_user_text(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        key = db.add_item(title="Keyed", citation_key="old2020keyed")
    sync_db(tmp_path)
    path = tmp_path / "vault" / "Papers" / "old2020keyed.md"
    path.write_text(path.read_text() + "\nMy own thoughts.\n")
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.set_field(key, "citationKey", "new2021keyed")

    sync_db(tmp_path)

    text = path.read_text()
    assert notes(tmp_path) == {key: "old2020keyed.md"}
    assert "citekey: new2021keyed\n" in text and "My own thoughts." in text


def test_generated_key_pattern_is_configurable() -> None:
    item = Item(
        "ABCD2345", "book", {"title": "统计学习方法", "date": "2012"},
        creators=(Creator("author", "", "李航", True),),
    )  # fmt: skip
    assert generated_key(item) == "liTong2012"
    assert generated_key(item, "{Auth}_{year}") == "Li_2012"
    assert generated_key(item, "") == ""


# ------------------------------------------------------------------------- trash, no title


def test_items_already_in_the_trash_get_no_note_at_a_first_sync(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        kept = db.add_item(title="Kept", citation_key="kept")
        gone = db.add_item(title="Gone", citation_key="gone")
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.trash(gone)

    sync_db(tmp_path)
    assert set(notes(tmp_path)) == {kept}

    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.trash(kept)  # trashed after it had a note: marked as before
    sync_db(tmp_path)
    assert "deleted-in-zotero" in note_text(tmp_path, kept)
    assert set(notes(tmp_path)) == {kept}


def test_an_item_without_a_title_is_named_by_its_key_and_says_so(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        key = db.add_item("journalArticle")
    sync_db(tmp_path)
    assert notes(tmp_path)[key] == f"Untitled {key}.md"
    text = note_text(tmp_path, key)
    assert "# Untitled" not in text.replace(f"# Untitled item {key}", "")
    assert f"# Untitled item {key}" in text and "no title in Zotero" in text
    assert "\n> \n" not in text and not text.rstrip().endswith(">")


# ------------------------------------------------------------------------- child notes

HOSTILE_NOTE = (
    "<h1>Reading notes</h1><p>Key idea: <strong>residual</strong> learning, see "
    '<a href="https://arxiv.org/abs/1512.03385">the paper (v2)</a> and '
    '<a href="zotero://select/library/items/ABCD2345">its item</a>.</p>'
    "<ul><li>one</li><li>two</li></ul>"
    '<p><img alt="figure 1" data-attachment-key="IMGK2345"></p>'
    "<script>alert(1)</script>"
    "<p>&lt;% tp.file.create_new() %&gt; and &lt;script&gt;x&lt;/script&gt;</p>"
    "<p>%% zob:end zotero-notes %%</p>"
    '<p><a href="javascript:alert(2)">click</a> <iframe src="https://evil.example"></iframe></p>'
    "<p>\ue0009\ue001 looks like the converter's own placeholder</p>"
)


def test_child_notes_follow_zotero_edits_and_deletions_inertly(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        paper = db.add_item(title="Deep Residual Learning", citation_key="he2016deep")
        note = db.add_note(paper, HOSTILE_NOTE)
        second = db.add_note(paper, "<p>Second thought</p>")
        deep = "<div>" * 3000 + "<script>alert(3)</script>Deep %% text" + "</div>" * 3000
        db.add_note(paper, deep)  # too deep to convert: its text, still inert
        db.add_note(None, "<p>A standalone note belongs to no paper</p>")
    sync_db(tmp_path)
    text = note_text(tmp_path, paper)
    inside = region(text, "zotero-notes")
    assert "### Reading notes" in inside  # headings sit under the region's own heading
    assert "**residual**" in inside and "- one\n- two" in inside
    assert "[the paper (v2)](https://arxiv.org/abs/1512.03385)" in inside
    assert "[its item](zotero://select/library/items/ABCD2345)" in inside
    assert "[figure 1 (in Zotero)](zotero://select/library/items/IMGK2345)" in inside
    assert f"(zotero://select/library/items/{note})" in inside
    assert "Second thought" in inside and "standalone note" not in text
    assert "Deep %\\% text" in inside
    for bad in ("<%", "<script", "alert(1)", "alert(3)", "javascript:", "<iframe", "](javascript"):
        assert bad not in inside, bad
    assert len(re.findall(r"%% zob:end zotero-notes %%", text)) == 1  # one real marker
    assert text.index("## Zotero notes") < text.index("%% zob:begin zotero-notes %%")

    path = tmp_path / "vault" / "Papers" / "he2016deep.md"
    path.write_text(path.read_text().replace("## Lineage", "My words stay.\n\n## Lineage"))
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.set_note(note, "<p>Rewritten in Zotero</p>")
        db.trash(second)
    sync_db(tmp_path)
    inside = region(path.read_text(), "zotero-notes")
    assert "Rewritten in Zotero" in inside and "Reading notes" not in inside
    assert "Second thought" not in inside  # trashed in Zotero: gone from the note

    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.erase(note)  # deleted for good: no stamp is left, the children digest sees it
    sync_db(tmp_path)
    text = path.read_text()
    inside = region(text, "zotero-notes")
    assert "Rewritten in Zotero" not in inside and "Deep" in inside and "My words stay." in text


def test_a_note_made_before_child_notes_gains_the_region_once(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        paper = db.add_item(title="Old note", citation_key="old2019")
    sync_db(tmp_path)
    path = tmp_path / "vault" / "Papers" / "old2019.md"
    old = re.sub(
        r"\n## Zotero notes\n%% zob:begin zotero-notes %%\n%% zob:end zotero-notes %%\n",
        "",
        path.read_text(),
    )  # as the bridge wrote notes before it read child notes
    path.write_text(old + "\nMy closing words.\n")
    state = sqlite3.connect(tmp_path / "vault" / ".zotero-bridge" / "state.sqlite")
    (base,) = state.execute("SELECT base_json FROM notes WHERE note_id=?", (paper,)).fetchone()
    loaded = json.loads(base)
    loaded["regions"].pop("zotero-notes")
    state.execute("UPDATE notes SET base_json=? WHERE note_id=?", (json.dumps(loaded), paper))
    state.commit()
    state.close()
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.add_note(paper, "<p>Finally a note</p>")

    sync_db(tmp_path)
    sync_db(tmp_path)

    text = path.read_text()
    assert text.count("%% zob:begin zotero-notes %%") == 1
    assert "Finally a note" in region(text, "zotero-notes")
    assert "My closing words." in text
    # placed after the highlights, before the lineage, as in a new note
    order = [text.index(h) for h in ("## Highlights", "## Zotero notes", "## Lineage")]
    assert order == sorted(order)
    assert "%% zob:end annotations %%\n\n## Zotero notes\n" in text


# ------------------------------------------------------------------------- every kind of item


def test_a_web_page_gets_the_lighter_template_and_a_paper_the_three_passes(
    tmp_path: Path,
) -> None:
    with new_db(tmp_path) as db:
        page = db.add_item(
            "webpage", title="How to read a paper", websiteTitle="Blog of S. Keshav",
            url="https://example.org/read?x=1&y=(2)", creators=[("author", "S", "Keshav")],
        )  # fmt: skip
        paper = db.add_item("conferencePaper", title="A paper", citation_key="p2020")
    sync_db(tmp_path)
    web = note_text(tmp_path, page)
    assert "## Source" in web and "## Summary" in web and "## Highlights" in web
    assert "Pass 1" not in web and "Pass 3" not in web
    assert "*Blog of S. Keshav*" in web
    assert "[Open the source](https://example.org/read?x=1&y=%282%29)" in web
    assert "## Pass 1" in note_text(tmp_path, paper)


def test_templates_by_type_switch_without_losing_user_text(tmp_path: Path) -> None:
    with new_db(tmp_path) as db:
        page = db.add_item("webpage", title="A page", citation_key="page2020")
        paper = db.add_item("journalArticle", title="A paper", citation_key="paper2020")
    sync_db(tmp_path, type_templates={"journalArticle": "source.md.j2"})
    assert "## Pass 1" not in note_text(tmp_path, paper)  # the map decides for new notes
    path = tmp_path / "vault" / "Papers" / "page2020.md"
    path.write_text(path.read_text().replace("*In my words:*", "*In my words:* short and good."))
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.set_field(page, "abstractNote", "A summary from Zotero.")

    sync_db(tmp_path, type_templates={"webpage": "paper.md.j2"})  # switched: merged, kept

    text = path.read_text()
    assert "short and good." in text and "## Pass 1" not in text
    assert "A summary from Zotero." in region(text, "abstract")


def test_a_standalone_pdf_with_highlights_gets_a_note_named_from_the_file(
    tmp_path: Path,
) -> None:
    with new_db(tmp_path) as db:
        pdf = db.add_attachment(None, filename="Attention Is All You Need.pdf", title="")
        db.add_annotation(pdf, text="Attention is all you need.", color="#5fb236")
        bare = db.add_attachment(None, filename="unread.pdf")  # nothing highlighted: no note
    result = sync_db(tmp_path)
    assert set(notes(tmp_path)) == {pdf}, result.warnings
    assert notes(tmp_path)[pdf] == "Attention Is All You Need.md"
    text = note_text(tmp_path, pdf)
    assert "Attention is all you need." in region(text, "annotations")
    assert "### Results & numbers" in region(text, "annotations")
    assert f"pdf: zotero://open-pdf/library/items/{pdf}" in text
    assert "item_type: attachment" in text and "## Pass 1" not in text

    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.add_annotation(bare, text="Now read.")
    sync_db(tmp_path)  # a cursor read: the new highlight stamps the standalone file
    assert notes(tmp_path)[bare] == "unread.md"


def test_config_checks_the_type_map_and_the_key_pattern(tmp_path: Path) -> None:
    good = config_from_dict(
        {"templates": {"by_type": {"thesis": "mine.md.j2"}}, "citekeys": {"pattern": ""}}
    )
    assert good.type_templates == {"thesis": "mine.md.j2"} and good.citekey_pattern == ""
    with pytest.raises(ConfigError) as bad:
        config_from_dict(
            {
                "templates": {"by_type": {"thesis": "../x.md.j2", "webPage": "source.md.j2"}},
                "citekeys": {"pattern": "{x}"},
            }
        )
    text = str(bad.value)
    assert "templates.by_type" in text and "unknown field(s) x" in text
    assert "did you mean 'webpage'" in text


def test_zob_new_for_a_trashed_item_says_why_there_is_no_note(tmp_path: Path) -> None:
    from bridge.workflow.newnote import new_paper_note

    with new_db(tmp_path) as db:
        key = db.add_item(title="Binned paper", citation_key="binned2020")
    with ZoteroDB.open(tmp_path / "Zotero" / "zotero.sqlite") as db:
        db.trash(key)
    vault = tmp_path / "vault"
    vault.mkdir()
    config = Config(vault=vault, zotero_dir=tmp_path / "Zotero")
    with pytest.raises(ConfigError, match="trash") as raised:
        new_paper_note(config, "binned2020", source=SqliteSource(tmp_path / "Zotero"))
    assert "Restore" in (raised.value.hint or "")
    assert not (vault / "Papers").exists() or not list((vault / "Papers").iterdir())
