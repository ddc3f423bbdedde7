"""`zob plugin install|status|uninstall`: only the plugin's own files, never through a link."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.plugin_install import PLUGIN_DIR, bundled
from tests.helpers import snapshot_tree


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_install_upgrade_status_uninstall(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / "note.md").write_text("mine")
    code, out = run("plugin", "install", "--vault", str(vault))
    assert code == 0 and "Installed" in out and "Community plugins" in out
    folder = vault / PLUGIN_DIR
    assert (folder / "main.js").read_bytes() == bundled("main.js")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["id"] == "zotero-obsidian-bridge" and manifest["isDesktopOnly"] is True
    # an older copy with the user's settings: upgraded in place, settings kept
    (folder / "main.js").write_text("old code")
    (folder / "manifest.json").write_text(json.dumps({**manifest, "version": "0.0.1"}))
    (folder / "data.json").write_text('{"citationFormat": "pandoc"}')
    code, out = run("plugin", "status", "--vault", str(vault))
    assert code == 1 and "0.0.1" in out and "zob plugin install" in out
    code, out = run("plugin", "install", "--vault", str(vault))
    assert code == 0 and "Updated" in out and "(was 0.0.1)" in out
    assert (folder / "main.js").read_bytes() == bundled("main.js")
    assert (folder / "data.json").read_text() == '{"citationFormat": "pandoc"}'
    (vault / ".obsidian" / "community-plugins.json").write_text('["zotero-obsidian-bridge"]')
    code, out = run("plugin", "status", "--vault", str(vault))
    assert code == 0 and "Up to date" in out and "Enabled" in out
    code, out = run("plugin", "uninstall", "--vault", str(vault))
    assert code == 0 and "data.json" in out
    assert sorted(p.name for p in folder.iterdir()) == ["data.json"]
    assert (vault / "note.md").read_text() == "mine"


def test_a_folder_that_is_no_vault_is_refused_unless_create(tmp_path: Path) -> None:
    folder = tmp_path / "not-a-vault"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    before = snapshot_tree(folder)
    code, out = run("plugin", "install", "--vault", str(folder))
    assert code == 2 and "not an Obsidian vault" in out and "--create" in out
    assert snapshot_tree(folder) == before
    code, out = run("plugin", "install", "--vault", str(folder), "--create")
    assert code == 0 and (folder / PLUGIN_DIR / "main.js").is_file()


def test_a_link_in_place_of_the_plugin_folder_is_not_followed(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / ".obsidian" / "plugins").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "main.js").write_text("precious")
    (vault / PLUGIN_DIR).symlink_to(elsewhere)
    code, out = run("plugin", "install", "--vault", str(vault))
    assert code != 0
    code, out = run("plugin", "uninstall", "--vault", str(vault))
    assert code != 0 and "nothing removed" in out
    assert (elsewhere / "main.js").read_text() == "precious"


def test_uninstall_s_last_step_does_not_follow_a_link_swapped_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The folders are checked one by one without following a link; the empty plugin folder
    must then be removed through what was checked, not by its path again: a link put in
    place of `.obsidian/plugins` meanwhile would make it remove a folder elsewhere."""
    vault = tmp_path / "vault"
    (vault / ".obsidian").mkdir(parents=True)
    assert run("plugin", "install", "--vault", str(vault))[0] == 0
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "zotero-obsidian-bridge").mkdir(parents=True)
    real_listdir = os.listdir

    def swap_then_list(target: object) -> list[str]:
        found = real_listdir(target)  # type: ignore[arg-type]
        plugins = vault / ".obsidian" / "plugins"
        if not plugins.is_symlink():
            plugins.rename(tmp_path / "moved-plugins")
            plugins.symlink_to(elsewhere)
        return found

    monkeypatch.setattr(os, "listdir", swap_then_list)
    code, out = run("plugin", "uninstall", "--vault", str(vault))
    assert code == 0, out
    assert (elsewhere / "zotero-obsidian-bridge").is_dir(), "a folder outside the vault went"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_obsidian_s_plugin_list_does_not_hang_the_command(tmp_path: Path) -> None:
    """`community-plugins.json` is read to say whether the plugin is enabled: a FIFO there
    (or a device) blocked `zob plugin install|status|uninstall` for ever."""
    import subprocess
    import sys

    vault = tmp_path / "vault"
    (vault / ".obsidian").mkdir(parents=True)
    os.mkfifo(vault / ".obsidian" / "community-plugins.json")
    root = Path(__file__).resolve().parents[1]
    for command in ("install", "status", "uninstall"):
        try:
            done = subprocess.run(
                [sys.executable, "-m", "bridge.cli", "plugin", command, "--vault", str(vault)],
                cwd=root, capture_output=True, text=True, timeout=30,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.fail(f"zob plugin {command} hangs on a FIFO")
        assert done.returncode == 0 and "Not enabled" not in done.stderr, done.stderr[-800:]
