"""`zob plugin install|status|uninstall`: the bundled Obsidian plugin in a vault.

The plugin's built files (`main.js`, `manifest.json`) ship inside this package
(`bridge/plugin_bundle/`, built from `obsidian-plugin/` — a test rebuilds them and fails on a
difference), so installing needs no Node. They go to
`<vault>/.obsidian/plugins/zotero-obsidian-bridge/`, written atomically through `Vault` (no
link followed); only those two files are ever written or removed: the plugin's settings
(`data.json`) and anything else in the folder stay. The plugin is never enabled behind the
user's back: the command says how to enable it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from bridge.errors import BridgeError, ConfigError
from bridge.vault.fs import Vault
from bridge.vault.guard import check_vault_location

PLUGIN_ID = "zotero-obsidian-bridge"
FILES = ("main.js", "manifest.json")
PLUGIN_DIR = f".obsidian/plugins/{PLUGIN_ID}"
ENABLE_HINT = (
    "In Obsidian: Settings → Community plugins → turn off Restricted mode if it is on → "
    "enable “Zotero Bridge” (reload Obsidian or the plugin list if it is not shown yet)."
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)


@dataclass
class PluginReport:
    lines: list[str] = field(default_factory=list)
    ok: bool = True


def bundled(name: str) -> bytes:
    return (resources.files("bridge") / "plugin_bundle" / name).read_bytes()


def bundled_version() -> str:
    return str(json.loads(bundled("manifest.json"))["version"])


def _manifest(vault: Path) -> dict | None:
    path = vault / PLUGIN_DIR / "manifest.json"
    if path.is_symlink() or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def enabled(vault: Path) -> bool:
    """Whether Obsidian lists the plugin as enabled (`community-plugins.json`)."""
    path = vault / ".obsidian" / "community-plugins.json"
    try:
        # a plain file only: reading a FIFO planted there would block the command for ever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return False
            ids = json.loads(file.read(1 << 20))
    except (OSError, ValueError):
        return False
    return isinstance(ids, list) and PLUGIN_ID in ids


def _vault_folder(vault: Path | None, create: bool) -> Path:
    if vault is None:
        raise ConfigError("no vault given", "pass --vault PATH, or set `vault` with `zob init`")
    vault = vault.expanduser()
    check_vault_location(vault, None)
    if (vault / ".obsidian").is_dir():
        return vault.resolve()
    if not create:
        raise ConfigError(
            f"{vault} is not an Obsidian vault (it has no .obsidian folder)",
            "open it as a vault in Obsidian once, or pass --create to make it one",
        )
    try:
        (vault / ".obsidian").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create {vault}/.obsidian: {exc.strerror or exc}") from exc
    return vault.resolve()


def install(vault: Path | None, *, create: bool = False) -> PluginReport:
    """Copy the plugin's files into the vault, replacing an older copy in place."""
    root = _vault_folder(vault, create)
    before = _manifest(root)
    writer = Vault(root)
    try:
        for name in FILES:
            writer.write_file_bytes(f"{PLUGIN_DIR}/{name}", bundled(name))
        writer.sync_dirs()
    finally:
        writer.close()
    version = bundled_version()
    old = before.get("version") if before else None
    verb = "Installed" if before is None else "Reinstalled" if old == version else "Updated"
    was = f" (was {old})" if before is not None and old != version else ""
    report = PluginReport(
        [f"{verb} the Zotero Bridge plugin {version}{was} in {root / PLUGIN_DIR}"]
    )
    if enabled(root):
        report.lines.append("It is enabled; reload Obsidian (or the plugin) to run this version.")
    else:
        report.lines.append(ENABLE_HINT)
    report.lines.append(
        "Leave `zob watch` running for instant answers; without it the plugin reads the item "
        "index of the last sync and runs `zob` itself."
    )
    return report


def status(vault: Path | None) -> PluginReport:
    root = _vault_folder(vault, create=False)
    found = _manifest(root)
    if found is None:
        return PluginReport([f"Not installed in {root} — run `zob plugin install`."], ok=False)
    version = bundled_version()
    same = all(
        (root / PLUGIN_DIR / name).is_file()
        and not (root / PLUGIN_DIR / name).is_symlink()
        and (root / PLUGIN_DIR / name).read_bytes() == bundled(name)
        for name in FILES
    )
    lines = [f"Installed: {found.get('version')} in {root / PLUGIN_DIR}"]
    lines.append(
        "Up to date with this zob."
        if same
        else f"Differs from this zob's plugin {version}: run `zob plugin install` to update it."
    )
    lines.append("Enabled in Obsidian." if enabled(root) else f"Not enabled. {ENABLE_HINT}")
    return PluginReport(lines, ok=same)


def _open_plugin_dir(root: Path) -> tuple[int, int] | None:
    """The plugin folder and its parent (`.obsidian/plugins`), reached one component at a
    time without following a link: (parent, folder) descriptors, both the caller's to close."""
    fd = os.open(root, os.O_RDONLY | _DIRECTORY)
    parent: int | None = None
    try:
        for part in PLUGIN_DIR.split("/"):
            try:
                nxt = os.open(part, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=fd)
            except FileNotFoundError:
                return None
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise BridgeError(
                        f"{root / PLUGIN_DIR}: {part} is a link or not a folder; nothing removed",
                        "remove the plugin folder by hand",
                    ) from None
                raise
            if parent is not None:
                os.close(parent)
            parent, fd = fd, nxt
        assert parent is not None
        found, parent = (parent, os.dup(fd)), None
        return found
    finally:
        os.close(fd)
        if parent is not None:
            os.close(parent)


def uninstall(vault: Path | None) -> PluginReport:
    """Remove the plugin's own two files (and its folder when nothing else is left)."""
    root = _vault_folder(vault, create=False)
    found = _open_plugin_dir(root)
    if found is None:
        return PluginReport([f"Not installed in {root}; nothing to remove."])
    parent, fd = found
    removed: list[str] = []
    try:
        for name in FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=fd)
                removed.append(name)
        left = sorted(os.listdir(fd))
        if not left:  # through the folder checked above, not its path: no link swapped in
            with contextlib.suppress(OSError):
                os.rmdir(PLUGIN_ID, dir_fd=parent)
    finally:
        os.close(fd)
        os.close(parent)
    lines = [f"Removed {', '.join(removed) or 'nothing'} from {root / PLUGIN_DIR}"]
    if left:
        lines.append(f"Kept what is not the plugin's code: {', '.join(left)} (your settings).")
    if enabled(root):
        lines.append("Obsidian still lists it as enabled; it will say the plugin is missing.")
    return PluginReport(lines)
