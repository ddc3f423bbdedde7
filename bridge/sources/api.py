"""Zotero's web API (zotero.org) and local API (Zotero 7+ on this computer) as a source.

Both speak the same JSON, converted by `apijson` exactly as the bundled sample is, so notes
cannot depend on the access path. pyzotero builds the URLs, sends the key and follows
`Link: rel="next"` pages. Everything about *what a response means* happens one layer below,
in `_RetryingTransport` (the httpx client handed to pyzotero): 429/5xx retries with
`Retry-After`/`Backoff` honoured (via tenacity, with bounded, injectable waits), and every
error status turned into one exception type. pyzotero's own rate-limit handling sleeps for
whatever the server asks, unbounded and in real time, and does not retry 5xx; it never sees
such a response here.

Web reads are incremental. The cursor holds the library version *and* the tree of regular
items → their attachment and annotation keys. With it a sync costs one request when nothing
changed (`If-Modified-Since-Version` → 304), and otherwise: changed keys (`format=versions`),
`/deleted` (a 409 falls back to comparing with `format=keys`), the collections, and the
changed objects plus the full subtree of every regular item they belong to (an edited or
deleted highlight re-renders its paper). The tree is what makes a deleted annotation findable:
`/deleted` names only its key.

The local API has no `/deleted`, and its `since=` misses objects never synced (and local edits
do not move versions), so local reads are always full reads; the cursor is a digest of the
data, and an unchanged library yields an empty incremental snapshot.

The API key never leaves this module: pyzotero sends it as an `Authorization: Bearer` header,
never in a URL (its `key_info()` would put it in one, so `/keys/current` is asked instead), and
every error text is scrubbed of it before it becomes a `SourceError`.

Written against pyzotero 1.16 (httpx2 client injectable with `client=`; base URL in the
client's `endpoint` attribute, `http://127.0.0.1:23119/api` with `local=True`).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import tenacity
from pyzotero import Zotero
from pyzotero.errors import PyZoteroError

from bridge.config import Config
from bridge.errors import ConfigError, SourceError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.apijson import CHILD_TYPES, items_from_api

__all__ = ["ApiSource", "HttpFailure", "RetryPolicy", "DEFAULT_RETRY"]

KEYS_PAGE = "https://www.zotero.org/settings/keys"
LOCAL_API_HINT = (
    "enable Zotero's local API: Settings → Advanced → Allow other applications on this "
    "computer to communicate with Zotero"
)
CURSOR_PREFIX = "zob-api:"
LOCAL_CURSOR_PREFIX = "zob-local:"
PAGE_SIZE = 100  # the API's maximum `limit`
KEY_BATCH = 50  # the API's maximum number of keys in one `itemKey=` request
READ_ATTEMPTS = 3  # whole listings restarted when the library changes while being read
TIMEOUT_SECONDS = 30.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (
    httpx2.TimeoutException,
    httpx2.RemoteProtocolError,
    httpx2.ReadError,
    httpx2.WriteError,
)


# ── retries ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before a sync gives up on a struggling server.

    `attempts` counts tries per request (429, 5xx, timeouts). Without a `Retry-After`, waits
    grow from `base_delay`, doubling, up to `max_delay`. A server that asks for a wait longer
    than `max_wait` is not waited for: the sync stops and says when to try again. `sleep` is
    injectable so tests can record waits instead of spending them.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_wait: float = 300.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


DEFAULT_RETRY = RetryPolicy()


class HttpFailure(Exception):
    """An HTTP error status that retries did not cure (or that retrying cannot cure)."""

    def __init__(
        self, status: int, target: str, detail: str, attempts: int = 1, wait: float | None = None
    ) -> None:
        super().__init__(f"HTTP {status} for {target}")
        self.status = status
        self.target = target
        self.detail = detail
        self.attempts = attempts
        self.wait = wait


def server_delay(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked us to wait (`Retry-After` seconds or date, `Backoff`)."""
    delays = []
    for name in ("retry-after", "backoff"):
        value = headers.get(name)
        if value:
            delays.append(_seconds(value.strip()))
    found = [d for d in delays if d is not None]
    return max(found) if found else None


