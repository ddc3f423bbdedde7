"""Method lineage: method notes, typed links and backlinks, as Obsidian resolves them."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import Config
from bridge.lineage import MethodGraph, PaperInfo, mermaid
from bridge.sync import SyncOptions, sync
from bridge.vault.links import LinkIndex
from tests.helpers import ModelSource, make_item, vault_config


@pytest.fixture(scope="module")
def demo_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vault = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", str(vault)])
    assert result.exit_code == 0, result.output
    return vault


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


def test_nms_note_lists_soft_nms_paper(demo_vault: Path) -> None:
    text = (demo_vault / "Methods" / "NMS.md").read_text()
    assert "[[neubeck2006efficient]]" in region(text, "proposed-in")
    extended_by = region(text, "extended-by")
    assert "[[bodla2017softnms]]" in extended_by and "2017" in extended_by
    assert "pass 0" in extended_by


def test_group_norm_extends_both_normalizations(demo_vault: Path) -> None:
    text = (demo_vault / "Methods" / "Group Normalization.md").read_text()
    extends = region(text, "extends")
    assert "[[Batch Normalization]]" in extends and "[[Instance Normalization]]" in extends
    paper = (demo_vault / "Papers" / "wu2018group.md").read_text()
    assert "'[[Batch Normalization]]'" in paper and "'[[Instance Normalization]]'" in paper
    assert "related:\n- '[[ioffe2015batch]]'" in paper  # Zotero related items, both ways
    assert "'[[wu2018group]]'" in (demo_vault / "Papers" / "ioffe2015batch.md").read_text()


def test_transformer_diagram_shows_the_chain(demo_vault: Path) -> None:
    diagram = region((demo_vault / "Methods" / "Transformer.md").read_text(), "lineage")
    assert diagram.startswith("```mermaid\nflowchart LR")
    ids = dict(re.findall(r'(m\d+)\["([^"]+)"\]', diagram))
    names = {v: k for k, v in ids.items()}
    assert f"{names['Attention']} --> {names['Transformer']}" in diagram
    assert f"{names['Transformer']} --> {names['BERT']}" in diagram


def test_generated_vault_has_no_unresolved_links(demo_vault: Path) -> None:
    index = LinkIndex.build(demo_vault)
    assert {k: v for k, v in index.unresolved_links().items() if v} == {}
    assert "Papers/bodla2017softnms.md" in index.backlinks("Methods/NMS.md")


def test_cli_lineage_and_backlinks_json(demo_vault: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["lineage", "NMS", "--vault", str(demo_vault), "--json"])
    info = json.loads(out.output)
    assert info["method"] == "NMS"
    assert [p["note"] for p in info["proposed_in"]] == ["Papers/neubeck2006efficient.md"]
    assert [p["note"] for p in info["extended_by"]] == ["Papers/bodla2017softnms.md"]
    assert info["extends"] == []
    back = runner.invoke(main, ["backlinks", "NMS", "--vault", str(demo_vault), "--json"])
    paths = json.loads(back.output)
    assert paths == sorted(paths) and "Papers/bodla2017softnms.md" in paths
    tree = runner.invoke(main, ["lineage", "bert", "--vault", str(demo_vault), "--depth", "2"])
    assert tree.exit_code == 0 and "Transformer" in tree.output and "Attention" in tree.output
    missing = runner.invoke(main, ["lineage", "Nope", "--vault", str(demo_vault)])
    assert missing.exit_code == 2 and "known methods" in missing.output


def test_user_added_extends_reaches_method_note_and_can_be_removed(tmp_path: Path) -> None:
    dropout = make_item("Dropout", citation_key="srivastava2014", tags=("proposes:Dropout",))
    mine = make_item("My paper", citation_key="me2024")
    source = ModelSource([dropout, mine])
    config = vault_config(tmp_path)
    sync(config, source=source)
    note = tmp_path / "Papers" / "me2024.md"
    text = note.read_text()
    note.write_text(text.replace("zotero_key:", 'extends: ["[[Dropout]]"]\nzotero_key:', 1))
    sync(config, source=source)
    method = tmp_path / "Methods" / "Dropout.md"
    assert "[[me2024]]" in region(method.read_text(), "extended-by")
    for _ in range(2):  # survives further syncs, also when Zotero changes the item
        source.put(replace(mine, fields={**mine.fields, "title": "My paper, v2"}))
        sync(config, source=source)
        assert "[[me2024]]" in region(method.read_text(), "extended-by")
        assert "[[Dropout]]" in note.read_text()
    text = note.read_text()
    assert 'extends: ["[[Dropout]]"]' in text  # the user's line, kept as they wrote it
    note.write_text(re.sub(r"extends:.*\n(?:- .*\n)*", "", text))
    sync(config, source=source)
    assert "[[me2024]]" not in method.read_text()


def test_cycles_self_loops_and_unknown_methods_are_reported(tmp_path: Path) -> None:
    items = [
        make_item("A paper", tags=("proposes:A", "extends:B")),
        make_item("B paper", tags=("proposes:B", "extends:A")),
        make_item("Self", tags=("proposes:C", "extends:C")),
        make_item("Orphan", fields={"extra": "extends: Unknown Method"}),
    ]
    result = sync(Config(vault=tmp_path), source=ModelSource(items))
    assert result.ok
    warnings = "\n".join(result.warnings)
    assert "cycle in lineage" in warnings and "self-loop" in warnings
    assert "'Unknown Method'" in warnings
    assert (tmp_path / "Methods" / "Unknown Method.md").exists()
    assert (tmp_path / "Methods" / "A.md").exists()
    index = LinkIndex.build(tmp_path)
    assert {k: v for k, v in index.unresolved_links().items() if v} == {}


def test_mermaid_depth_limits_generations() -> None:
    chain = [
        PaperInfo(
            f"K{i}",
            f"Papers/p{i}.md",
            f"P{i}",
            2000 + i,
            "",
            "0",
            "",
            (f"M{i}",),
            (f"M{i - 1}",) if i else (),
        )
        for i in range(6)
    ]
    graph = MethodGraph.build(chain)
    diagram = mermaid(graph, "M3", depth=1)
    assert '"M2"' in diagram and '"M4"' in diagram
    assert '"M1"' not in diagram and '"M5"' not in diagram


def test_a_paper_note_with_broken_yaml_does_not_ripple_into_method_notes(tmp_path: Path) -> None:
    nms = make_item("NMS paper", citation_key="neubeck2006", tags=("proposes:NMS",))
    soft = make_item("Soft-NMS paper", citation_key="bodla2017", tags=("extends:NMS",))
    source = ModelSource([nms, soft])
    config = vault_config(tmp_path)
    sync(config, source=source)
    method = tmp_path / "Methods" / "NMS.md"
    before = method.read_bytes()
    paper = tmp_path / "Papers" / "bodla2017.md"
    paper.write_text(paper.read_text().replace("title:", "title: [broken", 1))
    result = sync(config, source=source, options=SyncOptions(full=True))
    assert result.skipped == 1
    assert method.read_bytes() == before  # still lists the Soft-NMS paper
