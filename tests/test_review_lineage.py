"""Adversarial review of the lineage work: method notes' declared edges, notes being saved,
names, aliases and canvases (each test a problem found, with real syncs on real files)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bridge.sync import SyncOptions, sync
from tests.helpers import ModelSource, make_item, settled, vault_config


def links(text: str) -> list[str]:
    return re.findall(r"\[\[([^\]|#]+)", text)


def extended_by(text: str) -> str:
    match = re.search(r"%% zob:begin extended-by %%\n(.*?)%% zob:end", text, re.S)
    assert match
    return match.group(1)


def nms_vault(tmp_path: Path, *, soft_extends: bool = True, **config):
    tags = ("proposes:Soft-NMS", "extends:NMS") if soft_extends else ("proposes:Soft-NMS",)
    nms = make_item("NMS paper", citation_key="n2006", fields={"date": "2006"},
                    tags=("proposes:NMS",))  # fmt: skip
    soft = make_item("Soft paper", citation_key="b2017", fields={"date": "2017"}, tags=tags)
    source = ModelSource([nms, soft])
    cfg = vault_config(tmp_path, **config)
    assert sync(cfg, source=source).ok
    return source, cfg, nms, soft


def add_property(note: Path, lines: str) -> None:
    note.write_text(note.read_text().replace("type: method\n", f"type: method\n{lines}", 1))


def test_a_declared_extends_survives_a_paper_supplying_then_dropping_it(tmp_path: Path) -> None:
    """The user declares Soft-NMS extends NMS; a paper later says so too, then stops: the
    user's own edge is theirs, not the paper's, and stays."""
    source, cfg, _, soft = nms_vault(tmp_path, soft_extends=False)
    note = tmp_path / "Methods" / "Soft-NMS.md"
    add_property(note, "extends:\n- '[[NMS]]'\n")
    settled(note)
    sync(cfg, source=source)
    nms = tmp_path / "Methods" / "NMS.md"
    assert "Soft-NMS" in links(extended_by(nms.read_text()))
    tags = ("proposes:Soft-NMS", "extends:NMS")
    source.put(make_item("Soft paper", key=soft.key, citation_key="b2017", tags=tags))
    sync(cfg, source=source)
    source.put(make_item("Soft paper", key=soft.key, citation_key="b2017",
                         tags=("proposes:Soft-NMS",)))  # fmt: skip
    sync(cfg, source=source)
    assert "'[[NMS]]'" in note.read_text()  # the user's words
    assert "Soft-NMS" in links(extended_by(nms.read_text()))  # and what they mean


def test_a_papers_edge_to_a_method_named_x_method_goes_when_the_paper_drops_it(
    tmp_path: Path,
) -> None:
    """The bridge wrote `extends: [[Dropout (method)]]` from a paper: when the paper drops
    the edge it must not be read back as the user's own declaration and kept forever."""
    drop = make_item("Dropout", citation_key="Dropout", tags=("proposes:Dropout",))
    user = make_item("Uses", citation_key="later2020", tags=("proposes:Later", "extends:Dropout"))
    source = ModelSource([drop, user])
    cfg = vault_config(tmp_path)
    sync(cfg, source=source)
    later = tmp_path / "Methods" / "Later.md"
    assert "'[[Dropout (method)]]'" in later.read_text()
    source.put(make_item("Uses", key=user.key, citation_key="later2020",
                         tags=("proposes:Later",)))  # fmt: skip
    sync(cfg, source=source)
    sync(cfg, source=source, options=SyncOptions(full=True))
    assert "Dropout" not in later.read_text().split("---")[1]
    assert "Later" not in links(extended_by((tmp_path / "Methods/Dropout (method).md").read_text()))


def test_a_method_note_being_saved_makes_no_method_note(tmp_path: Path) -> None:
    """A method note saved moments ago, its `extends` half typed (`[[Kalm`), is not the
    user's intent yet: no `Kalm` method note is made while the note itself is deferred."""
    source, cfg, _, _ = nms_vault(tmp_path, settle_seconds=30)
    note = tmp_path / "Methods" / "NMS.md"
    add_property(note, "extends:\n- '[[Kalm'\n")  # being typed, saved just now
    result = sync(cfg, source=source, options=SyncOptions(wait_for_saves=False))
    assert any(d["path"] == "Methods/NMS.md" for d in result.deferred)
    assert sorted(p.name for p in (tmp_path / "Methods").iterdir()) == ["NMS.md", "Soft-NMS.md"]
    assert not any("Kalm" in w for w in result.warnings)
    # once it settles it is read
    settled(note, 60)
    sync(cfg, source=source)
    assert "Kalm.md" in {p.name for p in (tmp_path / "Methods").iterdir()}


def test_a_method_note_made_by_hand_is_read_once_it_settles(tmp_path: Path) -> None:
    source, cfg, _, _ = nms_vault(tmp_path, settle_seconds=30)
    mine = tmp_path / "Methods" / "Soft-NMS v2.md"
    mine.write_text("---\ntype: method\nextends:\n- '[[Soft-N'\n---\n# Soft-NMS v2\n")
    result = sync(cfg, source=source, options=SyncOptions(full=True, wait_for_saves=False))
    assert [d["path"] for d in result.deferred] == ["Methods/Soft-NMS v2.md"]
    assert not (tmp_path / "Methods" / "Soft-N.md").exists()
    mine.write_text("---\ntype: method\nextends:\n- '[[Soft-NMS]]'\n---\n# Soft-NMS v2\n")
    settled(mine, 60)
    assert sync(cfg, source=source, options=SyncOptions(full=True)).ok
    assert "Soft-NMS v2" in links(extended_by((tmp_path / "Methods/Soft-NMS.md").read_text()))
    assert "method_id: soft-nms v2" in mine.read_text()


@pytest.mark.xfail(
    strict=True,
    reason="an incremental sync skips the lineage stage when every KNOWN method note is"
    " untouched (sync._methods_untouched): a note made by hand in Methods/ waits for --full",
)
def test_a_method_note_made_by_hand_is_noticed_by_the_next_sync(tmp_path: Path) -> None:
    source, cfg, _, _ = nms_vault(tmp_path)
    mine = tmp_path / "Methods" / "Soft-NMS v2.md"
    mine.write_text("---\ntype: method\nextends:\n- '[[Soft-NMS]]'\n---\n# Soft-NMS v2\n")
    settled(mine, 60)
    assert sync(cfg, source=source).ok
    assert "Soft-NMS v2" in links(extended_by((tmp_path / "Methods/Soft-NMS.md").read_text()))
