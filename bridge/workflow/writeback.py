"""Progress back to Zotero: the tags `pass/1`, `pass/2`, `pass/3` and `dropped` follow the notes.

Opt-in (`[writeback] enabled = true`), through zotero.org's web API with a key that has write
access (pyzotero). For each paper whose wanted progress tags differ from what was last written
back (the state DB remembers), the item is read (`GET …/items/KEY`, its `version`), its four
progress tags are replaced — every other tag is kept — and it is written with
`PATCH …/items/KEY` + `If-Unmodified-Since-Version`. A 412 (the item changed in between) is
answered by reading the item again and retrying once. The wanted tags: `pass/N` for the note's
`pass` N ≥ 1 (only the current one), plus `dropped` when `status: dropped`.

The API key is sent as a header by pyzotero, never in a URL, and every message is scrubbed of
it before it is shown, logged or stored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyzotero import Zotero
from pyzotero import errors as zotero_errors

from bridge.config import Config
from bridge.errors import ConfigError
from bridge.lineage import PaperInfo
from bridge.state import State
from bridge.workflow.progress import normalise_status, parse_pass

PROGRESS_TAGS = ("pass/1", "pass/2", "pass/3", "dropped")
DEFAULT_API_URL = "https://api.zotero.org"
KEYS_PAGE = "https://www.zotero.org/settings/keys"
NO_WRITE_ACCESS = (
    "edit the key on {page} and tick 'Allow write access' (for a group: 'Read/Write'), "
    "or set writeback.enabled = false"
)


def wanted_tags(paper: PaperInfo) -> list[str]:
    """The progress tags a paper's item should carry, in PROGRESS_TAGS order."""
    tags = []
    finished = parse_pass(paper.reading_pass)
    if finished:
        tags.append(f"pass/{finished}")
    if normalise_status(paper.status) == "dropped":
        tags.append("dropped")
    return tags


@dataclass(frozen=True)
class WriteTarget:
    library_id: str
    library_type: str
    api_url: str
    api_key: str = field(repr=False)

    @property
    def where(self) -> str:
        return f"{self.library_type}s/{self.library_id} at {self.api_url}"


def target_from_config(config: Config) -> WriteTarget:
    """Where to write; ConfigError saying what to set when something is missing."""
    web = config.source == "web"
    library_id = config.writeback_library_id or (config.library_id if web else None)
    if not library_id or not str(library_id).strip().isdigit():
        raise ConfigError(
            "writeback needs the zotero.org ID of the library the notes come from",
            f"set writeback.library_id (your user ID is on {KEYS_PAGE}; a group's ID is the "
            "number in its zotero.org address)",
        )
    library_type = config.writeback_library_type or (config.library_type if web else "user")
    api_url = config.writeback_api_url or (config.api_url if web else None) or DEFAULT_API_URL
    return WriteTarget(str(library_id).strip(), library_type, api_url.rstrip("/"), _key(config))


def _key(config: Config) -> str:
    key = os.environ.get("ZOTERO_API_KEY", "").strip()
    path = config.writeback_api_key_file or config.api_key_file
    if not key and path is not None:
        try:
            key = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"cannot read the writeback API key file {path}: "
                f"{getattr(exc, 'strerror', None) or exc}",
                "check writeback.api_key_file",
            ) from None
    if not key:
        raise ConfigError(
            "writeback needs a zotero.org API key with write access",
            f"create one on {KEYS_PAGE} ('Allow write access'), then export ZOTERO_API_KEY=… "
            "or name a file holding it in writeback.api_key_file (chmod 600)",
        )
    return key