def _seconds(value: str) -> float | None:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class _RetryingTransport(httpx2.BaseTransport):
    """Retries 429/5xx/timeouts, honours `Backoff`, and raises `HttpFailure` for errors.

    `Backoff` on any response delays the *next* request; `Retry-After` delays the retry. Both
    headers are removed from what pyzotero sees, so it cannot sleep a second time.
    """

    def __init__(
        self,
        policy: RetryPolicy,
        inner: httpx2.BaseTransport | None = None,
        secret: str = "",
    ) -> None:
        self.policy = policy
        self.inner = inner or httpx2.HTTPTransport()
        self.secret = secret  # blanked out of error bodies: a server may echo the key
        self._resume_at = 0.0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self._wait_out_backoff()
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.policy.attempts)) | self._asks_too_much,
            wait=self._delay,
            retry=(
                tenacity.retry_if_exception_type(TRANSIENT_ERRORS)
                | tenacity.retry_if_result(lambda r: r.status_code in RETRY_STATUSES)
            ),
            sleep=self.policy.sleep,
            before_sleep=_discard,
            retry_error_callback=lambda state: state.outcome.result(),
        )
        response = retrying(self.inner.handle_request, request)
        self._note_backoff(response)
        if response.status_code >= 400:
            raise self._failure(request, response, retrying.statistics.get("attempt_number", 1))
        return response

    def close(self) -> None:
        self.inner.close()

    def _delay(self, state: tenacity.RetryCallState) -> float:
        outcome = state.outcome
        if outcome is not None and not outcome.failed:
            asked = server_delay(outcome.result().headers)
            if asked is not None:
                return asked
        return min(self.policy.base_delay * 2 ** (state.attempt_number - 1), self.policy.max_delay)

    def _asks_too_much(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        if outcome is None or outcome.failed:
            return False
        asked = server_delay(outcome.result().headers)
        return asked is not None and asked > self.policy.max_wait

    def _note_backoff(self, response: httpx2.Response) -> None:
        backoff = response.headers.get("backoff")
        if backoff and response.status_code < 400:
            wait = _seconds(backoff.strip()) or 0.0
            self._resume_at = self.policy.clock() + min(wait, self.policy.max_wait)
        for name in ("backoff", "retry-after"):
            if name in response.headers and response.status_code < 400:
                del response.headers[name]

    def _wait_out_backoff(self) -> None:
        remaining = self._resume_at - self.policy.clock()
        self._resume_at = 0.0
        if remaining > 0:
            self.policy.sleep(remaining)

    def _failure(
        self, request: httpx2.Request, response: httpx2.Response, attempts: int
    ) -> HttpFailure:
        try:
            detail = response.read().decode("utf-8", "replace").strip()
            if self.secret:
                detail = detail.replace(self.secret, "<api-key>")
            detail = detail[:300]
        except httpx2.HTTPError:
            detail = ""
        finally:
            response.close()
        target = request.url.raw_path.decode("ascii", "replace")
        return HttpFailure(
            response.status_code, target, detail, attempts, server_delay(response.headers)
        )


def _discard(state: tenacity.RetryCallState) -> None:
    """Release the connection of a response we are about to retry."""
    outcome = state.outcome
    if outcome is not None and not outcome.failed:
        outcome.result().close()


# ── the cursor ───────────────────────────────────────────────────────────────────────────────


@dataclass
class _Cursor:
    """Library version + regular item → child keys + collection keys (see module docstring)."""

    version: int
    tree: dict[str, list[str]] = field(default_factory=dict)
    collections: list[str] = field(default_factory=list)

    def encode(self) -> str:
        body = {
            "v": 1,
            "version": self.version,
            "tree": {k: sorted(v) for k, v in sorted(self.tree.items())},
            "collections": sorted(self.collections),
        }
        return CURSOR_PREFIX + json.dumps(body, separators=(",", ":"))

    @classmethod
    def decode(cls, text: str) -> _Cursor | None:
        if not text.startswith(CURSOR_PREFIX):
            return None
        try:
            body = json.loads(text[len(CURSOR_PREFIX) :])
            tree = {str(k): [str(c) for c in v] for k, v in body["tree"].items()}
            return cls(int(body["version"]), tree, [str(c) for c in body["collections"]])
        except (ValueError, KeyError, TypeError, AttributeError):
            return None

    def child_parents(self) -> dict[str, str]:
        return {child: parent for parent, kids in self.tree.items() for child in kids}


class _LibraryChanged(Exception):
    """The library version moved while a listing was paged through: read it again."""


# ── the source ───────────────────────────────────────────────────────────────────────────────


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
        self._key = api_key or ""
        self._warnings = tuple(warnings)
        policy = retry or DEFAULT_RETRY
        client = httpx2.Client(
            transport=_RetryingTransport(policy, secret=self._key),
            timeout=TIMEOUT_SECONDS,
            follow_redirects=True,
            trust_env=name == "web",  # never send loopback requests through a proxy
        )
        self.zot = Zotero(
            library_id, library_type, api_key or None, local=name == "local", client=client
        )
        if api_url:
            self.zot.endpoint = api_url.rstrip("/")
        self.base_url = self.zot.endpoint
        self.prefix = f"/{self.zot.library_type}/{self.zot.library_id}"

    @property
    def config_warnings(self) -> tuple[str, ...]:
        """Problems of the setup that do not stop a read (a key file others can read)."""
        return self._warnings

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
        self._reset()
        with self._translate_errors():
            if self.name == "local":
                return self._read_local(since)
            cursor = _Cursor.decode(since) if since else None
            warnings: list[str] = []
            if since and cursor is None:
                warnings.append("unrecognised sync cursor; reading the whole library")
            if cursor is not None:
                try:
                    snapshot = self._read_changes(cursor)
                except _LibraryChanged:  # torn or restored: only a full read is safe
                    snapshot = None
                    self._reset()
                if snapshot is not None:
                    return snapshot
            return self._read_full(warnings)

    def key_info(self) -> dict[str, Any]:
        """What `/keys/current` says about the API key (web only), without the key itself."""
        with self._translate_errors():
            response = self._get("/keys/current")
            info = response.json()
        info.pop("key", None)
        return info

    def library_summary(self) -> tuple[int, int | None]:
        """(number of top-level items, library version), from one cheap request."""
        with self._translate_errors():
            response = self._get(f"{self.prefix}/items/top", {"limit": 1, "format": "json"})
            total = _int(response.headers.get("Total-Results"))
            if total is None:
                total = len(response.json())
        return total, _int(response.headers.get("Last-Modified-Version"))

    # -- full reads

    def _read_everything(self) -> tuple[list[dict], list[dict], int | None]:
        """Every item object (trash included) and collection, read at one library version."""
        for _ in range(READ_ATTEMPTS):
            try:
                objects, version = self._listing(self.zot.items, includeTrashed=1)
                collections, col_version = self._listing(self.zot.collections)
            except _LibraryChanged:
                continue
            if version is None or col_version is None or col_version == version:
                return objects, collections, version
        raise SourceError(
            f"the library at {self._where()} kept changing while it was read "
            f"({READ_ATTEMPTS} attempts)",
            "try again when Zotero has finished syncing or importing",
        )

    def _read_full(self, warnings: list[str]) -> LibrarySnapshot:
        objects, collections, version = self._read_everything()
        live = _live_objects(objects)
        cursor = None
        if version is not None:
            cursor = _Cursor(version, _tree(live), [c["key"] for c in collections]).encode()
        items = items_from_api(live, _live_collections(collections), self.library, warnings)
        return self._snapshot(items, frozenset(_regular_keys(live)), cursor, False, warnings)

    def _read_local(self, since: str | None) -> LibrarySnapshot:
        objects, collections, _ = self._read_everything()
        payload = json.dumps([objects, collections], sort_keys=True, separators=(",", ":"))
        cursor = LOCAL_CURSOR_PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]
        live = _live_objects(objects)
        warnings: list[str] = []
        all_keys = frozenset(_regular_keys(live))
        if since is not None and since == cursor:
            return self._snapshot((), all_keys, cursor, True, warnings)
        items = items_from_api(live, _live_collections(collections), self.library, warnings)
        return self._snapshot(items, all_keys, cursor, False, warnings)

    def _listing(self, fetch: Callable[..., Any], **params: Any) -> tuple[list[dict], int | None]:
        """Every page of a multi-object request, all at one library version."""
        objects = list(fetch(limit=PAGE_SIZE, **params))
        version = self._header("Last-Modified-Version")
        total = self._header("Total-Results")
        while self.zot.links and self.zot.links.get("next"):
            objects.extend(self.zot.follow())
            if self._header("Last-Modified-Version") != version:
                raise _LibraryChanged
        if total is not None and len(objects) != total:
            raise _LibraryChanged
        return objects, version

    # -- incremental reads (web)

    def _read_changes(self, cursor: _Cursor) -> LibrarySnapshot | None:
        """What changed since the cursor; None when only a full read can tell."""
        probe = self._changed_versions(cursor.version)
        if probe is None:  # 304: the library version has not moved
            return self._snapshot((), frozenset(cursor.tree), cursor.encode(), True, [])
        changed, version = probe
        collections, _ = self._listing(self.zot.collections)
        current = {c["key"]: c for c in collections}
        if set(cursor.collections) - current.keys():
            return None  # a collection was deleted: its former members cannot be listed
        deleted = self._deleted_keys(cursor)
        tree = {k: list(v) for k, v in cursor.tree.items()}
        fetched = self._fetch_changed(cursor.version, set(changed))
        affected = self._affected(cursor, fetched, deleted)
        affected |= self._members(_moved_collections(collections, cursor.version))
        affected -= deleted
        objects = self._subtrees(affected, tree, fetched)
        for key in deleted:
            tree.pop(key, None)
        warnings: list[str] = []
        items = items_from_api(objects, _live_collections(collections), self.library, warnings)
        new_cursor = _Cursor(version, tree, list(current))
        return self._snapshot(items, frozenset(tree), new_cursor.encode(), True, warnings)

    def _changed_versions(self, since: int) -> tuple[dict[str, int], int] | None:
        """Keys → versions of every object changed since `since`, or None for a 304.

        Raises `_LibraryChanged` when the library's version went *back* (a restored or
        replaced library, another server behind the same URL): only a full read is safe.
        """
        response = self._get(
            f"{self.prefix}/items",
            {"since": since, "format": "versions", "includeTrashed": 1},
            {"If-Modified-Since-Version": str(since)},
        )
        version = _int(response.headers.get("Last-Modified-Version"))
        if version is not None and version < since:
            raise _LibraryChanged
        if response.status_code == 304:
            return None
        return dict(response.json()), version if version is not None else since

    def _deleted_keys(self, cursor: _Cursor) -> set[str]:
        """Item keys erased since the cursor: `/deleted`, or a full key comparison on 409."""
        try:
            deleted = self.zot.deleted(since=cursor.version)
            return {str(k) for k in deleted.get("items", [])}
        except HttpFailure as exc:
            if exc.status != 409:
                raise
            self._reset()
        existing = set(_text(self.zot.items(format="keys", includeTrashed=1, limit=None)).split())
        known = set(cursor.tree) | set(cursor.child_parents())
        return known - existing

    def _fetch_changed(self, since: int, keys: set[str]) -> dict[str, dict]:
        """The changed objects: by key when few, else as one `since=` listing (100 a page
        instead of 50); a listing torn by a concurrent change falls back to keys."""
        if len(keys) > 2 * KEY_BATCH:
            try:
                objects, _ = self._listing(self.zot.items, since=since, includeTrashed=1)
                return {o["key"]: o for o in objects}
            except _LibraryChanged:
                self._reset()
        return self._fetch(keys)

    def _fetch(self, keys: set[str]) -> dict[str, dict]:
        """Objects by key (trash included), `KEY_BATCH` keys per request."""
        found: dict[str, dict] = {}
        ordered = sorted(keys)
        for start in range(0, len(ordered), KEY_BATCH):
            batch = ",".join(ordered[start : start + KEY_BATCH])
            for obj in self.zot.items(itemKey=batch, includeTrashed=1, limit=KEY_BATCH):
                found[obj["key"]] = obj
        return found

    def _affected(self, cursor: _Cursor, fetched: dict[str, dict], deleted: set[str]) -> set[str]:
        """Regular items whose note may change: changed items and the parents of changed or
        deleted attachments/annotations (annotation → attachment → parent)."""
        old_parent = cursor.child_parents()
        affected = {old_parent[k] for k in deleted if k in old_parent}
        unknown = {
            _parent(obj)
            for obj in fetched.values()
            if _kind(obj) == "annotation" and _parent(obj) not in fetched
        }
        unknown -= set(old_parent) | set(cursor.tree) | {""}
        fetched.update(self._fetch(unknown))
        for key in list(fetched):
            top = _top(key, fetched, old_parent, cursor.tree)
            if top:
                affected.add(top)
            if key in old_parent:  # moved away from (or trashed under) its old parent
                affected.add(old_parent[key])
        return affected

    def _members(self, collection_keys: set[str]) -> set[str]:
        """Top-level item keys in these collections (renamed or moved: their paths changed)."""
        members: set[str] = set()
        for key in sorted(collection_keys):
            text = _text(
                self.zot.collection_items_top(key, format="keys", includeTrashed=1, limit=None)
            )
            members.update(text.split())
        return members

    def _subtrees(
        self, affected: set[str], tree: dict[str, list[str]], fetched: dict[str, dict]
    ) -> list[dict]:
        """Objects of the affected items with all their attachments and annotations; `tree`
        is updated in place (an affected item that no longer exists leaves it)."""
        wanted = set(affected)
        for key in affected:
            wanted.update(tree.get(key, ()))
        fetched.update(self._fetch(wanted - fetched.keys()))
        parents = {
            k: fetched[k] for k in affected if k in fetched and _kind(fetched[k]) not in CHILD_TYPES
        }
        live = _live_objects(
            list(parents.values())
            + [o for o in fetched.values() if _kind(o) in ("attachment", "annotation")]
        )
        children = _tree(live)
        for key in affected:
            if key in parents:
                tree[key] = children[key]
            else:
                tree.pop(key, None)
        keep = set(parents) | {c for key in parents for c in children[key]}
        return [o for o in live if o["key"] in keep]

    # -- plumbing

    def _get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx2.Response:
        """One request pyzotero has no method for (conditional GET, `/keys/current`)."""
        assert self.zot.client is not None
        return self.zot.client.get(
            self.base_url + path,
            params=params,
            headers={**self.zot.default_headers(), **(headers or {})},
        )

    def _reset(self) -> None:
        """Forget a failed call's parameters: pyzotero would merge them into the next call."""
        self.zot.url_params = None
        self.zot.links = None

    def _header(self, name: str) -> int | None:
        response = self.zot.request
        return _int(response.headers.get(name)) if response is not None else None

    def _snapshot(
        self,
        items: Iterable[Any],
        all_keys: frozenset[str],
        cursor: str | None,
        incremental: bool,
        warnings: list[str],
    ) -> LibrarySnapshot:
        return LibrarySnapshot(
            items=tuple(items),
            all_keys=all_keys,
            cursor=cursor,
            library=self.library,
            source_name=self.name,
            incremental=incremental,
            warnings=self._warnings + tuple(self._scrub(w) for w in warnings),
        )

    def _where(self) -> str:
        return self.base_url + self.prefix

    def _scrub(self, text: str) -> str:
        """The text with the API key (and anything that looks like it) blanked out."""
        if self._key:
            text = text.replace(self._key, "<api-key>")
        return text

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """Every failure below becomes a SourceError that says what to do — and has no key."""
        try:
            yield
        except SourceError as exc:
            raise SourceError(self._scrub(exc.message), exc.hint) from None
        except HttpFailure as exc:
            raise self._http_error(exc) from None
        except httpx2.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx2.TimeoutException:
            raise SourceError(
                f"{self._where()} did not answer within {TIMEOUT_SECONDS:.0f} s",
                "try again later; check your network connection",
            ) from None
        except (httpx2.HTTPError, PyZoteroError) as exc:
            raise SourceError(
                self._scrub(f"talking to {self._where()} failed: {type(exc).__name__}: {exc}"),
                "try again later; if it persists, check --api-url",
            ) from None
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise SourceError(
                self._scrub(f"{self._where()} did not answer with Zotero API data ({exc})"),
                "check --api-url: it must point at the Zotero API",
            ) from None

    def _unreachable(self, exc: Exception) -> SourceError:
        if self.name == "local":
            return SourceError(
                f"Zotero is not running (nothing answers at {self.base_url})",
                f"start Zotero 7 or later; if it is running, {LOCAL_API_HINT}",
            )
        return SourceError(
            self._scrub(f"cannot reach {self.base_url}: {exc}"),
            "check your network connection (and --api-url if you set it)",
        )

    def _http_error(self, exc: HttpFailure) -> SourceError:
        where = f"{self.base_url}{exc.target}"
        detail = f" ({exc.detail})" if exc.detail else ""
        if exc.status in (401, 403) and self.name == "local":
            message, hint = f"Zotero's local API refused the request ({exc.status})", LOCAL_API_HINT
        elif exc.status in (401, 403):
            message = f"the Zotero API refused the API key for {self.prefix} ({exc.status})"
            hint = (
                f"check on {KEYS_PAGE} that the key exists and may read this library "
                "(a group needs read access under 'Per Group Permissions')"
            )
        elif exc.status == 404:
            message = f"{where} was not found (404)"
            hint = (
                "Zotero 7 or later is needed for the local API"
                if self.name == "local"
                else "check --library-id and --library-type"
            )
        elif exc.status in RETRY_STATUSES:
            waited = f"; it asks to wait {exc.wait:.0f} s" if exc.wait else ""
            message = (
                f"the Zotero API is overloaded or failing: {exc.status} for {where} "
                f"after {exc.attempts} attempt(s){waited}"
            )
            hint = "try again later (zotero.org may be down: see status.zotero.org)"
        else:
            message, hint = f"the Zotero API answered {exc.status} for {where}{detail}", None
        return SourceError(self._scrub(message), hint and self._scrub(hint))


