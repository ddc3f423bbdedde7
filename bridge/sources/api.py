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

Every answer passes one boundary before anything else looks at it (`_call`, `_objects`,
`_keys`): an answer unusable as a whole (not JSON, an HTML page, the wrong shape, pages that
never end) is a `SourceError` naming the request, the answer's type and first bytes, and what
to check; one unreadable object in a good page is skipped with a warning. An object that
still has its key keeps that key in `all_keys` (its note is not marked deleted); an entry
without one makes deletions unknowable, so that snapshot has no `all_keys` and no cursor.

The API key never leaves this module: pyzotero sends it as an `Authorization: Bearer` header,
never in a URL (its `key_info()` would put it in one, so `/keys/current` is asked instead). The
key is registered with `bridge.redact`: every answer's parsed data and every message built from
an answer, a header or a URL is redacted (before any cutting) on its way out of this module, so
neither the key nor a piece of it reaches a note, the state DB, a log or the terminal.

Written against pyzotero 1.16 (httpx2 client injectable with `client=`; base URL in the
client's `endpoint` attribute, `http://127.0.0.1:23119/api` with `local=True`).
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import os
import re
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

from bridge import redact
from bridge.config import Config, read_small_file
from bridge.errors import BridgeError, ConfigError, SourceError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.apijson import CHILD_TYPES, is_file_item, items_from_api

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
TIMEOUT_SECONDS = 30.0  # per request (connect, and between two bytes of an answer)
MAX_PAGES = 20_000  # 2 million objects: a listing longer than this is a server gone wrong
KEY_RE = re.compile(r"^[A-Z0-9]{8}$")  # Zotero object keys: 8 of [23456789A-Z]
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
    than `max_wait` is not waited for: the sync stops and says when to try again. `timeout`
    is how long one try waits for the server (to connect, and between two parts of its
    answer); it replaces pyzotero's own fixed 30 s. `sleep` is injectable so tests can record
    waits instead of spending them.
    """

    attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 30.0
    max_wait: float = 300.0
    timeout: float = TIMEOUT_SECONDS
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
    ) -> None:
        self.policy = policy
        self.inner = inner or httpx2.HTTPTransport()
        self.attempts = 0  # tries the last request took (for messages about giving up)
        self._resume_at = 0.0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self._wait_out_backoff()
        # pyzotero passes its own fixed timeout with every request; ours wins
        request.extensions["timeout"] = httpx2.Timeout(self.policy.timeout).as_dict()
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
        try:
            response = retrying(self.inner.handle_request, request)
        finally:
            self.attempts = retrying.statistics.get("attempt_number", 1)
        self._note_backoff(response)
        if response.status_code >= 400:
            raise self._failure(request, response, self.attempts)
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
        try:  # a server may echo the key: redacted before it is cut
            detail = redact.snippet(response.read().decode("utf-8", "replace").strip(), 300)
        except httpx2.HTTPError:
            detail = ""
        finally:
            response.close()
        target = redact.redact(request.url.raw_path.decode("ascii", "replace"))
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
        if self._key:
            redact.register(self._key)
        self._warnings = tuple(warnings)
        policy = retry or DEFAULT_RETRY
        self._timeout = policy.timeout
        self._transport = _RetryingTransport(policy)
        client = httpx2.Client(
            transport=self._transport,
            timeout=policy.timeout,
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
        self._begin()

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
        self._begin()
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
                if snapshot is not None:
                    return snapshot
                self._begin()  # what the incremental attempt found is not the full read's
            return self._read_full(warnings)

    def key_info(self) -> dict[str, Any]:
        """What `/keys/current` says about the API key (web only), without the key itself."""
        with self._translate_errors():
            response = self._get("/keys/current")
            info = self._json(response, "the API key check")
            if not isinstance(info, dict):
                raise self._unusable("the API key check", "not a JSON object", response)
        info.pop("key", None)
        return info

    def library_summary(self) -> tuple[int, int | None]:
        """(number of top-level items, library version), from one cheap request."""
        with self._translate_errors():
            response = self._get(f"{self.prefix}/items/top", {"limit": 1, "format": "json"})
            total = _int(response.headers.get("Total-Results"))
            if total is None:
                page = self._json(response, "the item list")
                if not isinstance(page, list):
                    raise self._unusable("the item list", _shape_problem(page), response)
                total = len(page)
        return total, _int(response.headers.get("Last-Modified-Version"))

    # -- full reads

    def _read_everything(self) -> tuple[list[dict], list[dict], int | None]:
        """Every item object (trash included) and collection, read at one library version."""
        for _ in range(READ_ATTEMPTS):
            try:
                objects, version = self._listing(self.zot.items, "the item list", includeTrashed=1)
                collections, col_version = self._listing(
                    self.zot.collections, "the collection list", collection=True
                )
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
            tree = _tree(live)
            for key in self._kept:  # unreadable now, but its note must not look erased later
                tree.setdefault(key, [])
            cursor = _Cursor(version, tree, [c["key"] for c in collections]).encode()
        else:
            warnings.append(
                "the API sent no usable Last-Modified-Version header, so the next sync reads "
                "the whole library again"
            )
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

    def _listing(
        self, fetch: Callable[..., Any], what: str, *, collection: bool = False, **params: Any
    ) -> tuple[list[dict], int | None]:
        """Every page of a multi-object request, all at one library version.

        The version is None when a page came without a usable `Last-Modified-Version`: then
        nothing tells a torn listing from a whole one, and the caller keeps no cursor.
        """
        page = self._call(fetch, what, limit=PAGE_SIZE, **params)
        objects = self._objects(page, what, collection)
        count = len(page)
        version = self._header("Last-Modified-Version")
        total = self._header("Total-Results")
        followed: set[str] = set()
        while self.zot.links and self.zot.links.get("next"):
            link = self.zot.links["next"]
            if link in followed or len(followed) >= MAX_PAGES:
                raise self._unusable(what, f"its pages never end (the next page is {link})")
            followed.add(link)
            page = self._call(self.zot.follow, what)
            objects.extend(self._objects(page, what, collection))
            count += len(page)
            page_version = self._header("Last-Modified-Version")
            if page_version is None or version is None:
                version = None
            elif page_version != version:
                raise _LibraryChanged
            if total is not None and count > total:
                raise _LibraryChanged
        if total is not None and count != total:
            raise _LibraryChanged
        return objects, version

    # -- incremental reads (web)

    def _read_changes(self, cursor: _Cursor) -> LibrarySnapshot | None:
        """What changed since the cursor; None when only a full read can tell."""
        probe = self._changed_versions(cursor.version)
        if probe is None:  # 304: the library version has not moved
            return self._snapshot((), frozenset(cursor.tree), cursor.encode(), True, [])
        changed, version = probe
        collections, _ = self._listing(self.zot.collections, "the collection list", collection=True)
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
        known_children = cursor.child_parents()
        for key in self._kept - deleted:  # unreadable now; its note must not look erased
            if key not in known_children:
                tree.setdefault(key, [])
        warnings: list[str] = []
        if version is None:
            version = cursor.version  # ask again from where we know: nothing is skipped
            warnings.append(
                "the API sent no usable Last-Modified-Version header; changes are read again "
                "next time"
            )
        items = items_from_api(objects, _live_collections(collections), self.library, warnings)
        new_cursor = _Cursor(version, tree, list(current))
        return self._snapshot(items, frozenset(tree), new_cursor.encode(), True, warnings)

    def _changed_versions(self, since: int) -> tuple[dict[str, Any], int | None] | None:
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
        what = "the list of changed items"
        body = self._json(response, what)
        if not isinstance(body, dict):
            raise self._unusable(what, _shape_problem(body, "a JSON object"), response)
        changed = {}
        for key, object_version in body.items():
            if KEY_RE.match(key):
                changed[key] = object_version
            else:
                self._skip(f"{what} names {_short(key)}, which is not a Zotero key", None)
        return changed, version

    def _deleted_keys(self, cursor: _Cursor) -> set[str]:
        """Item keys erased since the cursor: `/deleted`, or a full key comparison on 409."""
        what = "the list of deleted objects"
        try:
            body = self._call(self.zot.deleted, what, since=cursor.version)
        except HttpFailure as exc:
            if exc.status != 409:
                raise
            self._reset()
        else:
            listed = body.get("items", []) if isinstance(body, dict) else None
            if not isinstance(listed, list):
                raise self._unusable(what, _shape_problem(body, "a JSON object with `items`"))
            deleted = set()
            for key in listed:
                if isinstance(key, str) and KEY_RE.match(key):
                    deleted.add(key)
                else:
                    self._skip(f"{what} names {_short(key)}, which is not a Zotero key", None)
            return deleted
        existing = self._keys(
            self._call(self.zot.items, "the list of all item keys", format="keys",
                       includeTrashed=1, limit=None),
            "the list of all item keys",
        )  # fmt: skip
        known = set(cursor.tree) | set(cursor.child_parents())
        return known - existing

    def _fetch_changed(self, since: int, keys: set[str]) -> dict[str, dict]:
        """The changed objects: by key when few, else as one `since=` listing (100 a page
        instead of 50); a listing torn by a concurrent change falls back to keys."""
        if len(keys) > 2 * KEY_BATCH:
            try:
                objects, _ = self._listing(
                    self.zot.items, "the list of changed items", since=since, includeTrashed=1
                )
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
            what = "the items asked for by key"
            page = self._call(
                self.zot.items, what, itemKey=batch, includeTrashed=1, limit=KEY_BATCH
            )
            for obj in self._objects(page, what):
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
            what = f"the items of collection {key}"
            answer = self._call(
                self.zot.collection_items_top, what, key, format="keys", includeTrashed=1,
                limit=None,
            )  # fmt: skip
            members |= self._keys(answer, what)
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
            k: fetched[k]
            for k in affected
            if k in fetched and (_kind(fetched[k]) not in CHILD_TYPES or is_file_item(fetched[k]))
        }
        kids = {
            o["key"]: o
            for o in fetched.values()
            if _kind(o) in ("attachment", "annotation", "note") and o["key"] not in parents
        }
        live = _live_objects([*parents.values(), *kids.values()])
        children = _tree(live)
        for key in affected:
            if key in parents:
                tree[key] = children[key]
            elif key not in self._kept:  # gone (a kept key only came back unreadable)
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

    def _begin(self) -> None:
        """Start a read: forget what the last one skipped."""
        self._reset()
        self._skipped: list[str] = []  # one warning per object left out at the boundary
        self._kept: set[str] = set()  # keys of objects that came unreadable: not erased
        self._blind = False  # an object without a usable key: deletions cannot be known

    # -- the boundary: every answer is checked here before anything else looks at it

    def _call(self, fetch: Callable[..., Any], what: str, *args: Any, **params: Any) -> Any:
        """A pyzotero call, its answer redacted; one it cannot parse becomes a SourceError."""
        try:
            return redact.redact_data(fetch(*args, **params))
        except (HttpFailure, httpx2.HTTPError, PyZoteroError, BridgeError):
            raise
        except Exception as exc:  # noqa: BLE001 - all that is left is parsing the answer
            self._reset()
            response = self.zot.request
            if response is not None and "content-type" not in response.headers:
                raise self._unusable(what, "it has no Content-Type header") from None
            raise self._unusable(what, _parse_problem(exc)) from None

    def _json(self, response: httpx2.Response, what: str) -> Any:
        try:
            return redact.redact_data(response.json())
        except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError
            raise self._unusable(what, _parse_problem(exc), response) from None

    def _objects(self, page: Any, what: str, collection: bool = False) -> list[dict]:
        """The usable objects of one page of a listing; the others are skipped with a warning.

        A page that is not a list, or holds nothing that even looks like an object, is not
        Zotero's answer at all: SourceError.
        """
        if not isinstance(page, list):
            raise self._unusable(what, _shape_problem(page))
        if page and not any(isinstance(entry, dict) for entry in page):
            raise self._unusable(
                what, f"a list of {len(page)} entries, none an object (the first is "
                f"{_short(page[0])})",
            )  # fmt: skip
        good = []
        for index, entry in enumerate(page):
            problem, key = _object_problem(entry, collection)
            if problem is None:
                good.append(entry)
            elif key is None:
                self._skip(f"entry {index + 1} of {what} {problem}", None)
            else:
                self._skip(f"{'collection' if collection else 'object'} {key} in {what}: "
                           f"{problem}", key)  # fmt: skip
        return good

    def _keys(self, answer: Any, what: str) -> set[str]:
        """A `format=keys` answer: one key per line, every line a key, or SourceError.

        Half a key list is worse than none: every key missing from it looks erased."""
        if not isinstance(answer, bytes | str):
            raise self._unusable(what, _shape_problem(answer, "a text list of keys"))
        lines = _text(answer).split()
        bad = [line for line in lines if not KEY_RE.match(line)]
        if bad:
            raise self._unusable(
                what, f"{len(bad)} of its {len(lines)} entries are not Zotero keys (the first is "
                f"{_short(bad[0])})",
            )  # fmt: skip
        return set(lines)

    def _skip(self, problem: str, key: str | None) -> None:
        """Leave one object out. Without its key, no deletion and no cursor can be trusted."""
        if key is None:
            self._blind = True
            self._skipped.append(f"the API sent an unreadable entry: {problem}; skipped")
        else:
            self._kept.add(key)
            self._skipped.append(f"{problem}; skipped, its note is left as it is")

    def _unusable(
        self, what: str, problem: str, response: httpx2.Response | None = None
    ) -> SourceError:
        response = response if response is not None else self.zot.request
        described = f" [{_describe_response(response)}]" if response is not None else ""
        if self.name == "local":
            hint = (
                "check that --api-url points at Zotero's local API "
                "(http://127.0.0.1:23119/api) and that Zotero 7 or later is running; "
                "if nothing is wrong there, try again in a moment"
            )
        else:
            hint = (
                "check --api-url (the Zotero web API is https://api.zotero.org) and that no "
                "proxy, firewall or Wi-Fi login page answers in its place; otherwise the "
                "server had a bad moment: try again later"
            )
        return SourceError(
            self._scrub(
                f"the Zotero API at {self.base_url} sent an unusable answer to {what}: "
                f"{problem}{described}"
            ),
            hint,
        )

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
        """The snapshot, honest about what was skipped: a kept key stays in `all_keys`; after an
        entry without a key, `all_keys` and the cursor are unknown (None)."""
        found = [*self._skipped, *warnings]
        known: frozenset[str] | None = all_keys | self._kept
        if self._blind:
            known, cursor = None, None
            found.append(
                "some entries had no usable key, so no note is marked deleted-in-zotero this "
                "time and the next sync asks for the same changes again"
            )
        return LibrarySnapshot(
            items=tuple(items),
            all_keys=known,
            cursor=cursor,
            library=self.library,
            source_name=self.name,
            incremental=incremental,
            warnings=self._warnings + tuple(dict.fromkeys(self._scrub(w) for w in found)),
        )

    def _where(self) -> str:
        return self.base_url + self.prefix

    def _scrub(self, text: str) -> str:
        """The text without the API key, a piece of it, or any other key in a URL."""
        return redact.redact(text)

    @contextmanager
    def _translate_errors(self) -> Iterator[None]:
        """Every failure below becomes a SourceError that says what to do — and has no key."""
        try:
            yield
        except SourceError as exc:
            hint = exc.hint and self._scrub(exc.hint)
            raise SourceError(self._scrub(exc.message), hint) from None
        except HttpFailure as exc:
            raise self._http_error(exc) from None
        except httpx2.ConnectError as exc:
            raise self._unreachable(exc) from None
        except httpx2.TimeoutException:
            attempts = self._transport.attempts
            raise SourceError(
                f"{self._where()} did not answer within {self._timeout:g} s "
                f"({attempts} attempt{'s' if attempts != 1 else ''})",
                "try again later; check your network connection"
                + ("; Zotero may be busy (a large import or sync)" if self.name == "local" else ""),
            ) from None
        except (httpx2.HTTPError, PyZoteroError) as exc:
            raise SourceError(
                self._scrub(f"talking to {self._where()} failed: {type(exc).__name__}: {exc}"),
                "try again later; if it persists, check --api-url",
            ) from None
        except (ValueError, RecursionError, LookupError, TypeError, AttributeError) as exc:
            raise self._unusable("a request", _parse_problem(exc)) from None

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
    try:  # bounded and non-blocking: the path may name a FIFO or a device
        key = read_small_file(Path(path), 4096, "api_key_file").strip()
    except ConfigError as exc:
        raise ConfigError(exc.message, "check the path in source.api_key_file") from None
    if not key:
        raise ConfigError(f"api_key_file {path} is empty", f"paste the key from {KEYS_PAGE}")
    if os.name != "nt" and Path(path).stat().st_mode & 0o044:
        warnings.append(f"api_key_file {path} is readable by other users; run: chmod 600 {path}")
    return key


# ── JSON helpers ─────────────────────────────────────────────────────────────────────────────


def _int(value: Any) -> int | None:
    """A version or count from a header or a field; None for anything else (negatives too)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number >= 0 else None


def _text(value: Any) -> str:
    """pyzotero hands `format=keys` answers over as bytes."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


# ── describing bad answers ───────────────────────────────────────────────────────────────────


def _object_problem(entry: Any, collection: bool) -> tuple[str | None, str | None]:
    """(what is wrong with one listed object or None, its key when it has a usable one)."""
    if not isinstance(entry, dict):
        return f"is {_short(entry)}, not an object", None
    key = entry.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        return f"has no usable key ({_short(key)})", None
    data = entry.get("data")
    if not isinstance(data, dict):
        return f"no `data` object ({_short(data)})", key
    if data.get("key", key) != key:
        return f"its data is that of {_short(data.get('key'))}", key
    if collection:
        if not isinstance(data.get("name"), str):
            return f"no collection name ({_short(data.get('name'))})", key
    elif not isinstance(data.get("itemType"), str) or not data["itemType"]:
        return f"no itemType ({_short(data.get('itemType'))})", key
    return None, key


def _short(value: Any) -> str:
    """A value as a few words for a message: its type, and its start when it is text."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return f"the number {value!r}"
    if isinstance(value, bytes | str):
        return repr(redact.snippet(" ".join(_text(value).split()), 40))
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def _shape_problem(value: Any, expected: str = "a JSON list of objects") -> str:
    if isinstance(value, bytes):  # what pyzotero hands over for a non-JSON Content-Type
        return f"expected {expected}, got text that is not JSON"
    return f"expected {expected}, got {_short(value)}"


def _parse_problem(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, RecursionError):
        return "its JSON is nested too deeply to read"
    if isinstance(exc, json.JSONDecodeError):
        return f"it is not valid JSON ({exc.msg} at character {exc.pos})"
    return f"it is not Zotero API data ({type(exc).__name__}: {_short(str(exc))})"


def _describe_response(response: httpx2.Response) -> str:
    """`HTTP 200, text/html, 1.2 kB: '<!DOCTYPE html>…'` — enough to recognise a login page."""
    content_type = response.headers.get("content-type") or "no Content-Type"
    try:
        body = response.content
    except httpx2.HTTPError:  # a streamed answer that was not read: no body to show
        return f"HTTP {response.status_code}, {content_type}"
    size = len(body)
    amount = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    amount = amount if size >= 1000 else f"{size} bytes"
    return f"HTTP {response.status_code}, {content_type}, {amount}: {_short(body[:200])}"


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
        if kind not in CHILD_TYPES or is_file_item(obj):
            return key
        key = _parent(obj)
        if not key:
            return ""  # a standalone note, or a standalone attachment that is not a file
    return ""


def _live_objects(objects: list[dict]) -> list[dict]:
    """Objects as the sqlite source sees them: no standalone or trashed notes, no trashed
    child attachments (nor their annotations). Trashed *regular* items (and standalone
    files) stay: their notes get `status: deleted-in-zotero`."""
    dropped = {
        o.get("key")
        for o in objects
        if _kind(o) == "attachment" and _trashed(o) and not is_file_item(o)
    }
    return [
        o
        for o in objects
        if not (_kind(o) == "note" and (not _parent(o) or _trashed(o)))
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
    """Keys of the items that get notes: regular items and standalone files."""
    return [
        str(o["key"])
        for o in objects
        if (_kind(o) and _kind(o) not in CHILD_TYPES) or is_file_item(o)
    ]


def _tree(objects: list[dict]) -> dict[str, list[str]]:
    """Item key → keys of its attachments, their annotations and its child notes (a
    standalone file owns its own annotations)."""
    tree: dict[str, list[str]] = {key: [] for key in _regular_keys(objects)}
    owner: dict[str, str] = {key: key for key in tree}
    for obj in objects:
        if _kind(obj) in ("attachment", "note") and _parent(obj) in tree:
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
