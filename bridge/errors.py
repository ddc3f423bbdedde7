"""One error hierarchy for the library; the CLI alone turns these into messages and exit codes.

Each error carries the data a user needs (which path, which key, what to do next), so the
message can say what happened *and* what to do about it.
"""

from __future__ import annotations

import errno
import os

# Exit codes, shared by the CLI and documented in its --help (EXIT_CODES) and the README.
EXIT_OK = 0
EXIT_SKIPPED = 1  # finished, but something was skipped (a broken note, a conflict on disk)
EXIT_USAGE = 2  # usage or configuration error
EXIT_SOURCE = 3  # the Zotero source could not be read
EXIT_TRIPWIRE = 4  # refused by a safety tripwire (e.g. the source suddenly returned nothing)
EXIT_STATE_DAMAGED = 5  # the bridge's state database is damaged; the notes were not touched
EXIT_BUSY = 6  # the state database is locked by another process; try again
EXIT_NO_SPACE = 7  # the disk, a quota or a file-size limit is full; nothing was lost
EXIT_NO_SERVICE = 8  # `zob service status`: no service installed, or it is not running
EXIT_BUG = 70  # an internal error: a bug in the bridge, never an expected failure

EXIT_CODES = (
    (EXIT_OK, "all good"),
    (EXIT_SKIPPED, "finished but something was skipped"),
    (EXIT_USAGE, "usage or config error"),
    (EXIT_SOURCE, "the Zotero source could not be read"),
    (EXIT_TRIPWIRE, "refused by a safety tripwire"),
    (EXIT_STATE_DAMAGED, "the bridge's state database is damaged (notes untouched)"),
    (EXIT_BUSY, "another process holds the state database or the vault's sync"),
    (EXIT_NO_SPACE, "no space left (disk, quota or file-size limit; nothing lost)"),
    (EXIT_NO_SERVICE, "`zob service status`: no service installed, or not running"),
    (EXIT_BUG, "internal error, a bug: please report it"),
)


class BridgeError(Exception):
    """Root of every error the bridge raises on purpose."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  → {self.hint}"


class ConfigError(BridgeError):
    """The configuration (file, flags or environment) is unusable; `problems` lists every issue."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[str] | str, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems), hint)


class SourceError(BridgeError):
    """The Zotero source (database, API, sample) could not be read."""

    exit_code = EXIT_SOURCE


class SchemaVersionError(SourceError):
    """The Zotero database has a userdata schema version the bridge does not know."""

    def __init__(self, found: int | None, path: str) -> None:
        self.found = found
        super().__init__(
            f"{path}: Zotero userdata schema version {found} is not supported "
            "(supported: 120-121 Zotero 6, 123 Zotero 7/8, 125 Zotero 9, 129 Zotero 10)",
            "update zotero-obsidian-bridge, or report the version you found",
        )


class TripwireError(BridgeError):
    """A sync would change too much for the reason given; nothing was written."""

    exit_code = EXIT_TRIPWIRE


class NoteError(BridgeError):
    """One note cannot be processed (broken YAML, broken markers); the rest of the sync goes on."""

    exit_code = EXIT_SKIPPED

    def __init__(self, path: str, message: str, hint: str | None = None) -> None:
        self.path = path
        super().__init__(f"{path}: {message}", hint)


class NoteChangedError(NoteError):
    """The note changed on disk between the scan and the write; it was left alone."""


class DaemonRunningError(BridgeError):
    """Another `zob watch` already owns this vault."""

    exit_code = EXIT_USAGE


STATE_DAMAGED_FIX = (
    "do not delete it: it holds what the bridge last wrote into each note, which merging your "
    "edits with Zotero's needs. Stop `zob watch`, then restore .zotero-bridge/state.sqlite from "
    "a backup; `zob doctor` checks it and says what else can be done"
)


class StateError(BridgeError):
    """The bridge's state database (`<vault>/.zotero-bridge/state.sqlite`) cannot be used."""


class StateDamagedError(StateError):
    """The state database's pages are damaged. It holds the merge bases (what the bridge last
    wrote into each note), so the way out is a backup, never a fresh database."""

    exit_code = EXIT_STATE_DAMAGED

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        super().__init__(
            f"the bridge's state database {path} is damaged ({detail}); the sync stopped and "
            "your notes are intact (a note is only ever replaced whole)",
            STATE_DAMAGED_FIX,
        )


class StateBusyError(StateError):
    """Another process holds a lock on the state database for longer than the bridge waits."""

    exit_code = EXIT_BUSY

    def __init__(self, path: str, holders: list[str], waited: float) -> None:
        self.path = path
        self.holders = holders
        who = f" by {', '.join(holders)}" if holders else " by another process"
        super().__init__(
            f"the bridge's state database {path} is locked{who} (waited {waited:g} s); "
            "the bridge stopped and your notes are intact",
            "wait for that process to finish (or stop it), then try again; `zob status` shows "
            "whether `zob watch` is running",
        )


NO_SPACE_ERRNOS = frozenset(
    code for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) if isinstance(code, int)
)


class NoSpaceError(BridgeError):
    """A write failed for want of space: a full disk, a quota, or a file-size limit."""

    exit_code = EXIT_NO_SPACE

    def __init__(self, path: str | None, reason: str) -> None:
        self.path = path
        where = f" while writing {path}" if path else ""
        super().__init__(
            f"no space left{where}: {reason}",
            "nothing was lost: a note is written whole or not at all, so each is either as it "
            "was or fully updated. Free some space (or raise the quota or file-size limit), "
            "then run `zob sync` again",
        )

    @classmethod
    def from_os_error(cls, exc: OSError, path: str | None = None) -> NoSpaceError:
        reason = exc.strerror or os.strerror(exc.errno or 0)
        if exc.errno == errno.EFBIG:
            reason += " (a file-size limit of this system or process)"
        return cls(path or (exc.filename and str(exc.filename)), reason)


def is_no_space(exc: BaseException) -> bool:
    """An OSError that means the disk, a quota or a file-size limit is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


# the end of every command's --help (click's epilog)
EPILOG = "Exit codes: " + ", ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES) + "."
