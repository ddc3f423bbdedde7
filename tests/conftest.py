"""Shared test fixtures.

The real-world fixtures live outside the repo (`../shared/fixtures` or `$ZOB_FIXTURES`).
Where they are absent (a newcomer's clone) tests that need them skip with a reason; under
`CI=true` their absence is a failure, so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def fixtures_dir() -> Path | None:
    env = os.environ.get("ZOB_FIXTURES")
    candidates = [Path(env)] if env else []
    candidates.append(REPO.parent / "shared" / "fixtures")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return None


def require_fixture(relative: str) -> Path:
    """Path of a shared fixture; skip (or fail under CI=true) when it is missing."""
    base = fixtures_dir()
    path = base / relative if base else None
    if path is None or not path.exists():
        message = (
            f"shared fixture {relative!r} not found (set ZOB_FIXTURES or place ../shared/fixtures)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — required under CI=true")
        pytest.skip(message)
    return path


@pytest.fixture
def real_zotero_db(tmp_path: Path) -> Path:
    """A private copy of the real Zotero 7.0.30 database, in its own data directory."""
    source = require_fixture("zotero-7.0.30/zotero.sqlite")
    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    target = data_dir / "zotero.sqlite"
    shutil.copyfile(source, target)
    return target


@pytest.fixture
def obsidian_reference() -> Path:
    return require_fixture("obsidian-reference")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Never read or write the developer's real config, logs or HOME."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.delenv("ZOB_CONFIG", raising=False)
    monkeypatch.delenv("ZOTERO_API_KEY", raising=False)