# ── the API key ──────────────────────────────────────────────────────────────────────────────


def read_api_key(config: Config, warnings: list[str]) -> str:
    """`ZOTERO_API_KEY`, else the first line of `api_key_file`; ConfigError when neither."""
    key = os.environ.get("ZOTERO_API_KEY", "").strip()
    if key:
        return key
    path = config.api_key_file
    if path is None:
        raise ConfigError(
            "the web API needs an API key",
            f"create a read-only key on {KEYS_PAGE}, then export ZOTERO_API_KEY=… or put it "
            "in a file named by source.api_key_file (chmod 600)",
        )
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"cannot read api_key_file {path}: {getattr(exc, 'strerror', None) or exc}",
            "check the path in source.api_key_file",
        ) from None
    if not key:
        raise ConfigError(f"api_key_file {path} is empty", f"paste the key from {KEYS_PAGE}")
    if os.name != "nt" and Path(path).stat().st_mode & 0o044:
        warnings.append(f"api_key_file {path} is readable by other users; run: chmod 600 {path}")
    return key


# ── JSON helpers ─────────────────────────────────────────────────────────────────────────────


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _text(value: Any) -> str:
    """pyzotero hands `format=keys` answers over as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _data(obj: dict) -> dict:
    data = obj.get("data")
    return data if isinstance(data, dict) else obj


def _kind(obj: dict) -> str:
    return str(_data(obj).get("itemType", ""))


def _parent(obj: dict) -> str:
    parent = _data(obj).get("parentItem")
    return parent if isinstance(parent, str) else ""


def _trashed(obj: dict) -> bool:
    value = _data(obj).get("deleted")
    return value not in (None, False, 0, "", "0", "false")


def _top(
    key: str, fetched: dict[str, dict], old_parent: dict[str, str], tree: dict[str, list[str]]
) -> str:
    """The regular item an object belongs to (itself, or annotation → attachment → parent)."""
    for _ in range(3):
        obj = fetched.get(key)
        if obj is None:
            return key if key in tree else old_parent.get(key, "")
        kind = _kind(obj)
        if kind == "note":
            return ""
        if kind not in CHILD_TYPES:
            return key
        key = _parent(obj)
        if not key:
            return ""  # a standalone attachment: not a paper
    return ""


def _live_objects(objects: list[dict]) -> list[dict]:
    """Objects as the sqlite source sees them: no notes, no trashed attachments (nor their
    annotations). Trashed *regular* items stay: their notes get `status: deleted-in-zotero`."""
    dropped = {o.get("key") for o in objects if _kind(o) == "attachment" and _trashed(o)}
    return [
        o
        for o in objects
        if _kind(o) != "note"
        and o.get("key") not in dropped
        and not (_kind(o) == "annotation" and _parent(o) in dropped)
    ]


def _live_collections(collections: list[dict]) -> list[dict]:
    """Collections in Zotero's trash (and below them) name no path, as in the sqlite source."""
    trashed = {c.get("key") for c in collections if _trashed(c)}
    parents = {c.get("key"): _data(c).get("parentCollection") for c in collections}

    def in_trash(key: Any) -> bool:
        for _ in range(100):
            if key in trashed:
                return True
            key = parents.get(key)
            if not key:
                return False
        return False

    return [c for c in collections if not in_trash(c.get("key"))]


