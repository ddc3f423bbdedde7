"""End to end with real processes: `zob plugin install`, `zob watch` on a library built in
Zotero's tables, and the plugin's own client module (bundled from `obsidian-plugin/src` as the
plugin bundles it) run under Node — listing items, creating a note, citing, marking a pass,
syncing — with the daemon and without it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from zotero_db import ZoteroDB

from bridge.api_server import read_api_file
from bridge.plugin_install import PLUGIN_DIR, bundled
from tests.helpers import snapshot_tree, with_the_plugin
from tests.plugin_tools import ROOT, bundle_for_node, install_plugin_modules, zob_wrapper

pytestmark = pytest.mark.slow
TIMEOUT = 60.0

DRIVER = r"""
const mods = JSON.parse(process.env.ZOB_MODULES);
const { BridgeClient } = require(mods.client);
const { citation } = require(mods.citation);
const { markPass } = require(mods.frontmatter);
const [vault, step, arg] = process.argv.slice(2);
(async () => {
  const client = new BridgeClient(vault, process.env.ZOB);
  const items = async () => (await client.items()).items;
  const steps = {
    endpoint: () => client.endpoint(),
    items: async () => client.items(),
    create: () => client.createNote(arg),
    cite: async () => citation((await items()).find((i) => i.key === arg), "wikilink"),
    pass: async () => { const fm = JSON.parse(arg); markPass(fm, 2); return fm; },
    sync: () => client.sync(),
    status: () => client.status(arg === "full"),
    lineage: () => client.lineage(arg),
  };
  process.stdout.write(JSON.stringify(await steps[step]()));
})().catch((e) => { process.stderr.write(String((e && e.stack) || e)); process.exit(1); });
"""


class Plugin:
    """The plugin's client, run under Node against one vault."""

    def __init__(self, node: str, tmp: Path, vault: Path) -> None:
        self.node, self.vault = node, vault
        modules = bundle_for_node(node, tmp / "bundled", "client", "citation", "frontmatter")
        self.driver = tmp / "driver.cjs"
        self.driver.write_text(DRIVER)
        self.env = {
            "ZOB_MODULES": json.dumps({k: str(v) for k, v in modules.items()}),
            "ZOB": str(zob_wrapper(tmp)),
            "PATH": "/usr/bin:/bin",
        }

    def __call__(self, step: str, arg: str = "") -> Any:
        run = subprocess.run(
            [self.node, str(self.driver), str(self.vault), step, arg],
            capture_output=True, text=True, timeout=300, env={**os.environ, **self.env},
        )  # fmt: skip
        assert run.returncode == 0, f"{step}: {run.stderr}"
        return json.loads(run.stdout)


@pytest.fixture(scope="module")
def node() -> str:
    return install_plugin_modules()


def build_library(data_dir: Path) -> dict[str, str]:
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite", schema=123, journal="delete") as db:
        db.set_time("2025-01-01 09:00:00")
        return {
            "he": db.add_item(
                "conferencePaper", title="Deep Residual Learning for Image Recognition",
                date="2016", creators=[("author", "Kaiming", "He"), ("author", "X", "Zhang"),
                                       ("author", "S", "Ren")],
                citation_key="he2016deep", tags=["reading", "proposes:ResNet"],
            ),
            "vaswani": db.add_item(
                "conferencePaper", title="Attention Is All You Need", date="2017",
                creators=[("author", "Ashish", "Vaswani"), ("author", "Noam", "Shazeer")],
                citation_key="vaswani2017attention", proceedingsTitle="NeurIPS",
            ),
        }  # fmt: skip


