"""Zotero's web API (zotero.org) and local API (Zotero 7+ on this computer) as a source.

Both speak the same JSON, converted by `apijson` exactly as the bundled sample is, so notes
cannot depend on the access path. pyzotero builds the URLs, sends the key and follows
`Link: rel="next"` pages. The package, one layer at a time:

- `transport`: retries and error statuses below pyzotero (`RetryingTransport`, `RetryPolicy`,
  `HttpFailure`): 429/5xx retried with `Retry-After`/`Backoff` honoured, bounded waits;
- `client`: `ApiClient`, the boundary every answer passes before anything else looks at it,
  what one read skipped, and the snapshot honest about it; `answers` describes bad answers;
- `failures`: every failure as one `SourceError` that says what to do (`translate_errors`);
- `paging`: listings at one library version (`listing`), objects by key (`fetch_by_key`);
- `cursor`: the web cursor (library version + item → attachment/annotation keys);
- `objects`: what the JSON objects say about each other (kinds, parents, trash, the tree);
- `full`: full reads (web, and always for the local API) → the model via `apijson`;
- `changes`: incremental web reads from a cursor;
- `key`: the API key from `ZOTERO_API_KEY` or `source.api_key_file`;
- here: `ApiSource`, the `Source` wiring them, and its setup from the config.

Web reads are incremental. With the cursor a sync costs one request when nothing changed,
and otherwise only the changed objects and the subtrees of the papers they belong to. The
local API has no `/deleted`, and its `since=` misses objects never synced, so local reads are
always full reads; the cursor is a digest of the data.

The API key never leaves this package: pyzotero sends it as an `Authorization: Bearer`
header, never in a URL (its `key_info()` would put it in one, so `/keys/current` is asked
instead), and every message built from an answer, a header or a URL is redacted.

Written against pyzotero 1.16 (httpx2 client injectable with `client=`; base URL in the
client's `endpoint` attribute, `http://127.0.0.1:23119/api` with `local=True`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bridge.config import Config
from bridge.errors import ConfigError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.api.answers import shape_problem
from bridge.sources.api.changes import read_changes
from bridge.sources.api.client import ApiClient
from bridge.sources.api.cursor import CURSOR_PREFIX, LOCAL_CURSOR_PREFIX, LibraryChanged, WebCursor
from bridge.sources.api.failures import LOCAL_API_HINT, translate_errors
from bridge.sources.api.full import READ_ATTEMPTS, read_full, read_local
from bridge.sources.api.key import KEYS_PAGE, read_api_key
from bridge.sources.api.objects import KEY_RE, as_int
from bridge.sources.api.paging import KEY_BATCH, MAX_PAGES, PAGE_SIZE
from bridge.sources.api.transport import (
    DEFAULT_RETRY,
    RETRY_STATUSES,
    TIMEOUT_SECONDS,
    TRANSIENT_ERRORS,
    HttpFailure,
    RetryPolicy,
    server_delay,
)

__all__ = [
    "CURSOR_PREFIX",
    "DEFAULT_RETRY",
    "KEYS_PAGE",
    "KEY_BATCH",
    "KEY_RE",
    "LOCAL_API_HINT",
    "LOCAL_CURSOR_PREFIX",
    "MAX_PAGES",
    "PAGE_SIZE",
    "READ_ATTEMPTS",
    "RETRY_STATUSES",
    "TIMEOUT_SECONDS",
    "TRANSIENT_ERRORS",
    "ApiClient",
    "ApiSource",
    "HttpFailure",
    "RetryPolicy",
    "read_api_key",
    "server_delay",
]


class ApiSource:
    """A `Source` over the web API (`name="web"`) or Zotero's local API (`name="local"`)."""

    def __init__(
        self,
        name: str,
        library_id: str,
        library_type: str = "user",
        api_key: str | None = None,
        api_url: str | None = None,
        *,
        retry: RetryPolicy | None = None,
        warnings: Iterable[str] = (),
    ) -> None:
        if name not in ("web", "local"):
            raise ValueError(f"ApiSource name must be 'web' or 'local', not {name!r}")
        self.name = name
        self.library = Library("group", int(library_id)) if library_type == "group" else Library()
        self._client = ApiClient(
            name, library_id, library_type, api_key, api_url,
            policy=retry or DEFAULT_RETRY,  # read now: tests patch the package's DEFAULT_RETRY
            library=self.library, warnings=tuple(warnings),
        )  # fmt: skip
        self.zot = self._client.zot
        self.base_url = self._client.base_url
        self.prefix = self._client.prefix

    @property
    def config_warnings(self) -> tuple[str, ...]:
        """Problems of the setup that do not stop a read (a key file others can read)."""
        return self._client.setup_warnings

    def __repr__(self) -> str:
        return f"ApiSource({self.name!r}, {self.prefix!r}, url={self.base_url!r})"

    @classmethod
    def from_config(cls, config: Config, *, retry: RetryPolicy | None = None) -> ApiSource:
        """The source a config describes; raises ConfigError saying how to fix what is missing."""
        group = config.library_type == "group"
        library_id = (config.library_id or "").strip()
        if library_id and not library_id.isdigit():
            raise ConfigError(
                f"library_id must be a number, not {library_id!r}",
                f"your user ID is shown on {KEYS_PAGE}; a group's ID is the number in its "
                "zotero.org address",
            )
        if config.source == "local":
            if group and not library_id:
                raise ConfigError(
                    "a group library needs --library-id (the group's ID)",
                    "the group ID is the number in the group's zotero.org address",
                )
            return cls(
                "local", library_id if group else "0", config.library_type,
                api_url=config.api_url, retry=retry,
            )  # fmt: skip
        warnings: list[str] = []
        key = read_api_key(config, warnings)
        if not library_id:
            raise ConfigError(
                "the web API needs a library ID (--library-id or source.library_id)",
                f"your user ID is shown on {KEYS_PAGE} ('Your user ID for use in API calls'); "
                "for a group, pass --library-type group and the number in its zotero.org address",
            )
        return cls(
            "web", library_id, config.library_type, key, config.api_url,
            retry=retry, warnings=warnings,
        )  # fmt: skip

    # -- reading

    def read(self, since: str | None = None) -> LibrarySnapshot:
        """The library, or what changed since the cursor `since`. Raises SourceError."""
        client = self._client
        client.begin()
        with translate_errors(client):
            if self.name == "local":
                return read_local(client, since)
            cursor = WebCursor.decode(since) if since else None
            warnings: list[str] = []
            if since and cursor is None:
                warnings.append("unrecognised sync cursor; reading the whole library")
            if cursor is not None:
                try:
                    snapshot = read_changes(client, cursor)
                except LibraryChanged:  # torn or restored: only a full read is safe
                    snapshot = None
                if snapshot is not None:
                    return snapshot
                client.begin()  # what the incremental attempt found is not the full read's
            return read_full(client, warnings)

    def key_info(self) -> dict[str, Any]:
        """What `/keys/current` says about the API key (web only), without the key itself."""
        client = self._client
        with translate_errors(client):
            response = client.get("/keys/current")
            info = client.json(response, "the API key check")
            if not isinstance(info, dict):
                raise client.unusable("the API key check", "not a JSON object", response)
        info.pop("key", None)
        return info

    def library_summary(self) -> tuple[int, int | None]:
        """(number of top-level items, library version), from one cheap request."""
        client = self._client
        with translate_errors(client):
            response = client.get(f"{self.prefix}/items/top", {"limit": 1, "format": "json"})
            total = as_int(response.headers.get("Total-Results"))
            if total is None:
                page = client.json(response, "the item list")
                if not isinstance(page, list):
                    raise client.unusable("the item list", shape_problem(page), response)
                total = len(page)
        return total, as_int(response.headers.get("Last-Modified-Version"))
