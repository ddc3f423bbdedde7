"""`zob init`: find Zotero, write a config file the user can read and edit."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path

from bridge.config import default_config_path
from bridge.errors import ConfigError
from bridge.vault.guard import check_vault_location

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
    check_vault_location(vault, zotero_dir)
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
    check_vault_location(vault, zotero_dir)
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
    _write_new(path, text.encode("utf-8"))
    return path, detected


def _write_new(path: Path, data: bytes) -> None:
    """Replace `path` with `data` through a fresh temp file beside it: created with
    `O_EXCL | O_NOFOLLOW` under a random name, so a link planted where the temp file goes
    cannot send the config's bytes elsewhere. `os.replace` swaps a link at `path` itself
    for the new file; it never writes through it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, flags | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
