"""Lineage a researcher can write from (issue 19): method notes with their whole
neighbourhood, edges from method notes, aliases, moved method notes, canvases, the story."""

from __future__ import annotations

import json
import re
import shutil
from itertools import combinations
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import Config
from bridge.sources.sqlite import SqliteSource
from bridge.sync import SyncOptions, sync
from bridge.vault.links import LinkIndex
from tests.helpers import ModelSource, make_item, settled, vault_config
from tests.zotero_db import ZoteroDB

# (parent, child, the paper that made the step) in the bundled sample library
SAMPLE_STEPS = [
    ("Highway Network", "ResNet", "he2016deep"),
    ("ResNet", "SENet", "hu2018squeeze"),
    ("Batch Normalization", "Group Normalization", "wu2018group"),
    ("Instance Normalization", "Group Normalization", "wu2018group"),
    ("NMS", "Soft-NMS", "bodla2017softnms"),
    ("VAE", "CVAE", "sohn2015learning"),
    ("Attention", "Transformer", "vaswani2017attention"),
    ("Transformer", "BERT", "devlin2019bert"),
]


@pytest.fixture(scope="module")
def demo_vault(tmp_path_factory: pytest.TempPathFactory) -> Path:
    vault = tmp_path_factory.mktemp("demo")
    result = CliRunner().invoke(main, ["demo", str(vault)])
    assert result.exit_code == 0, result.output
    return vault


