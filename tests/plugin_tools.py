"""Node for the plugin's tests: find it (or skip, or fail under CI), `npm ci` once, and bundle
the plugin's own modules for Node so a test drives the very code the plugin runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "obsidian-plugin"
_installed: list[str] = []


def node_tools() -> tuple[str, str]:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        return node, npm
    missing = " and ".join(n for n, p in (("node", node), ("npm", npm)) if not p)
    if os.environ.get("CI"):
        pytest.fail(f"{missing} missing under CI: the plugin's tests must run in CI")
    pytest.skip(f"{missing} not installed: the Obsidian plugin's tests need Node.js ≥ 18")


def install_plugin_modules() -> str:
    """`npm ci` once per session: exactly the lockfile's packages (a registry is needed).
    Returns the `node` to run. Call it from a fixture."""
    node, npm = node_tools()
    if not _installed:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PLUGIN, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"npm ci failed:\n{done.stdout}\n{done.stderr}"
        _installed.append(node)
    return _installed[0]


def bundle_for_node(node: str, out: Path, *modules: str) -> dict[str, Path]:
    """`src/NAME.ts` → `out/NAME.js` (CommonJS, bundled as the plugin bundles them)."""
    script = (
        "require('esbuild').build({entryPoints: JSON.parse(process.argv[1]), outdir:"
        " process.argv[2], bundle: true, format: 'cjs', platform: 'node', target: 'node18',"
        " logLevel: 'warning'}).catch(() => process.exit(1))"
    )
    entries = [str(PLUGIN / "src" / f"{name}.ts") for name in modules]
    run = subprocess.run(
        [node, "-e", script, json.dumps(entries), str(out)],
        cwd=PLUGIN, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return {name: out / f"{name}.js" for name in modules}


def zob_wrapper(folder: Path) -> Path:
    """An executable `zob` that runs this tree's bridge (the project is not installed here)."""
    path = folder / "zob"
    path.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}"'
        ' -m bridge.cli "$@"\n'
    )
    path.chmod(0o755)
    return path
