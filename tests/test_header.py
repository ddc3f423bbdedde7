"""The header (H1, byline, links) is the bridge's: it follows Zotero and the user's property
edits; notes written before it was a region are adopted only when untouched."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from bridge.config import Config
from bridge.sources.sqlite import SqliteSource
from bridge.sync import SyncOptions, sync
from bridge.vault.header import HEADER
from bridge.vault.notefile import find_regions, parse_note
from bridge.vault.render import Renderer
from tests.helpers import resnet_library

# The header lines of `paper.md.j2` before the header became a region, verbatim.
OLD_PAPER_TEMPLATE = """# {{ title }}

> {{ authors | join(", ") }}{{ (" · " ~ year) if year else "" }}{{ (" · *" ~ venue ~ "*") if venue else "" }}

> [Open in Zotero]({{ zotero_uri }}){{ (" · [Open PDF](" ~ pdf_uri ~ ")") if pdf_uri else "" }}{{ (" · [DOI](https://doi.org/" ~ doi ~ ")") if doi else "" }}


## Abstract
{{ region("abstract") }}

## Pass 1 — Survey (5–10 minutes)
- **Problem:** {{ "" }}

## Highlights
{{ region("annotations") }}

## Lineage
{{ region("lineage") }}
"""  # noqa: E501


@pytest.fixture
def library(tmp_path: Path):
    return resnet_library(tmp_path)


def run(data_dir: Path, vault: Path, full: bool = False, **config) -> object:
    config = Config(vault=vault, zotero_dir=data_dir, **config)
    result = sync(config, SyncOptions(full=full), source=SqliteSource(data_dir))
    assert result.ok, result.errors
    return result


def edit(path: Path, old: str, new: str) -> None:
    """A user's edit, saved a while ago (so no settle wait)."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in the note"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    past = path.stat().st_mtime_ns - 30_000_000_000
    os.utime(path, ns=(past, past))


def header_of(path: Path) -> str:
    note = parse_note(str(path), path.read_text(encoding="utf-8"))
    region = find_regions(str(path), note.body)[HEADER]
    return note.body[region.start : region.end]


def test_header_follows_title_change_and_new_pdf_keeping_user_edits(library) -> None:
    db, data_dir, vault, key = library
    run(data_dir, vault)
    note = vault / "Papers" / "he2016deep.md"
    assert header_of(note).startswith("# Deep Residual Learning\n\n> Kaiming He, Xiangyu Zhang")
    assert "Open PDF" not in header_of(note)
    edit(note, "- **Problem:** \n", "- **Problem:** my own words\n")
    edit(note, "venue: CVPR", "venue: CVPR 2016 (oral)")
    run(data_dir, vault, full=True)  # an item Zotero did not change is merged on a full read
    assert "· *CVPR 2016 (oral)*" in header_of(note)  # the user's venue, in the header too

    db.set_field(key, "title", "Deep Residual Learning for Image Recognition")
    db.add_attachment(key, filename="he2016.pdf")
    db.commit()
    run(data_dir, vault)
    text = note.read_text(encoding="utf-8")
    header = header_of(note)
    assert header.startswith("# Deep Residual Learning for Image Recognition\n")
    assert "[Open PDF](zotero://open-pdf/library/items/" in header
    assert "[DOI](https://doi.org/10.1109/CVPR.2016.90)" in header
    assert "· *CVPR 2016 (oral)*" in header
    assert "title: Deep Residual Learning for Image Recognition" in text
    assert "venue: CVPR 2016 (oral)" in text and "my own words" in text
    assert "conflict" not in text


def test_a_hand_edited_header_region_keeps_the_users_version(library) -> None:
    db, data_dir, vault, key = library
    run(data_dir, vault)
    note = vault / "Papers" / "he2016deep.md"
    edit(note, "# Deep Residual Learning\n", "# ResNet (my name for it)\n")
    db.set_field(key, "abstractNote", "A new abstract.")
    db.commit()
    run(data_dir, vault)
    assert header_of(note).startswith("# ResNet (my name for it)\n")  # Zotero's header unchanged


def _old_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    """Render as the bridge did before the header was a region."""
    paper = Renderer.paper

    def old_paper(self, item, names):
        note = paper(self, item, names)
        regions = {k: v for k, v in note.regions.items() if k != HEADER}
        return replace(note, regions=regions, header=None)

    monkeypatch.setattr(Renderer, "paper", old_paper)


def _old_vault(tmp_path: Path, library, monkeypatch: pytest.MonkeyPatch) -> Path:
    db, data_dir, vault, key = library
    templates = tmp_path / "old-templates"
    templates.mkdir()
    (templates / "paper.md.j2").write_text(OLD_PAPER_TEMPLATE, encoding="utf-8")
    with monkeypatch.context() as patch:
        _old_bridge(patch)
        run(data_dir, vault, templates_dir=templates)
    note = vault / "Papers" / "he2016deep.md"
    assert HEADER not in find_regions(str(note), parse_note(str(note), note.read_text()).body)
    return note


def test_an_old_format_note_is_adopted_when_its_header_is_the_bridges(
    tmp_path: Path, library, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, data_dir, vault, key = library
    note = _old_vault(tmp_path, library, monkeypatch)
    old_text = note.read_text(encoding="utf-8")
    edit(note, "- **Problem:** \n", "- **Problem:** mine\n")
    run(data_dir, vault)  # the new bridge: same header, now between markers
    text = note.read_text(encoding="utf-8")
    assert text.count("%% zob:begin header %%") == 1
    body = parse_note(str(note), text).body
    visible = body.replace("%% zob:begin header %%\n", "").replace("%% zob:end header %%\n", "")
    assert visible == parse_note(str(note), old_text).body.replace(
        "- **Problem:** \n", "- **Problem:** mine\n"
    )
    db.set_field(key, "title", "ResNet")
    db.commit()
    run(data_dir, vault)
    assert header_of(note).startswith("# ResNet\n")
    assert "- **Problem:** mine" in note.read_text(encoding="utf-8")


def test_an_old_format_note_with_a_hand_edited_header_is_left_alone(
    tmp_path: Path, library, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, data_dir, vault, key = library
    note = _old_vault(tmp_path, library, monkeypatch)
    edit(note, "> Kaiming He, Xiangyu Zhang", "> K. He, X. Zhang (my reading group's pick)")
    db.set_field(key, "title", "ResNet")
    db.commit()
    run(data_dir, vault)
    text = note.read_text(encoding="utf-8")
    assert "zob:begin header" not in text
    body = parse_note(str(note), text).body
    assert body.startswith("# Deep Residual Learning\n\n> K. He, X. Zhang (my reading group's")
    assert "title: ResNet" in text  # the property still follows Zotero


def test_removed_header_markers_are_respected(library) -> None:
    db, data_dir, vault, key = library
    run(data_dir, vault)
    note = vault / "Papers" / "he2016deep.md"
    edit(note, "%% zob:begin header %%\n", "")
    edit(note, "%% zob:end header %%\n", "")
    db.set_field(key, "title", "ResNet")
    db.commit()
    run(data_dir, vault)
    text = note.read_text(encoding="utf-8")
    assert "zob:begin header" not in text
    assert "# Deep Residual Learning\n" in text and "title: ResNet" in text
