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


@pytest.mark.xfail(
    strict=True,
    reason="paper notes' proposes/extends are note names: a method note renamed to a"
    " deleted method note's name makes the papers' links name the other method",
)
def test_renaming_a_method_note_to_a_deleted_ones_name_keeps_the_methods_apart(
    tmp_path: Path,
) -> None:
    source, cfg, _, _ = nms_vault(tmp_path)
    methods = tmp_path / "Methods"
    (methods / "NMS.md").unlink()  # the user deletes NMS's note: not made again
    sync(cfg, source=source)
    (methods / "Soft-NMS.md").rename(methods / "NMS.md")  # and names Soft-NMS's note so
    settled(methods / "NMS.md", 60)
    result = sync(cfg, source=source)
    assert not any("self-loop" in w for w in result.warnings), result.warnings
    text = (methods / "NMS.md").read_text()
    assert "method_id: soft-nms" in text
    assert "[[b2017]]" in text.split("## Proposed in")[1].split("## Extends")[0]
    assert "zotero-bridge conflict" not in text


@pytest.mark.xfail(
    strict=True,
    reason="method note names are checked against paper notes only (assign_stems): a"
    " user's own note of the same name makes every [[Attention]] ambiguous",
)
def test_a_method_note_never_shares_a_name_with_a_users_note(tmp_path: Path) -> None:
    (tmp_path / "Notes").mkdir()
    (tmp_path / "Notes" / "Attention.md").write_text("Attention in psychology.\n")
    item = make_item("Att", citation_key="bahdanau", tags=("proposes:Attention",))
    assert sync(vault_config(tmp_path), source=ModelSource([item])).ok
    names = [p.stem.casefold() for p in tmp_path.rglob("*.md")]
    assert len(names) == len(set(names)), sorted(names)


@pytest.mark.xfail(
    strict=True,
    reason="the aliases the bridge wrote from [lineage.aliases] are read back as the note's"
    " own, so one taken out of the config stays for ever; `zob demo` relies on that (its"
    " aliases live only in the notes, no config file), so the fix needs a design choice",
)
def test_an_alias_taken_out_of_the_config_leaves_the_method_note(tmp_path: Path) -> None:
    items = [
        make_item("BN paper", citation_key="ioffe", tags=("proposes:Batch Normalization",)),
        make_item("X", citation_key="x", tags=("proposes:Y", "extends:BN")),
    ]
    source = ModelSource(items)
    sync(vault_config(tmp_path, lineage_aliases={"BN": "Batch Normalization"}), source=source)
    note = tmp_path / "Methods" / "Batch Normalization.md"
    assert "aliases:\n- BN\n" in note.read_text()
    for _ in range(2):
        sync(vault_config(tmp_path), source=source, options=SyncOptions(full=True))
    assert "- BN" not in note.read_text()
    assert (tmp_path / "Methods" / "BN.md").exists()  # BN is a method of its own again


@pytest.mark.xfail(
    strict=True,
    reason="a canvas is named after its lineage's earliest method: when an earlier one"
    " joins, the old canvas (untouched by the user) stays, showing the old lineage",
)
def test_a_canvas_renamed_by_a_new_root_leaves_no_stale_canvas(tmp_path: Path) -> None:
    source, cfg, nms, _ = nms_vault(tmp_path)
    assert (tmp_path / "Lineage" / "NMS.canvas").exists()
    greedy = make_item("Greedy", citation_key="g1990", fields={"date": "1990"},
                       tags=("proposes:Greedy NMS",))  # fmt: skip
    source.put(greedy)
    source.put(make_item("NMS paper", key=nms.key, citation_key="n2006", fields={"date": "2006"},
                         tags=("proposes:NMS", "extends:Greedy NMS")))  # fmt: skip
    assert sync(cfg, source=source).ok
    assert sorted(p.name for p in (tmp_path / "Lineage").iterdir()) == ["Greedy NMS.canvas"]


@pytest.mark.xfail(
    strict=True,
    reason="the Lineage region's merge base stays Zotero's render (lineage_stage."
    "paper_lineage_actions): the region the bridge wrote from the note's own properties"
    " reads as the user's edit when Zotero's edges change",
)
def test_zotero_edges_changing_beside_the_users_own_give_no_conflict_callout(
    tmp_path: Path,
) -> None:
    adam = make_item("Adam", citation_key="kingma2015", tags=("proposes:Adam",))
    nms = make_item("NMS", citation_key="n2006", tags=("proposes:NMS",))
    source = ModelSource([adam, nms])
    cfg = vault_config(tmp_path)
    sync(cfg, source=source)
    note = tmp_path / "Papers" / "kingma2015.md"
    note.write_text(
        note.read_text().replace("zotero_key:", "extends:\n- '[[Kalman Filter]]'\nzotero_key:", 1)
    )
    settled(note)
    sync(cfg, source=source)  # the region follows the user's property
    settled(note, 30)
    tags = ("proposes:Adam", "extends:NMS")
    source.put(make_item("Adam", key=adam.key, citation_key="kingma2015", tags=tags))
    assert sync(cfg, source=source).ok
    text = note.read_text()
    assert "**Extends:** [[Kalman Filter]], [[NMS]]" in text
    assert "zotero-bridge conflict" not in text  # the user never edited the region


