"""Highlights while reading: Zotero annotations flow into the paper note.

Annotations are inserted through Zotero's own tables into a copy of the real Zotero-made
database (and, for tests that must run without the shared fixture, into a built one)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import Config
from bridge.sources.sqlite import SqliteSource
from bridge.sync import sync
from bridge.vault.links import LinkIndex
from tests.zotero_db import ZoteroDB

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
COLOURS = {
    "#ffd400": "Key claims",
    "#2ea8e5": "Method & figures",
    "#5fb236": "Results & numbers",
    "#ff6666": "Unclear passages",
    "#a28ae5": "Cited works to look up",
    "#aaaaaa": "Other",
    "#ffed00": "Key claims",  # external colour → nearest (yellow)
}


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


def section_of(annotations: str, needle: str) -> str:
    """The `### heading` under which `needle` appears."""
    heading = None
    for line in annotations.splitlines():
        if line.startswith("### "):
            heading = line[4:]
        if needle in line:
            return heading or ""
    raise AssertionError(f"{needle!r} not in the region")


def sync_db(data_dir: Path, vault: Path):
    return sync(Config(vault=vault, zotero_dir=data_dir), source=SqliteSource(data_dir))


def note_for(vault: Path, key: str) -> Path:
    for path in (vault / "Papers").glob("*.md"):
        if f"zotero_key: {key}\n" in path.read_text():
            return path
    raise AssertionError(f"no note for {key}")


@pytest.fixture
def real_with_highlights(real_zotero_db: Path, tmp_path: Path):
    db = ZoteroDB.open(real_zotero_db)
    parent = db.conn.execute(
        "SELECT i.key FROM items i JOIN itemAttachments a ON a.parentItemID = i.itemID "
        "WHERE a.contentType = 'application/pdf' LIMIT 1"
    ).fetchone()[0]
    attachment = db.conn.execute(
        "SELECT i.key FROM items i JOIN itemAttachments a ON a.itemID = i.itemID "
        "JOIN items p ON p.itemID = a.parentItemID WHERE p.key = ? LIMIT 1",
        (parent,),
    ).fetchone()[0]
    keys = {}
    for n, color in enumerate(COLOURS, start=1):
        keys[color] = db.add_annotation(
            attachment, text=f"highlight text {n}", comment=f"comment {n}", color=color,
            page_label=str(n + 10), position={"pageIndex": n + 9, "rects": [[1, 2, 3, 4]]},
            tags=["important"] if n == 1 else (),
        )  # fmt: skip
    db.commit()
    vault = tmp_path / "vault"
    vault.mkdir()
    return db, real_zotero_db.parent, vault, parent, attachment, keys


def test_each_colour_lands_in_its_section_with_everything(real_with_highlights) -> None:
    db, data_dir, vault, parent, attachment, keys = real_with_highlights
    result = sync_db(data_dir, vault)
    assert result.ok, result.errors
    text = note_for(vault, parent).read_text()
    annotations = region(text, "annotations")
    for n, (color, key) in enumerate(keys.items(), start=1):
        assert section_of(annotations, f"highlight text {n}") == COLOURS[color], color
        assert f"> **Comment:** comment {n}" in annotations
        link = (
            f"[p. {n + 10}](zotero://open-pdf/library/items/{attachment}"
            f"?page={n + 10}&annotation={key})"
        )
        assert link in annotations
        assert f"\n^{key.lower()}\n" in annotations
    assert "#important" in annotations
    assert "status: reading" in text  # first highlights: to-read → reading


def test_edit_and_delete_are_reflected_and_user_lines_survive(real_with_highlights) -> None:
    db, data_dir, vault, parent, attachment, keys = real_with_highlights
    sync_db(data_dir, vault)
    note = note_for(vault, parent)
    text = note.read_text()
    text = text.replace("## Highlights\n", "## Highlights\nMy line above the highlights.\n")
    text = text.replace("## Lineage\n", "My line between sections.\n\n## Lineage\n")
    note.write_text(text)
    db.set_annotation(keys["#2ea8e5"], comment="an edited comment")
    db.conn.execute("DELETE FROM items WHERE key = ?", (keys["#5fb236"],))
    db.commit()
    result = sync_db(data_dir, vault)
    assert result.updated == 1 and result.conflicts == 0
    text = note.read_text()
    annotations = region(text, "annotations")
    assert "an edited comment" in annotations and "comment 2" not in annotations
    assert "highlight text 3" not in annotations and "Results & numbers" not in annotations
    assert "My line above the highlights." in text and "My line between sections." in text


def build_library(tmp_path: Path, *, group: int | None = None) -> tuple[ZoteroDB, Path, str]:
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    library_id = db.add_group(group) if group else 1
    item = db.add_item(
        "journalArticle",
        title="Soft-NMS",
        date="2017",
        library_id=library_id,
        creators=[("author", "Navaneeth", "Bodla")],
        citation_key="bodla2017",
    )
    return db, data_dir, item


def test_image_annotation_copied_and_embedded_or_reported_missing(tmp_path: Path) -> None:
    db, data_dir, item = build_library(tmp_path)
    pdf = db.add_attachment(item, filename="softnms.pdf")
    cached = db.add_annotation(pdf, type="image", comment="Figure 2", page_label="4")
    missing = db.add_annotation(pdf, type="ink", page_label="5")
    db.commit()
    (data_dir / "cache" / "library").mkdir(parents=True)
    (data_dir / "cache" / "library" / f"{cached}.png").write_bytes(PNG)
    vault = tmp_path / "vault"
    vault.mkdir()
    assert sync_db(data_dir, vault).ok
    copied = vault / "Attachments" / "zotero" / f"{cached}.png"
    assert copied.read_bytes() == PNG
    text = (vault / "Papers" / "bodla2017.md").read_text()
    assert f"![[{cached}.png]]" in text
    assert "ink annotation: image not in Zotero's cache yet" in text
    assert f"annotation={missing}" in text
    index = LinkIndex.build(vault)
    assert index.resolve(f"{cached}.png", "Papers/bodla2017.md") == (
        f"Attachments/zotero/{cached}.png"
    )
    # Zotero renders the ink image later, touching no database row: the next sync picks it up
    (data_dir / "cache" / "library" / f"{missing}.png").write_bytes(PNG + b"ink")
    assert sync_db(data_dir, vault).updated == 1
    assert f"![[{missing}.png]]" in (vault / "Papers" / "bodla2017.md").read_text()
    assert (vault / "Attachments" / "zotero" / f"{missing}.png").exists()


def test_group_library_deep_links(tmp_path: Path) -> None:
    db, data_dir, item = build_library(tmp_path, group=424242)
    pdf = db.add_attachment(item, filename="x.pdf")
    ann = db.add_annotation(pdf, text="grouped", page_label="1")
    db.commit()
    vault = tmp_path / "vault"
    vault.mkdir()
    library_id = db.conn.execute("SELECT libraryID FROM groups").fetchone()[0]
    sync(Config(vault=vault), source=SqliteSource(data_dir, library_id=library_id))
    text = (vault / "Papers" / "bodla2017.md").read_text()
    assert f"zotero://open-pdf/groups/424242/items/{pdf}?page=1&annotation={ann}" in text
    assert "zotero: zotero://select/groups/424242/items/" in text


def test_reading_hint_never_overrides_the_user(tmp_path: Path) -> None:
    db, data_dir, item = build_library(tmp_path)
    pdf = db.add_attachment(item, filename="x.pdf")
    db.commit()
    vault = tmp_path / "vault"
    vault.mkdir()
    sync_db(data_dir, vault)
    note = vault / "Papers" / "bodla2017.md"
    note.write_text(note.read_text().replace("status: to-read", "status: dropped"))
    db.add_annotation(pdf, text="first highlight")
    db.commit()
    sync_db(data_dir, vault)
    text = note.read_text()
    assert "first highlight" in text and "status: dropped" in text


def test_demo_papers_show_their_annotations(tmp_path: Path) -> None:
    vault = tmp_path / "demo"
    assert CliRunner().invoke(main, ["demo", str(vault)]).exit_code == 0
    annotated = 0
    for path in (vault / "Papers").glob("*.md"):
        annotations = region(path.read_text(), "annotations")
        if annotations.strip():
            annotated += 1
            assert "zotero://open-pdf/library/items/" in annotations
            assert re.search(r"^\^[a-z0-9]{8}$", annotations, re.M)
    assert annotated == 5  # four papers and the standalone PDF
    shutil.rmtree(vault)