class WritebackFailure(Exception):
    """Writing one item failed; `fatal` when no later item can succeed either."""

    def __init__(self, message: str, hint: str = "", *, fatal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fatal = fatal


class ZoteroWriter:
    """Sets an item's progress tags, with version checks and one retry after a 412."""

    def __init__(self, target: WriteTarget, client: Any = None) -> None:
        self.target = target
        self.zot = Zotero(target.library_id, target.library_type, target.api_key, client=client)
        self.zot.endpoint = target.api_url

    def set_progress(self, key: str, wanted: list[str]) -> bool:
        """Make the item's progress tags `wanted`; False when they already were."""
        for attempt in (1, 2):
            item = self._call(self.zot.item, key)
            data = item.get("data", item)
            tags = [t for t in data.get("tags", []) if isinstance(t, dict) and "tag" in t]
            kept = [t for t in tags if t["tag"] not in PROGRESS_TAGS]
            new = kept + [{"tag": tag} for tag in wanted]
            if sorted(t["tag"] for t in new) == sorted(t["tag"] for t in tags):
                return False
            payload = {"key": key, "version": item.get("version", data.get("version")), "tags": new}
            try:
                self._call(self.zot.update_item, payload)
                return True
            except _Changed:
                if attempt == 2:
                    raise WritebackFailure(
                        f"{key}: the item kept changing in Zotero while its tags were written",
                        "it is tried again at the next sync",
                    ) from None
        return False  # pragma: no cover - the loop returns or raises

    def _call(self, method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except zotero_errors.PreConditionFailedError:
            raise _Changed() from None
        except zotero_errors.UserNotAuthorisedError:
            raise WritebackFailure(
                f"zotero.org refused to write to {self.target.where}: the API key has no write "
                "access to this library",
                NO_WRITE_ACCESS.format(page=KEYS_PAGE),
                fatal=True,
            ) from None
        except zotero_errors.ResourceNotFoundError:
            raise WritebackFailure(
                f"{args[0] if isinstance(args[0], str) else args[0].get('key')}: no such item "
                f"in {self.target.where}",
                "check writeback.library_id / library_type: they must name the library the "
                "notes come from",
            ) from None
        except (zotero_errors.PyZoteroError, OSError, ValueError) as exc:
            raise WritebackFailure(
                self.scrub(f"talking to {self.target.where} failed: {type(exc).__name__}: {exc}"),
                "it is tried again at the next sync",
                fatal=True,
            ) from None
        except Exception as exc:  # httpx2 transport errors (connection refused, timeouts)
            if type(exc).__module__.split(".")[0] not in ("httpx2", "httpx", "httpcore"):
                raise
            raise WritebackFailure(
                self.scrub(f"cannot reach {self.target.api_url}: {type(exc).__name__}: {exc}"),
                "it is tried again at the next sync",
                fatal=True,
            ) from None

    def scrub(self, text: str) -> str:
        key = self.target.api_key
        return text.replace(key, "********") if key else text


class _Changed(Exception):
    """412: the item's version moved since it was read."""


@dataclass
class WritebackOutcome:
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)  # {key, message, hint}


def write_back(
    config: Config,
    state: State,
    papers: list[PaperInfo],
    at: str,
    *,
    client: Any = None,
) -> WritebackOutcome:
    """Push the progress tags of every paper whose tags changed since the last push."""
    outcome = WritebackOutcome()
    done = state.written_back()
    todo = [
        (paper.note_id, wanted_tags(paper)) for paper in sorted(papers, key=lambda p: p.note_id)
    ]
    todo = [(key, tags) for key, tags in todo if sorted(tags) != sorted(done.get(key, []))]
    if not todo:
        return outcome
    notes = state.notes()
    todo = [(key, tags) for key, tags in todo if key in notes and not notes[key].zotero_deleted]
    try:
        writer = ZoteroWriter(target_from_config(config), client=client)
    except ConfigError as exc:
        outcome.errors.append({"key": "", "message": exc.message, "hint": exc.hint or ""})
        return outcome
    for key, tags in todo:
        try:
            changed = writer.set_progress(key, tags)
        except WritebackFailure as exc:
            outcome.errors.append({"key": key, "message": writer.scrub(exc.message),
                                   "hint": exc.hint})  # fmt: skip
            if exc.fatal:
                break
            continue
        (outcome.written if changed else outcome.unchanged).append(key)
        with state.transaction():
            state.put_written_back(key, tags, at)
    return outcome