def write_config(tmp: Path, vault: Path, data_dir: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(
        f'vault = "{vault}"\n[source]\ntype = "sqlite"\nzotero_dir = "{data_dir}"\n'
        '[filters]\ntags = ["reading"]\n[workflow]\nreading_queue = ""\n'
        "[watch]\ndebounce_seconds = 0.2\n"
    )
    return config


def zob(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args], cwd=ROOT, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def wait_for(what: str, check, timeout: float = TIMEOUT) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    vault = tmp_path / "vault"
    with_the_plugin(vault)  # the plugin runs from inside the vault it is installed in
    (vault / "Drafts").mkdir()
    (vault / "Drafts" / "essay.md").write_text("# Essay\n\nResidual links help, as shown in ")
    keys = build_library(tmp_path / "Zotero")
    return vault, write_config(tmp_path, vault, tmp_path / "Zotero"), keys


@pytest.fixture
def watch(setup, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, Path]]:
    vault, config, _ = setup
    log = tmp_path / "watch.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "watch", "--config", str(config), "-v"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield process, log
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def front_matter(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8").split("---\n")[1])


def write_properties(path: Path, changed: dict[str, Any]) -> None:
    """What Obsidian's processFrontMatter does with the plugin's change: the properties
    rewritten in place (Obsidian saves with truncate + write), the body kept."""
    text = path.read_text(encoding="utf-8")
    _, head, body = text.split("---\n", 2)
    lines = head.splitlines()
    for key, value in changed.items():
        lines = [f"{key}: {value}" if line.startswith(f"{key}:") else line for line in lines]
    with open(path, "r+", encoding="utf-8") as f:
        f.truncate(0)
        f.write("---\n" + "\n".join(lines) + "\n---\n" + body)


def test_from_install_to_a_cited_paper_with_the_daemon(node: str, setup, watch, tmp_path) -> None:
    vault, config, keys = setup
    done = zob("plugin", "install", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert (vault / PLUGIN_DIR / "main.js").read_bytes() == bundled("main.js")
    process, log = watch
    wait_for("the daemon's API", lambda: read_api_file(vault) is not None)
    plugin = Plugin(node, tmp_path, vault)
    wait_for("the first sync", lambda: plugin("status")["lastSync"] is not None)
    assert plugin("status")["running"] is True and plugin("status")["via"] == "api"
    before = snapshot_tree(vault)

    listed = {row["key"]: row for row in plugin("items")["items"]}
    assert set(listed) == {keys["he"], keys["vaswani"]}
    assert listed[keys["he"]]["note"] and listed[keys["vaswani"]]["note"] is None

    made = plugin("create", keys["vaswani"])
    note = vault / made["path"]
    assert made["via"] == "api" and note.is_file()
    text = note.read_text(encoding="utf-8")
    assert f"zotero_key: {keys['vaswani']}" in text and "## Pass 1" in text
    assert "%% zob:begin" in text
    row = next(r for r in plugin("items")["items"] if r["key"] == keys["vaswani"])
    assert row["note"] == made["path"]

    cited = plugin("cite", keys["vaswani"])
    assert cited == f"[[{note.stem}|Vaswani & Shazeer 2017]]"
    essay = vault / "Drafts" / "essay.md"
    essay.write_text(essay.read_text() + cited + ".\n")  # the editor's insert, saved

    fm = front_matter(note)
    changed = plugin("pass", json.dumps(fm))
    assert changed["pass"] == 2 and changed["status"] == "reading"
    write_properties(note, {k: v for k, v in changed.items() if fm.get(k) != v})
    time.sleep(2.5)  # past the settle time: the sync merges the edit instead of waiting

    assert plugin("sync")["via"] == "api"
    wait_for(
        "the pass in the index",
        lambda: (
            next(r for r in plugin("items")["items"] if r["key"] == keys["vaswani"])["pass"] == 2
        ),
    )
    assert front_matter(note)["pass"] == 2 and front_matter(note)["status"] == "reading"
    assert plugin("lineage", made["path"])["kind"] == "paper"

    after = snapshot_tree(vault)
    changed_paths = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    changed_paths = {p for p in changed_paths if not p.startswith(".zotero-bridge/")}
    assert changed_paths == {made["path"], "Drafts/essay.md"}

    token = read_api_file(vault)["token"]
    process.send_signal(signal.SIGTERM)
    assert process.wait(TIMEOUT) == 0
    assert read_api_file(vault) is None, "api.json goes with the daemon"
    output = log.read_text(errors="replace")
    assert "local API: POST /notes → 200" in output  # every request is logged (-v) …
    assert token not in output and token[:8] not in output  # … never the token


def test_without_the_daemon_the_plugin_reads_the_index_and_runs_zob(
    node: str, setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault, config, keys = setup
    plugin = Plugin(node, tmp_path, vault)
    assert plugin("endpoint") is None
    # never synced: the first list runs `zob sync` (with --vault; the config is the default)
    monkeypatch.setenv("ZOB_CONFIG", str(config))
    listed = {row["key"]: row for row in plugin("items")["items"]}
    assert set(listed) == {keys["he"], keys["vaswani"]}
    assert listed[keys["he"]]["note"] and listed[keys["vaswani"]]["note"] is None
    made = plugin("create", keys["vaswani"])
    assert made["via"] == "cli" and (vault / made["path"]).is_file()
    assert plugin("status")["via"] == "index"  # the status bar: no process started
    full = plugin("status", "full")  # the conflicts list: `zob status`
    assert full["via"] == "cli" and full["running"] is False and full["lastSync"]
    assert plugin("sync")["via"] == "cli"
    row = next(r for r in plugin("items")["items"] if r["key"] == keys["vaswani"])
    assert row["note"] == made["path"]