@pytest.fixture
def demo_copy(demo_vault: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "vault"
    shutil.copytree(demo_vault, copy)
    return copy


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


def method_note(vault: Path, name: str) -> str:
    return (vault / "Methods" / f"{name}.md").read_text()


def unresolved(vault: Path) -> dict:
    return {k: v for k, v in LinkIndex.build(vault).unresolved_links().items() if v}


def run(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def paper_steps(vault: Path) -> list[tuple[str, str, str]]:
    """Which step each sample paper made, by its note name (they differ by citekey)."""
    return [
        (p, c, paper) for p, c, paper in SAMPLE_STEPS if (vault / "Papers" / f"{paper}.md").exists()
    ]


def assert_steps_both_ways(vault: Path, steps: list[tuple[str, str, str]]) -> None:
    for parent, child, paper in steps:
        up = region(method_note(vault, child), "extends")
        assert re.search(rf"^- \[\[{re.escape(parent)}\]\] — via \[\[{paper}\]\]", up, re.M), up
        down = region(method_note(vault, parent), "extended-by")
        assert re.search(rf"^- \[\[{re.escape(child)}\]\] — via \[\[{paper}\]\]", down, re.M)


def test_sample_lineages_show_methods_both_ways(demo_vault: Path) -> None:
    steps = paper_steps(demo_vault)
    assert len(steps) == len(SAMPLE_STEPS)  # the sample's papers are named by citekey
    assert_steps_both_ways(demo_vault, steps)
    # two generations: Group Normalization's ancestors include BN through IN, indented
    up = region(method_note(demo_vault, "Group Normalization"), "extends")
    assert "\n    - [[Batch Normalization]] — via [[ulyanov2016instance]] (2016" in up
    # the papers that propose and extend, with year, short venue and reading progress
    nms = method_note(demo_vault, "NMS")
    assert "[[neubeck2006efficient]] — Efficient Non-Maximum Suppression (2006, ICPR) · pass 0" in (
        region(nms, "proposed-in")
    )
    assert "(2017, ICCV) · pass 0 · reading" in region(nms, "extended-by")


def test_sample_lineages_from_zotero_tables(tmp_path: Path) -> None:
    """The same steps from a library in Zotero's own tables (tags and Extra lines)."""
    data = tmp_path / "zotero"
    data.mkdir()
    db = ZoteroDB.create(data / "zotero.sqlite")
    papers = {}
    for parent, child, paper in SAMPLE_STEPS:
        papers.setdefault(f"{parent}-paper", (parent, (), None))
        papers[paper] = (child, papers.get(paper, (child, (), None))[1] + (parent,), paper)
    for cite, (proposes, extends, _) in papers.items():
        tags = [f"proposes:{proposes}"] + ([f"extends:{extends[0]}"] if extends else [])
        extra = f"extends: {'; '.join(extends[1:])}" if len(extends) > 1 else None
        db.add_item("journalArticle", title=f"{proposes} paper", date="2016",
                    creators=[("author", "A", "Author")], tags=tags, extra=extra,
                    citation_key=cite.replace(" ", ""))  # fmt: skip
    db.commit()
    vault = tmp_path / "vault"
    vault.mkdir()
    result = sync(Config(vault=vault, zotero_dir=data), source=SqliteSource(data))
    assert result.ok, result.errors
    assert_steps_both_ways(vault, SAMPLE_STEPS)
    assert unresolved(vault) == {}


def test_mermaid_nodes_are_clickable_note_names(demo_vault: Path) -> None:
    diagram = region(method_note(demo_vault, "Transformer"), "lineage")
    labels = dict(re.findall(r'(m\d+)\["([^"]+)"\]', diagram))
    assert set(labels.values()) == {"Attention", "Transformer", "BERT"}
    for label in labels.values():  # each label is the name of a note
        assert (demo_vault / "Methods" / f"{label}.md").exists()
    clicked = re.search(r"^    class (\S+) internal-link$", diagram, re.M)
    assert clicked and set(clicked.group(1).split(",")) == set(labels)


def test_mermaid_depth_comes_from_the_config(tmp_path: Path) -> None:
    items = [
        make_item(f"P{i}", citation_key=f"p{i}",
                  tags=(f"proposes:M{i}", *((f"extends:M{i - 1}",) if i else ())))
        for i in range(5)
    ]  # fmt: skip
    sync(vault_config(tmp_path, mermaid_depth=1), source=ModelSource(items))
    text = method_note(tmp_path, "M2")
    assert '"M1"' in region(text, "lineage") and '"M0"' not in region(text, "lineage")
    assert "[[M0]]" not in region(text, "extends")


def test_method_note_edge_reaches_the_ancestor(demo_copy: Path) -> None:
    vault = str(demo_copy)
    run("new", "--vault", vault, "--source", "sample", "--method", "Soft-NMS v2",
        "--extends", "soft-nms")  # fmt: skip
    for _ in range(2):  # at once, and after a full sync
        soft = method_note(demo_copy, "Soft-NMS")
        assert "- [[Soft-NMS v2]] — *declared in the method note*" in region(soft, "extended-by")
        diagram = region(soft, "lineage")
        assert '["Soft-NMS v2"]' in diagram
        info = json.loads(run("lineage", "NMS", "--vault", vault, "--json"))
        soft_nms = info["descendants"][0]
        assert soft_nms["via"] == ["Papers/bodla2017softnms.md"]
        assert soft_nms["children"][0]["method"] == "Soft-NMS v2"
        assert soft_nms["children"][0]["via"] == []  # declared in its note
        canvas = json.loads((demo_copy / "Lineage" / "NMS.canvas").read_text())
        assert "Methods/Soft-NMS v2.md" in {n.get("file") for n in canvas["nodes"]}
        run("sync", "--vault", vault, "--source", "sample", "--full")
    assert unresolved(demo_copy) == {}
    # the user takes the edge out of the note: it goes everywhere
    note = demo_copy / "Methods" / "Soft-NMS v2.md"
    note.write_text(re.sub(r"extends:\n- '\[\[Soft-NMS\]\]'\n", "", note.read_text()))
    settled(note)
    run("sync", "--vault", vault, "--source", "sample")
    assert "Soft-NMS v2" not in method_note(demo_copy, "Soft-NMS")


def test_an_edge_the_bridge_wrote_goes_when_the_paper_drops_it(tmp_path: Path) -> None:
    nms = make_item("NMS paper", citation_key="n2006", tags=("proposes:NMS",))
    soft = make_item("Soft paper", citation_key="b2017", tags=("proposes:Soft-NMS", "extends:NMS"))
    source = ModelSource([nms, soft])
    config = vault_config(tmp_path)
    sync(config, source=source)
    assert "[[NMS]]" in method_note(tmp_path, "Soft-NMS")
    source.put(make_item("Soft paper", key=soft.key, citation_key="b2017",
                         tags=("proposes:Soft-NMS",)))  # fmt: skip
    sync(config, source=source)
    assert "[[NMS]]" not in method_note(tmp_path, "Soft-NMS")  # not taken for the user's
    assert "Soft-NMS" not in method_note(tmp_path, "NMS").split("## Extended by")[1]


def test_aliases_resolve_in_tags_properties_and_commands(tmp_path: Path) -> None:
    items = [
        make_item("BN paper", citation_key="ioffe", tags=("proposes:Batch Normalization",)),
        make_item("IN paper", citation_key="ulyanov",
                  tags=("proposes:Instance Normalization", "extends:bn")),
        make_item("GN paper", citation_key="wu", fields={"extra": "proposes: GN\nextends: BN; IN"}),
    ]  # fmt: skip
    source = ModelSource(items)
    config = vault_config(
        tmp_path, lineage_aliases={"BN": "Batch Normalization", "GN": "Group Normalization"}
    )
    sync(config, source=source)
    assert not (tmp_path / "Methods" / "BN.md").exists()
    assert not (tmp_path / "Methods" / "GN.md").exists()
    bn = method_note(tmp_path, "Batch Normalization")
    assert "aliases:\n- BN\n" in bn
    assert "[[Instance Normalization]] — via [[ulyanov]]" in region(bn, "extended-by")
    assert "'[[Batch Normalization]]'" in (tmp_path / "Papers" / "ulyanov.md").read_text()
    # an alias the user writes in a method note works as well: IN (lower case in Extra)
    inorm = tmp_path / "Methods" / "Instance Normalization.md"
    text = inorm.read_text()
    assert "aliases:" not in text
    inorm.write_text(text.replace("type: method\n", "type: method\naliases:\n- IN\n", 1))
    settled(inorm)
    sync(config, source=source, options=SyncOptions(full=True))
    gn = method_note(tmp_path, "Group Normalization")
    assert "[[Batch Normalization]] — via [[wu]]" in region(gn, "extends")
    assert "[[Instance Normalization]] — via [[wu]]" in region(gn, "extends")
    # the note made for "IN" before it was an alias lists nothing any more
    assert region(method_note(tmp_path, "IN"), "extended-by").strip() == ""
    assert "[[IN]]" not in gn
    out = run("lineage", "bn", "--vault", str(tmp_path), "--json")
    assert json.loads(out)["method"] == "Batch Normalization"
    story = run("lineage", "in", "--vault", str(tmp_path), "--story")
    assert "[[Instance Normalization]]" in story
    assert unresolved(tmp_path) == {}


def test_a_moved_or_renamed_method_note_is_updated_in_place(tmp_path: Path) -> None:
    nms = make_item("NMS paper", citation_key="n2006", tags=("proposes:NMS",))
    soft = make_item("Soft paper", citation_key="b2017", tags=("proposes:Soft-NMS", "extends:NMS"))
    source = ModelSource([nms, soft])
    config = vault_config(tmp_path)
    sync(config, source=source)
    moved = tmp_path / "Archive" / "NMS.md"
    moved.parent.mkdir()
    text = method_note(tmp_path, "NMS").replace(
        "## Key idea\n", "## Key idea\nKeep the best box.\n"
    )
    moved.write_text(text)
    (tmp_path / "Methods" / "NMS.md").unlink()
    renamed = tmp_path / "Methods" / "SoftNMS.md"
    (tmp_path / "Methods" / "Soft-NMS.md").rename(renamed)
    settled(moved)
    later = make_item("Later paper", citation_key="x2019", tags=("extends:NMS",))
    source.put(later)
    result = sync(config, source=source)
    assert result.ok, result.errors
    assert not (tmp_path / "Methods" / "NMS.md").exists()  # not made again
    assert not (tmp_path / "Methods" / "Soft-NMS.md").exists()
    text = moved.read_text()
    assert "Keep the best box." in text
    assert "[[x2019]]" in region(text, "extended-by")
    assert "[[SoftNMS]] — via [[b2017]]" in region(text, "extended-by")  # its new name
    assert "'[[SoftNMS]]'" in (tmp_path / "Papers" / "b2017.md").read_text()
    assert unresolved(tmp_path) == {}


def test_a_method_never_takes_a_paper_notes_name(tmp_path: Path) -> None:
    paper = make_item("Dropout: a simple way", citation_key="Dropout", tags=("proposes:Dropout",))
    user = make_item("Uses it", citation_key="later2020", tags=("extends:Dropout",))
    sync(vault_config(tmp_path), source=ModelSource([paper, user]))
    assert (tmp_path / "Papers" / "Dropout.md").exists()
    note = tmp_path / "Methods" / "Dropout (method).md"
    assert note.exists() and not (tmp_path / "Methods" / "Dropout.md").exists()
    for name in ("Dropout.md", "later2020.md"):
        text = (tmp_path / "Papers" / name).read_text()
        assert "[[Dropout (method)]]" in region(text, "lineage")
        assert "'[[Dropout (method)]]'" in text
    index = LinkIndex.build(tmp_path)
    assert "Papers/later2020.md" in index.backlinks("Methods/Dropout (method).md")


def test_a_paper_notes_lineage_region_shows_its_own_properties(tmp_path: Path) -> None:
    adam = make_item("Adam", citation_key="kingma2015", tags=("proposes:Adam",))
    source = ModelSource([adam])
    config = vault_config(tmp_path)
    sync(config, source=source)
    note = tmp_path / "Papers" / "kingma2015.md"
    note.write_text(
        note.read_text().replace("zotero_key:", "extends:\n- '[[Kalman Filter]]'\nzotero_key:", 1)
    )
    settled(note)
    first = sync(config, source=source)
    assert "**Extends:** [[Kalman Filter]]" in region(note.read_text(), "lineage")
    assert any("'Kalman Filter'" in w for w in first.warnings)
    for options in (SyncOptions(), SyncOptions(full=True)):
        again = sync(config, source=source, options=options)
        assert "**Extends:** [[Kalman Filter]]" in region(note.read_text(), "lineage")
        assert not any("Kalman Filter" in w for w in again.warnings)  # said once
    status = json.loads(run("status", "--vault", str(tmp_path), "--json"))
    assert any("'Kalman Filter'" in p for p in status["lineage_problems"])


def nodes_overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    )  # fmt: skip


def assert_json_canvas(vault: Path, path: Path) -> dict:
    canvas = json.loads(path.read_text())
    assert set(canvas) == {"nodes", "edges"}
    ids = [n["id"] for n in canvas["nodes"]] + [e["id"] for e in canvas["edges"]]
    assert len(ids) == len(set(ids))
    for node in canvas["nodes"]:
        assert node["type"] in ("file", "group", "text")
        assert all(isinstance(node[k], int) for k in ("x", "y", "width", "height"))
        if node["type"] == "file":
            assert (vault / node["file"]).is_file(), node["file"]
    for edge in canvas["edges"]:
        assert {edge["fromNode"], edge["toNode"]} <= set(ids) and edge["label"] == "extends"
    for kinds in (("file", "text"), ("group",)):  # papers sit in their method's group
        same = [n for n in canvas["nodes"] if n["type"] in kinds]
        assert not any(nodes_overlap(a, b) for a, b in combinations(same, 2))
    return canvas


def test_each_lineage_has_a_json_canvas(demo_vault: Path) -> None:
    canvases = sorted(p.name for p in (demo_vault / "Lineage").iterdir())
    assert canvases == [
        "Attention.canvas", "Batch Normalization.canvas", "Highway Network.canvas",
        "NMS.canvas", "VAE.canvas",
    ]  # fmt: skip
    for name in canvases:
        assert_json_canvas(demo_vault, demo_vault / "Lineage" / name)
    canvas = json.loads((demo_vault / "Lineage" / "Batch Normalization.canvas").read_text())
    x = {n["file"]: n["x"] for n in canvas["nodes"] if n["type"] == "file"}
    order = ["Methods/Batch Normalization.md", "Methods/Instance Normalization.md",
             "Methods/Group Normalization.md"]  # fmt: skip
    assert [x[f] for f in order] == sorted(x[f] for f in order) and len(set(x.values())) == 3
    groups = {n["label"]: n for n in canvas["nodes"] if n["type"] == "group"}
    paper = next(n for n in canvas["nodes"] if n.get("file") == "Papers/wu2018group.md")
    assert nodes_overlap(paper, groups["Group Normalization"])  # grouped under its method


def test_a_canvas_changes_only_with_the_lineage_and_never_once_edited(demo_copy: Path) -> None:
    vault = str(demo_copy)
    nms, vae = demo_copy / "Lineage" / "NMS.canvas", demo_copy / "Lineage" / "VAE.canvas"
    before = nms.stat().st_mtime_ns
    run("sync", "--vault", vault, "--source", "sample", "--full")
    assert nms.stat().st_mtime_ns == before  # the lineage did not change
    edited = json.loads(vae.read_text())
    edited["nodes"][0]["x"] += 400  # the user moves a group
    vae.write_text(json.dumps(edited))
    run("new", "--vault", vault, "--source", "sample", "--method", "CVAE v2", "--extends", "CVAE")
    run("new", "--vault", vault, "--source", "sample", "--method", "Soft-NMS v2",
        "--extends", "Soft-NMS")  # fmt: skip
    assert json.loads(vae.read_text()) == edited  # theirs now
    assert "Methods/Soft-NMS v2.md" in nms.read_text()  # ours: follows the lineage
    assert_json_canvas(demo_copy, nms)
    assert unresolved(demo_copy) == {}


def test_demo_vault_has_no_unresolved_links(demo_vault: Path) -> None:
    assert unresolved(demo_vault) == {}


def test_story_runs_from_bn_and_in_to_gn(demo_copy: Path) -> None:
    bn = demo_copy / "Methods" / "Batch Normalization.md"
    bn.write_text(bn.read_text().replace(
        "## Limitations / open problems\n", "## Limitations / open problems\nNeeds large batches.\n"
    ))  # fmt: skip
    paper = demo_copy / "Papers" / "wu2018group.md"
    paper.write_text(
        paper.read_text().replace("- **Problem:** ", "- **Problem:** small batches", 1)
    )
    out = run("lineage", "Group Normalization", "--vault", str(demo_copy), "--story")
    steps = re.findall(r"^## \d+\. \[\[([^\]]+)\]\]", out, re.M)
    assert steps.index("Batch Normalization") < steps.index("Group Normalization")
    assert steps.index("Instance Normalization") < steps.index("Group Normalization")
    assert "Needs large batches. *(from [[Batch Normalization]])*" in out
    assert "- **Problem:** small batches *(from [[wu2018group]])*" in out
    assert "[@wu2018group]" in out
    assert "✎ *empty — write it in [[Instance Normalization]] or [[ulyanov2016instance]]*" in out
    data = json.loads(
        run("lineage", "group normalization", "--vault", str(demo_copy), "--story", "--json")
    )
    assert [s["method"] for s in data["steps"]][-1] == "Group Normalization"
    assert data["steps"][0]["parts"]["limitation"]["empty"] is False
    assert data["empty_parts"] > 0


def test_a_deleted_method_note_stays_out_of_the_canvas(demo_copy: Path) -> None:
    (demo_copy / "Methods" / "Soft-NMS.md").unlink()
    run("new", "--vault", str(demo_copy), "--source", "sample", "--method", "Soft-NMS v2",
        "--extends", "Soft-NMS")  # fmt: skip
    assert not (demo_copy / "Methods" / "Soft-NMS.md").exists()  # not made again
    canvas = assert_json_canvas(demo_copy, demo_copy / "Lineage" / "NMS.canvas")
    texts = [n["text"] for n in canvas["nodes"] if n["type"] == "text"]
    assert texts == ["Soft-NMS"]  # shown by name, its arrows kept
    assert len(canvas["edges"]) == 2


def test_a_method_note_made_by_hand_in_a_subfolder_is_used(tmp_path: Path) -> None:
    mine = tmp_path / "Methods" / "Vision" / "NMS.md"
    mine.parent.mkdir(parents=True)
    mine.write_text("---\ntype: method\n---\n# NMS\n\nMy own words.\n")
    settled(mine)
    items = [
        make_item("NMS paper", citation_key="n2006", tags=("proposes:NMS",)),
        make_item("Soft paper", citation_key="b2017", tags=("proposes:Soft-NMS", "extends:NMS")),
    ]
    result = sync(vault_config(tmp_path), source=ModelSource(items))
    assert result.ok, result.errors
    assert not (tmp_path / "Methods" / "NMS.md").exists()
    text = mine.read_text()
    assert "My own words." in text and "method_id: nms" in text
    assert "'[[n2006]]'" in text  # proposed_in, merged into the user's note
    assert unresolved(tmp_path) == {}


def test_an_alias_naming_another_method_does_not_merge_them(demo_copy: Path) -> None:
    soft = demo_copy / "Methods" / "Soft-NMS.md"
    soft.write_text(
        soft.read_text().replace("type: method\n", "type: method\naliases:\n- NMS\n", 1)
    )
    settled(soft)
    run("sync", "--vault", str(demo_copy), "--source", "sample", "--full")
    info = json.loads(run("lineage", "nms", "--vault", str(demo_copy), "--json"))
    assert info["method"] == "NMS"
    assert [p["note"] for p in info["proposed_in"]] == ["Papers/neubeck2006efficient.md"]
    assert "[[Soft-NMS]] — via" in region(method_note(demo_copy, "NMS"), "extended-by")
