"""One error hierarchy for the library; the CLI alone turns these into messages and exit codes.

Each error carries the data a user needs (which path, which key, what to do next), so the
message can say what happened *and* what to do about it.
"""

from __future__ import annotations

# Exit codes, shared by the CLI and documented in its --help.
EXIT_OK = 0
EXIT_SKIPPED = 1  # finished, but something was skipped (a broken note, a conflict on disk)
EXIT_USAGE = 2  # usage or configuration error
EXIT_SOURCE = 3  # the Zotero source could not be read
EXIT_TRIPWIRE = 4  # refused by a safety tripwire (e.g. the source suddenly returned nothing)


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
