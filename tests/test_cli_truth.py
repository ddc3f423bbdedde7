"""The CLI tells the truth: remembered sources, hints naming the real problem, JSON under
--json (warnings and errors too, with the same exit codes), `zob new`'s ranking, and the
service status code."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.sources.sample import SampleSource
from bridge.workflow.matching import best_match, find_items
from tests.zotero_db import ZoteroDB


def invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def test_a_demo_vault_remembers_its_source(tmp_path: Path) -> None:
    vault = tmp_path / "demo-vault"
    assert invoke("demo", str(vault)).exit_code == 0
    synced = invoke("sync", "--vault", str(vault))
    assert synced.exit_code == 0, synced.output
    assert "no Zotero data directory" not in synced.output
    status = json.loads(invoke("status", "--vault", str(vault), "--json").output)
    assert status["source"] == "sample" and status["last_sync"]["source"] == "sample"
    text = invoke("status", "--vault", str(vault)).output
    assert "Source  sample" in text and "from sample" in text


def test_a_flag_still_chooses_the_source(tmp_path: Path) -> None:
    vault = tmp_path / "demo-vault"
    invoke("demo", str(vault))
    result = invoke("sync", "--vault", str(vault), "--source", "sqlite", "--json")
    assert result.exit_code == 2
    error = json.loads(result.output)
    assert error["error"] == "no Zotero data directory given" and error["exit_code"] == 2
    assert "zob init" in error["hint"]  # no config file exists: none to edit


def test_hints_name_the_real_problem(tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    result = invoke("sync", "--vault", str(a_file))
    assert result.exit_code == 2
    assert "is a file, not a folder" in result.output and "--vault DIR" in result.output
    assert "config.toml" not in result.output  # no config file exists: none to edit


def test_json_errors_and_warnings_on_stdout_with_the_same_exit_codes(tmp_path: Path) -> None:
    result = invoke("sync", "--vault", str(tmp_path / "missing"), "--json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)
    assert "does not exist" in error["error"] and error["hint"] and error["exit_code"] == 2

    data_dir, vault = tmp_path / "Zotero", tmp_path / "vault"
    data_dir.mkdir()
    vault.mkdir()
    db = ZoteroDB.create(data_dir / "zotero.sqlite")
    db.add_item("journalArticle", title="A paper", date="2020")
    db.commit()
    (data_dir / "better-bibtex.sqlite").write_bytes(b"this is not a database" * 100)
    result = invoke("sync", "--vault", str(vault), "--zotero-dir", str(data_dir), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["created"] == 1
    assert any("Better BibTeX" in warning for warning in summary["warnings"]), summary
    assert "warning:" not in result.output  # no plain text beside the JSON


def test_zob_new_ranks_exact_titles_then_title_starts_and_matches_authors() -> None:
    items = SampleSource().read().items
    assert find_items(items, "deep")[0].item.citation_key == "goodfellow2016deep"
    assert best_match(find_items(items, "deep"), "deep") is None  # still several: a choice
    he = find_items(items, "he 2016")
    assert best_match(he, "he 2016").item.citation_key == "he2016deep"
    assert best_match(find_items(items, "kingma 2015"), "x").item.citation_key == "kingma2015adam"
    assert {m.item.citation_key for m in find_items(items, "hinton")} == {
        "krizhevsky2012imagenet", "srivastava2014dropout",
    }  # fmt: skip


def test_cli_new_first_picks_deep_learning(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    result = invoke("new", "deep", "--first", "--source", "sample", "--vault", str(vault))
    assert result.exit_code == 0, result.output
    assert "Papers/goodfellow2016deep.md" in result.output


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd user units: Linux")
def test_service_status_without_a_service_exits_8() -> None:
    result = invoke("service", "status", "--manual")
    assert result.exit_code == 8 and "Not installed" in result.output
    assert "8 `zob service status`" in invoke("service", "status", "--help").output