def _regular_keys(objects: list[dict]) -> list[str]:
    return [str(o["key"]) for o in objects if _kind(o) and _kind(o) not in CHILD_TYPES]


def _tree(objects: list[dict]) -> dict[str, list[str]]:
    """Regular item key → keys of its attachments and their annotations."""
    tree: dict[str, list[str]] = {key: [] for key in _regular_keys(objects)}
    owner: dict[str, str] = {}
    for obj in objects:
        if _kind(obj) == "attachment" and _parent(obj) in tree:
            owner[obj["key"]] = _parent(obj)
            tree[_parent(obj)].append(obj["key"])
    for obj in objects:
        if _kind(obj) == "annotation" and _parent(obj) in owner:
            tree[owner[_parent(obj)]].append(obj["key"])
    return tree


def _moved_collections(collections: list[dict], since: int) -> set[str]:
    """Collections changed since `since` (renamed, moved, trashed) and everything below them:
    the paths of their items changed although the items did not."""
    children: dict[str, list[str]] = {}
    for col in collections:
        parent = _data(col).get("parentCollection")
        if isinstance(parent, str) and parent:
            children.setdefault(parent, []).append(col["key"])
    todo = [c["key"] for c in collections if (_int(c.get("version")) or 0) > since]
    found: set[str] = set()
    while todo:
        key = todo.pop()
        if key not in found:
            found.add(key)
            todo.extend(children.get(key, ()))
    return found
