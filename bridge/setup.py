"""`zob init`: find Zotero, write a config file the user can read and edit."""

from __future__ import annotations

import json
from pathlib import Path

from bridge.config import default_config_path
from bridge.errors import ConfigError

CANDIDATE_ZOTERO_DIRS = ("~/Zotero", "~/Documents/Zotero", "~/snap/zotero-snap/common/Zotero")


def detect_zotero_dir() -> Path | None:
    """Zotero's default data directory on every OS is ~/Zotero; check a few known others."""
    for candidate in CANDIDATE_ZOTERO_DIRS:
        path = Path(candidate).expanduser()
        if (path / "zotero.sqlite").is_file():
            return path
    return None


def _toml_string(value: str) -> str:
    # TOML basic strings accept JSON's escapes (\" \\ \n \uXXXX).
    return json.dumps(value, ensure_ascii=False)


def write_config(
    *, vault: Path, zotero_dir: Path | None, language: str, force: bool
) -> tuple[Path, Path | None]:
    """Write the config; returns its path and the Zotero dir that was detected (if any)."""
    vault = vault.expanduser().resolve()
    if not vault.is_dir():
        raise ConfigError(
            f"vault folder {vault} does not exist",
            hint="create it (or open it once in Obsidian) and run `zob init` again",
        )
    detected = None
    if zotero_dir is None:
        detected = zotero_dir = detect_zotero_dir()
    if zotero_dir is None:
        raise ConfigError(
            "Zotero's data directory was not found in ~/Zotero",
            hint="pass --zotero-dir (Zotero → Settings → Advanced → Files and "
            "Folders → Data Directory Location)",
        )
    zotero_dir = zotero_dir.expanduser().resolve()
    path = default_config_path()
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists", hint="pass --force to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "# zotero-obsidian-bridge — every key is documented in config.example.toml\n"
        f"vault = {_toml_string(str(vault))}\n"
        f"language = {_toml_string(language)}\n\n"
        "[source]\n"
        'type = "sqlite"\n'
        f"zotero_dir = {_toml_string(str(zotero_dir))}\n"
    )
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path, detected
