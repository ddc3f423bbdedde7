"""The reading workflow: sync filters, `zob new`, the reading queue, the weekly report.

Everything runs through the real pipeline on temp vaults: the bundled sample library (real
Zotero API JSON) or `ModelSource` items, real state databases, real note files. Dates are
fixed through `SyncOptions.now` and `today=`, so the history the report reads is known.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import unquote

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import Config
from bridge.model import Annotation, Creator
from bridge.sources.sample import SampleSource
from bridge.state import State
from bridge.sync import SyncOptions, sync
from bridge.vault.notefile import parse_note
from bridge.workflow.filters import SyncFilter
from bridge.workflow.matching import best_match, find_items
from bridge.workflow.newnote import (
    AmbiguousQueryError,
    new_method_note,
    new_paper_note,
    obsidian_uri,
)
from bridge.workflow.report import parse_week, weekly_report
from tests.helpers import ModelSource, make_item, snapshot_tree, vault_config, with_annotations

SAMPLE = SampleSource()


def region(text: str, name: str) -> str:
    match = re.search(rf"%% zob:begin {name} %%\n(.*?)%% zob:end {name} %%", text, re.S)
    assert match, f"no region {name}"
    return match.group(1)


def set_props(path: Path, **changes: object) -> None:
    """Edit properties as a user would in Obsidian; the mtime moves on for sure, so even an
    edit of the same size in the same clock tick is seen."""
    text = path.read_text(encoding="utf-8")
    for key, value in changes.items():
        line = f"{key}: {value}"
        text, n = re.subn(rf"(?m)^{key}:.*$", line, text, count=1)
        if n == 0:
            text = text.replace("\n---\n", f"\n{line}\n---\n", 1)
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def at(day: int, month: int = 1, hour: int = 9) -> SyncOptions:
    return SyncOptions(now=datetime(2024, month, day, hour, tzinfo=UTC))


def sample_config(vault: Path, **kwargs: object) -> Config:
    return Config(vault=vault, source="sample", **kwargs)


# --- filters ---------------------------------------------------------------------------------


def test_filter_rules_collections_with_subcollections_and_tags() -> None:
    items = {i.citation_key: i for i in SAMPLE.read().items}
    vision = SyncFilter(collections=("Vision",))
    assert vision.matches(items["bodla2017softnms"])  # Vision/Detection: a sub-collection
    assert not vision.matches(items["vaswani2017attention"])
    assert SyncFilter(collections=("detection",)).matches(items["neubeck2006efficient"])
    assert SyncFilter(collections=("Vision/Normalization",)).matches(items["wu2018group"])
    assert not SyncFilter(collections=("Vision/Normalization",)).matches(items["he2016deep"])
    either = SyncFilter(collections=("Generative",), tags=("NLP",))
    assert either.matches(items["devlin2019bert"]) and either.matches(
        items["kingma2014autoencoding"]
    )
    assert not either.matches(items["he2016deep"])
    assert SyncFilter().matches(items["he2016deep"])


def test_items_outside_filters_get_no_note_and_typos_are_reported(tmp_path: Path) -> None:
    config = sample_config(tmp_path, filter_collections=("Vision", "Visoin"))
    result = sync(config)
    papers = sorted(p.stem for p in (tmp_path / "Papers").iterdir())
    assert "he2016deep" in papers and "bodla2017softnms" in papers
    assert "vaswani2017attention" not in papers and "kingma2015adam" not in papers
    assert any("Visoin" in w for w in result.warnings)
    assert not any("'Vision'" in w for w in result.warnings)


def test_filtering_out_existing_notes_leaves_them_alone(tmp_path: Path) -> None:
    """Neither the tripwire nor the erased-item detection fires for filtered-out items."""
    sync(sample_config(tmp_path))
    before = snapshot_tree(tmp_path / "Papers")
    narrow = sample_config(tmp_path, filter_tags=("textbook",))  # 2 of 19 items
    result = sync(narrow)  # would trip the tripwire if filtered items counted as missing
    assert result.ok and result.deleted == 0
    assert snapshot_tree(tmp_path / "Papers") == before
    assert "deleted-in-zotero" not in "".join(t.decode() for t in before.values())
    with State(tmp_path) as state:
        assert not any(n.zotero_deleted for n in state.notes().values())


# --- zob new ---------------------------------------------------------------------------------


@pytest.fixture
def filtered(tmp_path: Path) -> tuple[Config, Path]:
    """A vault synced with only the Vision collection."""
    config = sample_config(tmp_path, filter_collections=("Vision",))
    sync(config)
    return config, tmp_path


def test_new_by_citekey_outside_the_filters(filtered: tuple[Config, Path]) -> None:
    config, vault = filtered
    made = new_paper_note(config, "vaswani2017attention")
    assert made.action == "create" and made.path == "Papers/vaswani2017attention.md"
    assert made.match is not None and made.match.by == "citation key"
    text = (vault / made.path).read_text()
    assert "title: Attention Is All You Need" in text and "pass: 0" in text
    # the method note follows the new paper (it proposes the Transformer)
    assert "[[vaswani2017attention]]" in (vault / "Methods" / "Transformer.md").read_text()
    # pinned: later syncs keep the note up to date, other NLP items still get none
    result = sync(config, SyncOptions(full=True))
    assert result.ok
    assert (vault / made.path).exists() and not (vault / "Papers" / "devlin2019bert.md").exists()
    with State(vault) as state:
        assert "RQFGAVD7" in state.pinned()


def test_new_by_zotero_key_refreshes_an_existing_note(filtered: tuple[Config, Path]) -> None:
    config, vault = filtered
    path = vault / "Papers" / "he2016deep.md"
    path.write_text(path.read_text().replace("- **Problem:** ", "- **Problem:** mine"))
    made = new_paper_note(config, "hc3bqt5n")  # keys: case ignored
    assert made.path == "Papers/he2016deep.md" and made.match.by == "Zotero key"
    assert made.action in ("touch", "unchanged", "update")
    assert "- **Problem:** mine" in path.read_text()


def test_new_by_title_words_unambiguous_with_typos(filtered: tuple[Config, Path]) -> None:
    config, _ = filtered
    made = new_paper_note(config, "resdual lerning")
    assert made.path == "Papers/he2016deep.md" and made.match.by == "title"
    assert new_paper_note(config, "attention is all you need").path.endswith(
        "vaswani2017attention.md"
    )


def test_new_by_title_words_ambiguous(filtered: tuple[Config, Path]) -> None:
    config, vault = filtered
    with pytest.raises(AmbiguousQueryError) as caught:
        new_paper_note(config, "normalization")
    keys = {m.item.citation_key for m in caught.value.candidates}
    assert keys == {"ioffe2015batch", "wu2018group", "ulyanov2016instance"}
    chosen = new_paper_note(config, "normalization", choose=lambda ms: ms[-1])
    assert chosen.path == f"Papers/{caught.value.candidates[-1].item.citation_key}.md"
    best = new_paper_note(config, "normalization", first=True)
    assert best.path == f"Papers/{caught.value.candidates[0].item.citation_key}.md"


def test_cli_new_ambiguous_lists_candidates_and_exits_2(filtered: tuple[Config, Path]) -> None:
    _, vault = filtered
    result = CliRunner().invoke(main, ["new", "deep", "--source", "sample", "--vault", str(vault)])
    assert result.exit_code == 2
    assert "he2016deep — Deep Residual Learning" in result.output
    assert "goodfellow2016deep — Deep Learning" in result.output and "--first" in result.output
    assert "Traceback" not in result.output


def test_cli_new_choice_list_at_a_terminal(
    filtered: tuple[Config, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, vault = filtered
    monkeypatch.setattr("bridge.cli._interactive", lambda: True)
    matches = find_items(SAMPLE.read().items, "deep")
    second = matches[1].item.citation_key
    result = CliRunner().invoke(
        main, ["new", "deep", "--source", "sample", "--vault", str(vault)], input="2\n"
    )
    assert result.exit_code == 0, result.output
    assert "1. " in result.output and f"Papers/{second}.md" in result.output


def test_cli_new_open_uses_an_encoded_obsidian_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = tmp_path / "My Vault"
    vault.mkdir()
    item = make_item("Ünïcode & spaces: a #test", creators=(Creator("author", "Zoë", "Ørsted"),))
    launched: list[str] = []
    monkeypatch.setattr("click.launch", lambda url, **kw: launched.append(url) or 0)
    monkeypatch.setattr("bridge.workflow.newnote.open_source", lambda c: ModelSource([item]))
    result = CliRunner().invoke(
        main, ["new", item.key, "--vault", str(vault), "--source", "sample", "--open"]
    )
    assert result.exit_code == 0, result.output
    path = result.output.strip().splitlines()[-1]
    assert (vault / path).is_file()
    (uri,) = launched
    assert uri.startswith("obsidian://open?vault=My%20Vault&file=Papers%2F")
    assert " " not in uri and "&" not in uri.split("&file=")[1] and "#" not in uri
    assert unquote(uri.split("&file=")[1]) == path.removesuffix(".md")


def test_obsidian_uri_encoding() -> None:
    uri = obsidian_uri(Path("/x/Research notes"), "Papers/Lee 2020 - A+B = C?.md")
    assert (
        uri
        == "obsidian://open?vault=Research%20notes&file=Papers%2FLee%202020%20-%20A%2BB%20%3D%20C%3F"
    )


def test_new_recreates_a_note_the_user_deleted(tmp_path: Path) -> None:
    item = make_item("Gone and back", citation_key="gone2020")
    source = ModelSource([item])
    config = vault_config(tmp_path)
    sync(config, source=source)
    (tmp_path / "Papers" / "gone2020.md").unlink()
    sync(config, source=source)  # the bridge notices and respects the deletion
    assert not (tmp_path / "Papers" / "gone2020.md").exists()
    made = new_paper_note(config, "gone2020", source=source)
    assert made.action == "create" and (tmp_path / "Papers" / "gone2020.md").exists()
    sync(config, source=source)
    assert (tmp_path / "Papers" / "gone2020.md").exists()


def test_new_without_any_match(filtered: tuple[Config, Path]) -> None:
    config, _ = filtered
    result = CliRunner().invoke(
        main, ["new", "quantum chromodynamics", "--source", "sample", "--vault", str(config.vault)]
    )
    assert result.exit_code == 2 and "nothing in the library matches" in result.output


def test_matching_prefers_whole_titles_and_clear_winners() -> None:
    items = SAMPLE.read().items
    matches = find_items(items, "deep learning")
    assert best_match(matches, "deep learning").item.citation_key == "goodfellow2016deep"
    assert best_match(find_items(items, "deep"), "deep") is None
    assert find_items(items, "HE2016DEEP")[0].item.key == "HC3BQT5N"


def test_new_method_note_merges_with_later_syncs(tmp_path: Path) -> None:
    config = sample_config(tmp_path)
    sync(config)
    made = new_method_note(config, "Soft-NMS v2", ["Soft-NMS"])
    assert made.path == "Methods/Soft-NMS v2.md" and made.action == "create"
    path = tmp_path / made.path
    text = path.read_text()
    assert "type: method" in text and "- '[[Soft-NMS]]'" in text
    assert "- [[Soft-NMS]]" in region(text, "extends") and "flowchart LR" in text
    assert "## Key idea" in text  # the method template's user sections
    path.write_text(text.replace("## Key idea\n", "## Key idea\nDecay by IoU, learned.\n"))
    for _ in range(2):
        result = sync(config, SyncOptions(full=True))
        assert result.ok
        after = path.read_text()
        assert "- '[[Soft-NMS]]'" in after and "- [[Soft-NMS]]" in region(after, "extends")
        assert "Decay by IoU, learned." in after and "conflict" not in after
    again = new_method_note(config, "soft-nms v2")
    assert again.action == "exists" and path.read_text() == after


# --- the reading queue -----------------------------------------------------------------------


def queue_lists(vault: Path) -> dict[str, list[str]]:
    text = (vault / "Reading queue.md").read_text()
    names = ("to-read", "decide", "pass-2", "pass-3", "dropped")
    return {n: re.findall(r"^- \[\[([^\]]+)\]\]", region(text, f"queue-{n}"), re.M) for n in names}


@pytest.fixture
def reading(tmp_path: Path) -> tuple[ModelSource, Config, Path]:
    years = {"a2019": 2019, "b2021": 2021, "c2017": 2017, "d2015": 2015, "e2020": 2020,
             "f2018": 2018, "g2022": 2022, "h2016": 2016}  # fmt: skip
    items = [
        make_item(f"Paper {key}", citation_key=key, fields={"date": str(year),
                  "publicationTitle": f"Venue {key[0].upper()}"})
        for key, year in years.items()
    ]  # fmt: skip
    source = ModelSource(items)
    config = vault_config(tmp_path)
    sync(config, at(2), source=source)
    return source, config, tmp_path


def test_queue_lists_papers_by_stage_newest_first(reading) -> None:
    source, config, vault = reading
    assert queue_lists(vault)["to-read"] == [
        "g2022", "b2021", "e2020", "a2019", "f2018", "c2017", "h2016", "d2015"
    ]  # fmt: skip
    papers = vault / "Papers"
    set_props(papers / "a2019.md", **{"pass": 1})  # decide
    set_props(papers / "b2021.md", **{"pass": 1, "status": "reading"})  # read on → pass 2
    set_props(papers / "c2017.md", **{"pass": 2})
    set_props(papers / "d2015.md", **{"pass": 1, "status": "done"})  # finished → pass 3
    set_props(papers / "e2020.md", **{"pass": 3, "status": "done"})
    set_props(papers / "f2018.md", **{"pass": 1, "status": "dropped"})
    trashed = next(i for i in source.items.values() if i.citation_key == "g2022")
    source.put(replace(trashed, trashed=True))  # deleted-in-zotero: not listed
    queue_path = vault / "Reading queue.md"
    queue_path.write_text(queue_path.read_text() + "\nMy plan: finish b2021 first.\n")
    result = sync(config, at(3), source=source)
    assert result.ok
    assert queue_lists(vault) == {
        "to-read": ["h2016"], "decide": ["a2019"], "pass-2": ["b2021", "c2017"],
        "pass-3": ["e2020", "d2015"], "dropped": ["f2018"],
    }  # fmt: skip
    text = queue_path.read_text()
    assert "- [[b2021]] — Paper b2021 (2021, Venue B) · pass 1 · reading" in text
    assert "My plan: finish b2021 first." in text  # the user's words outside the lists stay
    assert "```dataview" in text and "WHERE zotero_key" in text
    for heading in ("To read", "Pass 1 done → decide", "Pass 2", "Pass 3", "Dropped"):
        assert f"\n## {heading}\n" in text
    again = sync(config, at(3, hour=10), source=source)
    assert again.ok and queue_path.read_text() == text


def test_queue_command_rebuilds_a_deleted_queue(reading) -> None:
    _, config, vault = reading
    (vault / "Reading queue.md").unlink()
    set_props(vault / "Papers" / "a2019.md", **{"pass": 1})
    result = CliRunner().invoke(main, ["queue", "--vault", str(vault)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Reading queue.md"
    assert queue_lists(vault)["decide"] == ["a2019"]


def test_queue_can_be_turned_off(tmp_path: Path) -> None:
    sync(vault_config(tmp_path, reading_queue=""), source=ModelSource([make_item()]))
    assert not (tmp_path / "Reading queue.md").exists()


def test_queue_in_chinese(tmp_path: Path) -> None:
    sync(vault_config(tmp_path, language="zh"), source=ModelSource([make_item("论文")]))
    text = (tmp_path / "Reading queue.md").read_text()
    assert "## 待读" in text and "## 第一遍完成 → 决定" in text and "[[lovelaceLun2016]]" in text


# --- the weekly report -----------------------------------------------------------------------


def test_parse_week() -> None:
    assert parse_week("2024-W02").label == "2024-W02"
    assert parse_week("2024-01-14").start == date(2024, 1, 8)
    assert parse_week("2024-12-30").label == "2025-W01"  # ISO weeks cross years
    assert parse_week(None, today=date(2024, 1, 10)).label == "2024-W02"
    with pytest.raises(Exception, match="not a week"):
        parse_week("last tuesday")


def ann(key: str, added: str) -> Annotation:
    return Annotation(key, "", "highlight", text=f"text {key}", date_added=added)


def test_report_for_a_week_with_known_changes(tmp_path: Path) -> None:
    """W01: notes made. W02 (8–14 Jan 2024): A 0 → 1 → 2, B dropped, a highlight added to A,
    a new paper extends the NMS method. W03: C reaches pass 1 (not in W02's report)."""
    fields = {"date": "2020", "publicationTitle": "CVPR"}
    a = with_annotations(
        make_item("Paper A", citation_key="a2020", fields=fields),
        ann("AAAA2222", "2023-12-01T10:00:00Z"),
    )
    b = make_item("Paper B", citation_key="b2019")
    c = make_item("Paper C", citation_key="c2018", tags=("proposes:NMS",))
    source = ModelSource([a, b, c])
    config = vault_config(tmp_path)
    papers = tmp_path / "Papers"
    sync(config, at(2), source=source)  # W01
    set_props(papers / "a2020.md", **{"pass": 1})
    new_highlight = ann("BBBB3333", "2024-01-09T15:30:00Z")
    source.put(with_annotations(a, a.annotations[0], new_highlight, att_key=a.attachments[0].key))
    sync(config, at(9), source=source)
    set_props(papers / "b2019.md", status="dropped")
    source.put(make_item("Paper D", citation_key="d2024", tags=("extends:NMS",)))
    sync(config, at(10), source=source)
    set_props(papers / "a2020.md", **{"pass": 2, "status": "reading"})
    sync(config, at(11), source=source)
    set_props(papers / "c2018.md", **{"pass": 1})
    sync(config, at(16), source=source)  # W03

    data, result = weekly_report(config, "2024-W02")
    assert result.ok and data["path"] == "Reports/2024-W02.md"
    assert (data["week"], data["start"], data["end"]) == ("2024-W02", "2024-01-08", "2024-01-14")
    assert [(p["stem"], p["from_pass"], p["to_pass"]) for p in data["advanced"]] == [
        ("a2020", 0, 2)
    ]
    assert data["advanced"][0]["venue"] == "CVPR" and data["advanced"][0]["year"] == 2020
    assert [(p["stem"], p["pass"]) for p in data["dropped"]] == [("b2019", 0)]
    assert data["highlights_total"] == 1
    assert [(h["stem"], h["annotations"]) for h in data["highlights"]] == [("a2020", ["BBBB3333"])]
    assert [(m["stem"], m["changes"]) for m in data["methods"]] == [("NMS", ["updated by a sync"])]
    weeks = {w["week"]: w for w in data["weeks"]}
    assert len(data["weeks"]) == 8 and data["weeks"][-1]["week"] == "2024-W02"
    assert weeks["2024-W02"] == {"week": "2024-W02", "pass_1": 1, "pass_2": 1, "pass_3": 0,
                                 "dropped": 1, "total": 2}  # fmt: skip
    assert weeks["2024-W01"]["total"] == 0

    text = (tmp_path / "Reports" / "2024-W02.md").read_text()
    note = parse_note("r", text)
    assert note.properties == {"type": "weekly-report", "week": "2024-W02"}
    body = region(text, "report")
    assert "- [[a2020]] — Paper A (2020, CVPR): pass 0 → 2" in body
    assert "[[a2020#^bbbb3333|1]]" in body and "- [[b2019]] — Paper B (2016)" in body
    assert "```mermaid\nxychart-beta" in body and "bar [0, 0, 0, 0, 0, 0, 0, 2]" in body
    assert "| 2024-W02 | 1 | 1 | 0 | 1 |" in body

    # W03 holds C's pass 1; making W02 again keeps the user's words and changes nothing else
    w03, _ = weekly_report(config, "2024-01-17")
    assert [p["stem"] for p in w03["advanced"]] == ["c2018"] and w03["dropped"] == []
    report_path = tmp_path / "Reports" / "2024-W02.md"
    report_path.write_text(report_path.read_text() + "Good week.\n")
    runner = CliRunner()
    out = runner.invoke(
        main, ["report", "--week", "2024-01-12", "--vault", str(tmp_path), "--json"]
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == data
    assert report_path.read_text() == text + "Good week.\n"


def test_report_needs_a_synced_vault(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", "--week", "--vault", str(tmp_path)])
    assert result.exit_code == 2 and "has not been synced" in result.output


def test_report_default_week_is_this_week(tmp_path: Path) -> None:
    sync(vault_config(tmp_path), source=ModelSource([make_item()]))
    result = CliRunner().invoke(main, ["report", "--week", "--vault", str(tmp_path)])
    assert result.exit_code == 0, result.output
    label = parse_week(None).label
    assert result.output.strip() == f"Reports/{label}.md"


def test_demo_queue_and_report_links_all_resolve(tmp_path: Path) -> None:
    """Obsidian must find every link the workflow writes, block links to highlights included."""
    from bridge.vault.links import LinkIndex

    assert CliRunner().invoke(main, ["demo", str(tmp_path)]).exit_code == 0
    set_props(tmp_path / "Papers" / "he2016deep.md", **{"pass": 2})
    assert sync(Config(vault=tmp_path, source="sample"), at(9, month=4, hour=12)).ok
    data, result = weekly_report(Config(vault=tmp_path), "2025-04-10")
    assert result.ok and data["highlights_total"] == 6 and data["advanced"] == []
    index = LinkIndex.build(tmp_path)
    assert {k: v for k, v in index.unresolved_links().items() if v} == {}
    backlinks = index.backlinks("Papers/he2016deep.md")
    assert "Reading queue.md" in backlinks and "Reports/2025-W15.md" in backlinks
