"""The command line: every command teaches with --help, usage errors exit 2 without a
traceback, and the demo works through the same pipeline as a sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge import __version__
from bridge.cli import main

COMMANDS = sorted(main.commands)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real console entry point in a subprocess, as a user would run it."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
    )


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output.splitlines()) > 5
    assert "Exit codes" in result.output or command in ("init",)


@pytest.mark.parametrize(
    "args",
    [
        ["sync", "--no-such-flag"],
        ["sync", "--source", "nowhere"],
        ["nonexistent-command"],
        ["demo"],
        ["sync", "--vault", "/definitely/not/here", "--source", "sample"],
        ["sync", "--source", "sqlite"],
    ],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], tmp_path: Path) -> None:
    result = run(
        *args, env={"ZOB_CONFIG": str(tmp_path / "none.toml")} if args[0] != "sync" else {}
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_demo_then_rerun_is_a_sync(tmp_path: Path) -> None:
    vault = tmp_path / "demo-vault"
    first = run("demo", str(vault), "--json")
    assert first.returncode == 0, first.stderr
    counts = json.loads(first.stdout)
    assert counts["created"] >= 21 and counts["skipped"] == 0 and counts["errors"] == []
    papers = sorted(p.name for p in (vault / "Papers").iterdir())
    # 19 papers and books, a web page and a standalone PDF
    assert "he2016deep.md" in papers and len(papers) == 21
    second = run("demo", str(vault), "--json")
    again = json.loads(second.stdout)
    assert again["created"] == 0 and again["updated"] == 0 and again["unchanged"] >= 21


def test_demo_chinese_template(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", str(tmp_path / "v"), "--language", "zh"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "v" / "Papers" / "li2012tongji.md").read_text()
    assert "第一遍" in text and "第二遍" in text and "第三遍" in text


def test_sync_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["sync", "--vault", str(tmp_path), "--source", "sample", "--dry-run"]
    )
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output and "create" in result.output
    assert list(tmp_path.iterdir()) == [] or [p.name for p in tmp_path.iterdir()] == [
        ".zotero-bridge"
    ]
    assert not (tmp_path / "Papers").exists()


def test_init_then_sync_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    zotero = tmp_path / "Zotero"
    zotero.mkdir()
    (zotero / "zotero.sqlite").write_bytes(b"")
    config_file = tmp_path / "cfg" / "config.toml"
    monkeypatch.setenv("ZOB_CONFIG", str(config_file))
    runner = CliRunner()
    result = runner.invoke(main, ["init", "--vault", str(vault), "--zotero-dir", str(zotero)])
    assert result.exit_code == 0, result.output
    assert config_file.exists() and str(vault) in config_file.read_text()
    again = runner.invoke(main, ["init", "--vault", str(vault), "--zotero-dir", str(zotero)])
    assert again.exit_code == 2 and "--force" in again.output
    synced = runner.invoke(main, ["sync", "--source", "sample", "--json"])
    assert synced.exit_code == 0, synced.output
    status = runner.invoke(main, ["status", "--json"])
    info = json.loads(status.output)
    assert info["notes"]["papers"] == 21 and info["notes"]["methods"] == 17
    assert info["last_sync"]["created"] == 21 + 17
    human = runner.invoke(main, ["status"])
    assert "21 papers" in human.output and "No open conflicts" in human.output


def test_config_errors_list_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('vault = 3\nlanguge = "en"\n[source]\ntype = "ftp"\n')
    result = run("sync", "--config", str(config))
    assert result.returncode == 2
    assert "vault must be a str" in result.stderr
    assert "did you mean 'language'" in result.stderr
    assert "source must be one of" in result.stderr
    assert "Traceback" not in result.stderr


def test_example_config_is_valid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.config import load_config

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Obsidian" / "Research").mkdir(parents=True)
    example = Path(__file__).resolve().parent.parent / "config.example.toml"
    config = load_config(example)
    assert config.vault == tmp_path / "Obsidian" / "Research"
    assert config.color_sections["#ff6666"].startswith("Unclear")


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [c for c in COMMANDS if f"`zob {c}" not in readme]
    assert missing == []


def test_readme_starts_with_the_two_newcomer_commands() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = readme.split("```sh\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(block) == 2
    assert "zob demo" in block[0] and "pip install ." in block[0]
    assert "pytest" in block[1] and "'.[test]'" in block[1]
    ci = (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
    assert "pip install -q '.[test]'" in ci and "pytest" in ci
