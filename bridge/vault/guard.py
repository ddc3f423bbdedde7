"""Where a vault may not be, and the folder inside one that the bridge leaves alone.

A vault is a folder the bridge fills with notes and walks for them. `/`, the home directory
and Zotero's data directory (or anything inside it, `storage/` included) are refused before
anything is written — not even `.zotero-bridge/`. A vault that *contains* Zotero's data
directory is fine, but the bridge never writes into that folder and never walks it: walks
skip the folders `zotero_folders_in_vault` names, and any folder that holds a
`zotero.sqlite` (`is_zotero_data_dir`), so an unconfigured copy is left alone too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path, PurePosixPath

from bridge.errors import EXIT_USAGE, BridgeError

ZOTERO_DB_NAME = "zotero.sqlite"


class VaultLocationError(BridgeError):
    """The vault folder is one the bridge must not fill (root, home, Zotero's data dir)."""

    exit_code = EXIT_USAGE

    def __init__(self, vault: Path, problem: str, hint: str | None = None) -> None:
        self.vault = vault
        super().__init__(
            f"the vault {vault} {problem}: refused, nothing was written",
            hint
            or "point --vault (or `vault` in the config) at the folder Obsidian opens as your "
            "vault — a folder of its own (Obsidian → Open another vault shows its path)",
        )


def zotero_data_dir(zotero_dir: Path | None) -> Path | None:
    """Zotero's data directory, resolved: the configured folder, or the folder of a
    configured `zotero.sqlite`."""
    if zotero_dir is None:
        return None
    path = zotero_dir.expanduser().resolve()
    return path.parent if path.name == ZOTERO_DB_NAME or path.is_file() else path


def check_vault_location(vault: Path, zotero_dir: Path | None) -> None:
    """Raise `VaultLocationError` when `vault` is `/`, the home directory, Zotero's data
    directory or inside it. Reads only (a few stats); `vault` need not exist yet."""
    real = vault.expanduser().resolve()
    if real == Path(real.anchor):
        raise VaultLocationError(vault, "is the root of the filesystem")
    if real == Path.home().resolve():
        raise VaultLocationError(vault, "is your home directory")
    data = zotero_data_dir(zotero_dir)
    if data is not None and (real == data or data in real.parents):
        where = "is" if real == data else "is inside"
        raise VaultLocationError(vault, f"{where} Zotero's data directory {data}")
    for folder in (real, *real.parents):
        if (folder / ZOTERO_DB_NAME).is_file():
            where = "is" if folder == real else "is inside"
            raise VaultLocationError(
                vault, f"{where} a Zotero data directory ({folder} holds {ZOTERO_DB_NAME})"
            )


def zotero_folders_in_vault(vault: Path, zotero_dir: Path | None) -> frozenset[str]:
    """The vault-relative (posix) path of Zotero's data directory when it lies inside the
    vault; empty otherwise. Walks must not enter it, writes must not land in it."""
    data = zotero_data_dir(zotero_dir)
    if data is None:
        return frozenset()
    try:
        rel = data.relative_to(vault.expanduser().resolve())
    except ValueError:
        return frozenset()
    return frozenset({rel.as_posix()}) if rel.parts else frozenset()


def is_zotero_data_dir(names: Iterable[str]) -> bool:
    """Whether a folder whose entries are `names` is a Zotero data directory (a walk that
    already lists the folder asks this for free)."""
    return ZOTERO_DB_NAME in names


def inside_any(rel: str, folders: Iterable[str]) -> bool:
    """Whether the vault-relative `rel` is one of `folders` or lies below one."""
    parts = PurePosixPath(rel).parts
    return any(parts[: len(PurePosixPath(f).parts)] == PurePosixPath(f).parts for f in folders)


def check_folders(vault: Path, zotero_dir: Path | None, folders: Mapping[str, str]) -> None:
    """Refuse a configured folder (papers, methods, reports, …: setting → vault-relative
    path) that would put the bridge's writes inside Zotero's data directory."""
    skip = zotero_folders_in_vault(vault, zotero_dir)
    for setting, rel in folders.items():
        if rel and inside_any(rel.strip("/"), skip):
            raise VaultLocationError(
                vault,
                f"has {setting} = {rel!r} inside Zotero's data directory {sorted(skip)[0]}",
                f"set {setting} to a folder outside Zotero's data directory",
            )
