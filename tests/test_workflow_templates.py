"""Templates a user can own: `zob templates export`, `templates_dir`, errors that name the file
and line, the plain core-Templates notes; and the workflow's config keys."""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.config import config_from_dict
from bridge.errors import ConfigError
from bridge.sync import sync
from bridge.vault.notefile import find_regions, parse_note
from bridge.workflow.templates_export import bundled_templates
from tests.helpers import ModelSource, make_item, vault_config

REPO = Path(__file__).resolve().parent.parent
BUNDLED = REPO / "obsidian_templates"


def test_export_copies_every_template_and_keeps_existing_files(tmp_path: Path) -> None:
    runner = CliRunner()
    dest = tmp_path / "my templates"
    result = runner.invoke(main, ["templates", "export", str(dest)])
    assert result.exit_code == 0, result.output
    for relative in ("paper.md.j2", "method.md.j2", "zh/paper.md.j2", "reading-queue.md.j2",
                     "weekly-report.md.j2", "core/Paper.md", "core/Method-zh.md"):  # fmt: skip
        assert (dest / relative).read_bytes() == (BUNDLED / relative).read_bytes()
    assert not list(dest.rglob("*.py"))
    assert "templates_dir" in result.output
    (dest / "paper.md.j2").write_text("# mine\n")
    again = runner.invoke(main, ["templates", "export", str(dest)])
    assert again.exit_code == 0 and "kept" in again.output
    assert (dest / "paper.md.j2").read_text() == "# mine\n"
    forced = runner.invoke(main, ["templates", "export", str(dest), "--force"])
    assert (
        forced.exit_code == 0
        and (dest / "paper.md.j2").read_bytes() == (BUNDLED / "paper.md.j2").read_bytes()
    )


def test_templates_dir_uses_the_exported_copy(tmp_path: Path) -> None:
    dest = tmp_path / "tpl"
    CliRunner().invoke(main, ["templates", "export", str(dest)])
    paper = dest / "paper.md.j2"
    paper.write_text(
        paper.read_text().replace("## Pass 1", "## My own pass 1 heading\n\n## Pass 1")
    )
    vault = tmp_path / "vault"
    vault.mkdir()
    sync(
        vault_config(vault, templates_dir=dest), source=ModelSource([make_item(citation_key="x1")])
    )
    assert "## My own pass 1 heading" in (vault / "Papers" / "x1.md").read_text()


@pytest.mark.parametrize(
    ("template", "line", "message"),
    [
        ("# {{ title }}\n\nfine\n{{ no_such_thing.attr }}\n", 4, "is undefined"),
        ("# {{ title }}\n{% if %}\n", 2, "Expected an expression"),
        ("# {{ title }}\n\n\n\n{{ region('abstract') | nosuchfilter }}\n", 5, "nosuchfilter"),
    ],
)
def test_a_template_error_names_the_file_and_line(
    tmp_path: Path, template: str, line: int, message: str
) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "paper.md.j2").write_text(template)
    vault = tmp_path / "vault"
    vault.mkdir()
    with pytest.raises(ConfigError) as caught:
        sync(vault_config(vault, templates_dir=tpl), source=ModelSource([make_item()]))
    text = str(caught.value)
    assert f"{tpl / 'paper.md.j2'}, line {line}" in text and message in text


def test_cli_template_error_exits_2(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "method.md.j2").write_text("# {{ name }}\n{{ nope }}\n")
    config = tmp_path / "c.toml"
    config.write_text(f'templates_dir = "{tpl}"\n')
    vault = tmp_path / "v"
    result = CliRunner().invoke(main, ["demo", str(vault)])
    assert result.exit_code == 0
    result = CliRunner().invoke(
        main, ["sync", "--config", str(config), "--vault", str(vault), "--source", "sample"]
    )
    assert result.exit_code == 2
    assert "method.md.j2, line 2: 'nope' is undefined" in result.output


# --- Obsidian core-Templates versions -------------------------------------------------------


def headings(text: str) -> list[str]:
    return [h for h in re.findall(r"(?m)^(#{2,3} .+)$", text) if "{" not in h]


@pytest.mark.parametrize(
    ("core", "jinja"),
    [
        ("core/Paper.md", "paper.md.j2"),
        ("core/Paper-zh.md", "zh/paper.md.j2"),
        ("core/Method.md", "method.md.j2"),
        ("core/Method-zh.md", "zh/method.md.j2"),
        ("core/Source.md", "source.md.j2"),
        ("core/Source-zh.md", "zh/source.md.j2"),
    ],
)
def test_core_templates_match_the_bridge_templates(core: str, jinja: str) -> None:
    text = (BUNDLED / core).read_text()
    assert "{{title}}" in text and "{{date}}" in text
    assert headings(text) == headings((BUNDLED / jinja).read_text())
    filled = text.replace("{{title}}", "My paper").replace("{{date}}", "2024-01-08")
    note = parse_note(core, filled)
    if "Paper" in core or "Source" in core:
        assert note.properties["pass"] == 0 and note.properties["status"] == "to-read"
    else:
        assert note.properties["type"] == "method"
    regions = find_regions(core, note.body)  # valid markers, adoptable by a sync
    assert set(regions) >= ({"abstract", "annotations", "lineage"} if "Method" not in core
                            else {"proposed-in", "extends", "extended-by", "lineage"})  # fmt: skip


def test_package_data_globs_ship_every_template() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = data["tool"]["setuptools"]["package-data"]["obsidian_templates"]
    for relative, _ in bundled_templates():
        assert any(fnmatch.fnmatch(relative, g) and relative.count("/") == g.count("/")
                   for g in globs), relative  # fmt: skip


# --- config ----------------------------------------------------------------------------------


def test_workflow_config_keys() -> None:
    config = config_from_dict({
        "filters": {"collections": ["Vision"], "tags": ["to-read"]},
        "workflow": {"reading_queue": "Queue/Reading.md", "reports_folder": "Weekly"},
        "writeback": {"enabled": True, "library_id": 42, "library_type": "group"},
    })  # fmt: skip
    assert config.filter_collections == ("Vision",) and config.filter_tags == ("to-read",)
    assert config.reading_queue == "Queue/Reading.md" and config.reports_folder == "Weekly"
    assert config.writeback and config.writeback_library_id == "42"
    with pytest.raises(ConfigError) as caught:
        config_from_dict({
            "filters": {"collections": "Vision", "tag": ["x"]},
            "workflow": {"reading_queue": "../outside.md"},
            "writeback": {"enabled": "yes", "library_type": "team"},
        })  # fmt: skip
    problems = caught.value.problems
    assert any("filters.collections must be a list" in p for p in problems)
    assert any("did you mean 'filters.tags'" in p for p in problems)
    assert any("workflow.reading_queue must be a .md path" in p for p in problems)
    assert any("writeback.enabled must be a bool" in p for p in problems)
    assert any("writeback.library_type" in p for p in problems)
