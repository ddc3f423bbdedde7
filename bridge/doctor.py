"""`zob doctor`: check the configured source end to end and say what to fix.

A sync that fails tells the user about the first problem only; the doctor walks the whole chain
— config, vault, then the source exactly as a sync would open it — and reports every link as
✓ or ✗ with the fix, so one run shows everything that stands between the user and a sync.
It reads the same things a sync reads and writes nothing but one temporary probe file in the
vault (to prove it is writable).
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bridge.config import Config, load_config, require_vault
from bridge.errors import (
    EXIT_BUSY,
    EXIT_OK,
    EXIT_SOURCE,
    EXIT_STATE_DAMAGED,
    EXIT_USAGE,
    BridgeError,
    ConfigError,
    StateDamagedError,
)
from bridge.remembered import recall

__all__ = ["Check", "Report", "diagnose"]


@dataclass(frozen=True)
class Check:
    """One link of the chain: what was checked, what was found, and how to fix a failure."""

    ok: bool
    title: str
    detail: str = ""
    fix: str = ""
    exit_code: int = EXIT_OK  # what a failure of this check means for the exit code
    warning: bool = False  # works, but should be fixed (does not change the exit code)

    def lines(self) -> list[str]:
        mark = "✗" if not self.ok else "!" if self.warning else "✓"
        text = [f"{mark} {self.title}" + (f": {self.detail}" if self.detail else "")]
        if (not self.ok or self.warning) and self.fix:
            text.append(f"    → {self.fix}")
        return text


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """2 when the configuration is at fault, else 5/6 for a damaged/locked state database,
        else 3 when the source failed, else 0."""
        codes = {c.exit_code for c in self.checks if not c.ok}
        for code in (EXIT_USAGE, EXIT_STATE_DAMAGED, EXIT_BUSY, EXIT_SOURCE):
            if code in codes:
                return code
        return max(codes) if codes else EXIT_OK

    def lines(self) -> list[str]:
        return [line for check in self.checks for line in check.lines()]


def diagnose(config_path: Path | None, overrides: dict[str, Any]) -> Report:
    """Every check for the config file plus command-line overrides (None = not given)."""
    report = Report()
    try:
        file_config = load_config(config_path)
        config = recall(file_config.with_overrides(**overrides), file_config, overrides)
    except ConfigError as exc:
        report.checks.append(Check(False, "config", exc.message, exc.hint or "", EXIT_USAGE))
        return report
    where = config.config_file or "no config file (defaults, flags, the vault's last source)"
    report.checks.append(Check(True, "config", f"{where}; source {config.source}"))
    report.checks.append(_vault_check(config))
    report.checks.extend(_state_checks(config))
    checker = _SOURCE_CHECKS.get(config.source)
    if checker is not None:
        report.checks.extend(checker(config))
    return report


# ── the vault ────────────────────────────────────────────────────────────────────────────────


def _vault_check(config: Config) -> Check:
    if config.vault is None:
        return Check(
            False, "vault", "no vault given", "pass --vault DIR, or run `zob init` once", EXIT_USAGE
        )
    try:
        require_vault(config)  # `/`, HOME, Zotero's data dir: refused before the probe file
    except BridgeError as exc:
        return Check(False, "vault", exc.message, exc.hint or "", exc.exit_code)
    try:
        with tempfile.NamedTemporaryFile(dir=config.vault, prefix=".zob-doctor-"):
            pass
    except OSError as exc:
        return Check(
            False,
            "vault",
            f"{config.vault} is not writable ({exc.strerror or exc})",
            "check the folder's permissions, or pass another --vault",
            EXIT_USAGE,
        )
    return Check(True, "vault", f"{config.vault} exists and is writable")


def _state_checks(config: Config) -> list[Check]:
    """The state database, read-only: intact, damaged (with the way out), or locked."""
    from bridge.state import DB_NAME, STATE_DIRNAME, inspect_state_db, state_error

    path = config.vault / STATE_DIRNAME / DB_NAME if config.vault else None
    if path is None or path.is_symlink() or not path.is_file():
        return []  # none yet (the first sync makes it); a link is refused where it is opened
    try:
        notes = inspect_state_db(path)  # read-only: the doctor opens no session, writes nothing
    except sqlite3.DatabaseError as exc:
        error = state_error(path, exc) or StateDamagedError(str(path), str(exc))
        if not isinstance(error, StateDamagedError):  # locked, unreadable: its own message
            return [_failed("state database", error)]
        return [
            Check(False, "state database", f"{path} is damaged ({exc})", _RESCUE,
                  EXIT_STATE_DAMAGED)
        ]  # fmt: skip
    return [Check(True, "state database", f"{path}: {notes} notes, intact")]


_RESCUE = (
    "your notes are intact; do not delete this file: it holds what the bridge last wrote into "
    "each note, which merging your edits with Zotero's needs. Stop `zob watch`, keep a copy of "
    "the damaged file, then restore state.sqlite from a backup (Time Machine, a snapshot, your "
    "file sync's history). Without one, SQLite's own tool recovers what can still be read: "
    "`sqlite3 state.sqlite .recover | sqlite3 recovered.sqlite`, then put recovered.sqlite in "
    "its place"
)


# ── sources ──────────────────────────────────────────────────────────────────────────────────


def _failed(title: str, exc: BridgeError) -> Check:
    return Check(False, title, exc.message, exc.hint or "", exc.exit_code)


def _sample_checks(config: Config) -> list[Check]:
    from bridge.sources.sample import SampleSource

    try:
        snapshot = SampleSource().read()
    except BridgeError as exc:
        return [_failed("sample library", exc)]
    return [Check(True, "sample library", f"{len(snapshot.items)} bundled items")]


def _sqlite_checks(config: Config) -> list[Check]:
    if config.zotero_dir is None:
        return [
            Check(
                False,
                "Zotero data directory",
                "not given",
                "pass --zotero-dir (usually ~/Zotero) or set source.zotero_dir",
                EXIT_USAGE,
            )
        ]
    from bridge.sources.sqlite import SqliteSource

    source = SqliteSource(config.zotero_dir)
    try:
        snapshot = source.read()
    except BridgeError as exc:
        return [_failed("Zotero database", exc)]
    snapshot.close()  # only counted: a large library's streamed items are not read
    schema = _schema_version(source.db_path)
    detail = f"{source.db_path}: {len(snapshot.items)} items" + (
        f", userdata schema {schema}" if schema is not None else ""
    )
    checks = [Check(True, "Zotero database", detail)]
    checks += [Check(True, "warning", w, warning=True) for w in snapshot.warnings[:5]]
    return checks


def _schema_version(db_path: Path) -> int | None:
    """The userdata schema version, read from a private snapshot (never the live file)."""
    from bridge.sources.sqlite import snapshot_database

    try:
        with tempfile.TemporaryDirectory(prefix="zob-doctor-") as tmp:
            copy, _ = snapshot_database(db_path, Path(tmp))
            with closing(sqlite3.connect(f"file:{copy}?mode=ro", uri=True)) as conn:
                row = conn.execute("SELECT version FROM version WHERE schema='userdata'").fetchone()
    except Exception:  # informative only: the read above already proved the schema is usable
        return None
    return int(row[0]) if row and str(row[0]).isdigit() else None


def _api_checks(config: Config) -> list[Check]:
    from bridge.sources.api import ApiSource

    try:
        source = ApiSource.from_config(config)
    except BridgeError as exc:
        return [_failed("API settings", exc)]
    checks = [Check(True, "API settings", f"{source.name} API at {source.base_url}")]
    checks += [
        Check(True, "API key file", w, "only you should be able to read it", warning=True)
        for w in source.config_warnings
    ]
    if source.name == "web":
        key_check = _key_check(source, config)
        checks.append(key_check)
        if not key_check.ok and key_check.exit_code == EXIT_SOURCE:
            return checks
    try:
        total, version = source.library_summary()
    except BridgeError as exc:
        checks.append(_failed("library", exc))
        return checks
    at_version = f" (library version {version})" if version is not None else ""
    checks.append(
        Check(True, "library", f"{source.prefix.strip('/')}: {total} top-level items{at_version}")
    )
    return checks


def _key_check(source: Any, config: Config) -> Check:
    """`/keys/current`: the key is valid and may read the configured library."""
    try:
        info = source.key_info()
    except BridgeError as exc:
        return _failed("API key", exc)
    who = f"user {info.get('username', '?')} (ID {info.get('userID', '?')})"
    access = info.get("access") if isinstance(info.get("access"), dict) else {}
    if config.library_type == "group":
        groups = access.get("groups") or {}
        rights = groups.get(str(config.library_id)) or groups.get("all") or {}
        readable = bool(rights.get("library"))
    else:
        readable = bool((access.get("user") or {}).get("library"))
        if str(info.get("userID", "")) != str(config.library_id):
            return Check(
                False,
                "API key",
                f"the key belongs to {who}, but library_id is {config.library_id}",
                f"set --library-id {info.get('userID')} (your own library), or use a key of "
                "that user",
                EXIT_USAGE,
            )
    if not readable:
        return Check(
            False,
            "API key",
            f"the key of {who} may not read this library",
            "allow 'Read' access for it on https://www.zotero.org/settings/keys",
            EXIT_USAGE,
        )
    return Check(True, "API key", f"accepted: {who}")


_SOURCE_CHECKS: dict[str, Callable[[Config], list[Check]]] = {
    "sample": _sample_checks,
    "sqlite": _sqlite_checks,
    "web": _api_checks,
    "local": _api_checks,
}