def test_a_method_note_moved_before_it_had_a_method_id_is_found(tmp_path: Path) -> None:
    """A method note written before `method_id` existed, moved by the user: found again by
    its name (and `type: method`), not taken for deleted and left behind."""
    source, cfg, _, _ = nms_vault(tmp_path)
    old = tmp_path / "Methods" / "NMS.md"
    text = old.read_text().replace("method_id: nms\n", "")
    moved = tmp_path / "Archive" / "NMS.md"
    moved.parent.mkdir()
    moved.write_text(text.replace("## Key idea\n", "## Key idea\nKeep the best box.\n"))
    old.unlink()
    settled(moved)
    source.put(make_item("Later", citation_key="x2019", tags=("extends:NMS",)))
    assert sync(cfg, source=source).ok
    text = moved.read_text()
    assert "Keep the best box." in text
    assert "[[x2019]]" in extended_by(text)
    assert not old.exists()


@pytest.mark.xfail(
    strict=True,
    reason="a paper note's proposes/extends hold note names: two methods whose names make"
    " the same file name (`A:B`, `A?B`; long names cut at the same byte) fold into one,"
    " reported as a method extending itself",
)
def test_methods_whose_names_sanitise_alike_stay_apart(tmp_path: Path) -> None:
    items = [
        make_item("P3", citation_key="p3", tags=("proposes:A:B",)),
        make_item("P4", citation_key="p4", tags=("proposes:A?B", "extends:A:B")),
    ]
    result = sync(vault_config(tmp_path), source=ModelSource(items))
    assert not any("extends itself" in w for w in result.warnings), result.warnings
    assert len(list((tmp_path / "Methods").iterdir())) == 2


def test_a_copied_method_note_with_the_same_method_id_is_pointed_out(tmp_path: Path) -> None:
    source, cfg, _, _ = nms_vault(tmp_path)
    soft = tmp_path / "Methods" / "Soft-NMS.md"
    copy = tmp_path / "Methods" / "Soft-NMS v2.md"
    text = soft.read_text().replace("# Soft-NMS\n", "# Soft-NMS v2\n", 1)
    copy.write_text(text.replace("- '[[NMS]]'\n", "- '[[Soft-NMS]]'\n", 1))
    settled(copy)
    result = sync(cfg, source=source, options=SyncOptions(full=True))
    said = "\n".join(result.warnings)
    assert "Methods/Soft-NMS v2.md: its method_id 'soft-nms' is also Methods/Soft-NMS.md's" in said
    nms = (tmp_path / "Methods" / "NMS.md").read_text()
    assert "Soft-NMS v2" not in nms  # the copy is not taken for a method of its own


@pytest.mark.xfail(
    strict=True,
    reason="vault/papers.py refresh_papers reads a paper note's properties however recently"
    " it was saved; the daemon test test_property_edit_updates_the_method_note_once expects"
    " that (X.md before the note settles), and a settle check there keeps the daemon from"
    " making X.md at all: needs the daemon's settle sync looked into",
)
def test_a_paper_note_being_saved_makes_no_method_note(tmp_path: Path) -> None:
    """The same for a paper note: its half-typed `extends` (`[[Kalm`), saved moments ago,
    is not the user's intent yet; once it settles it is."""
    adam = make_item("Adam", citation_key="kingma2015", tags=("proposes:Adam",))
    source = ModelSource([adam])
    cfg = vault_config(tmp_path, settle_seconds=30)
    sync(cfg, source=source)
    note = tmp_path / "Papers" / "kingma2015.md"
    note.write_text(note.read_text().replace("zotero_key:", "extends:\n- '[[Kalm'\nzotero_key:", 1))
    result = sync(cfg, source=source, options=SyncOptions(wait_for_saves=False))
    assert any(d["path"] == "Papers/kingma2015.md" for d in result.deferred)
    assert sorted(p.name for p in (tmp_path / "Methods").iterdir()) == ["Adam.md"]
    note.write_text(note.read_text().replace("'[[Kalm'", "'[[Kalman Filter]]'"))
    settled(note, 60)
    sync(cfg, source=source)
    assert sorted(p.name for p in (tmp_path / "Methods").iterdir()) == [
        "Adam.md", "Kalman Filter.md",
    ]  # fmt: skip
