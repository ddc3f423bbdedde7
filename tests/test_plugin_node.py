"""The Obsidian plugin's own suite, from pytest: `npm ci` from the lockfile, then its unit tests
under Node's test runner, and the shipped bundle rebuilt from the sources must be byte for
byte the one in `bridge/plugin_bundle/`.

Without `node`/`npm` these skip with a reason — except under `CI=true`, where that fails.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

import bridge
from bridge.plugin_install import FILES
from tests.plugin_tools import PLUGIN, ROOT, install_plugin_modules

BUNDLE = ROOT / "bridge" / "plugin_bundle"


@pytest.fixture(scope="session")
def plugin_modules() -> str:
    return install_plugin_modules()


def test_plugin_unit_tests_pass(plugin_modules: str) -> None:
    run = subprocess.run(
        [plugin_modules, "scripts/test.mjs"], cwd=PLUGIN, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, f"plugin tests failed:\n{run.stdout[-6000:]}\n{run.stderr}"
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.M)
    assert passed and int(passed.group(1)) >= 20, run.stdout[-2000:]
    assert re.search(r"^# fail 0$", run.stdout, re.M)


def test_the_shipped_bundle_is_what_the_sources_build(plugin_modules: str, tmp_path: Path) -> None:
    run = subprocess.run(
        [plugin_modules, "scripts/build.mjs", "--outdir", str(tmp_path)],
        cwd=PLUGIN, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (BUNDLE / name).read_bytes(), (
            f"bridge/plugin_bundle/{name} is not what obsidian-plugin/ builds: run "
            "`cd obsidian-plugin && npm run build` and commit the result"
        )


def test_versions_and_manifest_agree() -> None:
    manifest = json.loads((PLUGIN / "manifest.json").read_text())
    package = json.loads((PLUGIN / "package.json").read_text())
    assert manifest["version"] == package["version"] == bridge.__version__
    assert manifest["id"] == "zotero-obsidian-bridge" and manifest["isDesktopOnly"] is True
    lock = json.loads((PLUGIN / "package-lock.json").read_text())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]


def test_the_readme_lists_every_plugin_command() -> None:
    names = re.findall(r'name: "(Zotero: [^"]+)"', (PLUGIN / "src" / "commands.ts").read_text())
    assert len(names) >= 10
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## In Obsidian\n", 1)[1].split("\n## ", 1)[0]
    for name in names:
        assert f"**{name}**" in section, f"README's In Obsidian section misses {name!r}"
