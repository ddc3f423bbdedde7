"""The boundary: one library's pyzotero client, and the checks every answer passes before
anything else looks at it.

An answer unusable as a whole (not JSON, an HTML page, the wrong shape) is a `SourceError`
naming the request, the answer's type and first bytes, and what to check; one unreadable
object in a good page is skipped with a warning (`skip`). An object that still has its key
keeps that key in `all_keys` (its note is not marked deleted); an entry without one makes
deletions unknowable, so that read's snapshot has no `all_keys` and no cursor (`snapshot`).

The API key is registered with `bridge.redact` here: every answer's parsed data and every
message built from an answer, a header or a URL is redacted (before any cutting) on its way
out, so neither the key nor a piece of it reaches a note, the state DB, a log or the terminal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import httpx2
from pyzotero import Zotero
from pyzotero.errors import PyZoteroError

from bridge import redact
from bridge.errors import BridgeError, SourceError
from bridge.model import Library, LibrarySnapshot
from bridge.sources.api.answers import (
    describe_response,
    object_problem,
    parse_problem,
    shape_problem,
    short,
)
from bridge.sources.api.objects import KEY_RE, as_int, as_text
from bridge.sources.api.transport import HttpFailure, RetryingTransport, RetryPolicy


class ApiClient:
    """pyzotero over `RetryingTransport` for the web API (`name="web"`) or Zotero's local
    API (`name="local"`), plus what one read skipped (`begin` starts a read afresh)."""

    def __init__(
        self,
        name: str,
        library_id: str,
        library_type: str,
        api_key: str | None,
        api_url: str | None,
        *,
        policy: RetryPolicy,
        library: Library,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.library = library
        if api_key:
            redact.register(api_key)
        self.setup_warnings = warnings  # carried by every snapshot (a key file others can read)
        self.timeout = policy.timeout
        self.transport = RetryingTransport(policy)
        client = httpx2.Client(
            transport=self.transport,
            timeout=policy.timeout,
            follow_redirects=True,
            trust_env=name == "web",  # never send loopback requests through a proxy
        )
        self.zot = Zotero(
            library_id, library_type, api_key or None, local=name == "local", client=client
        )
        if api_url:
            self.zot.endpoint = api_url.rstrip("/")
        self.base_url: str = self.zot.endpoint
        self.prefix = f"/{self.zot.library_type}/{self.zot.library_id}"
        self.begin()

    # -- plumbing

    def get(
        self, path: str, params: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx2.Response:
        """One request pyzotero has no method for (conditional GET, `/keys/current`)."""
        assert self.zot.client is not None
        return self.zot.client.get(
            self.base_url + path,
            params=params,
            headers={**self.zot.default_headers(), **(headers or {})},
        )

    def reset(self) -> None:
        """Forget a failed call's parameters: pyzotero would merge them into the next call."""
        self.zot.url_params = None
        self.zot.links = None

    def begin(self) -> None:
        """Start a read: forget what the last one skipped."""
        self.reset()
        self.skipped: list[str] = []  # one warning per object left out at the boundary
        self.kept: set[str] = set()  # keys of objects that came unreadable: not erased
        self.blind = False  # an object without a usable key: deletions cannot be known

    def where(self) -> str:
        return self.base_url + self.prefix

    def scrub(self, text: str) -> str:
        """The text without the API key, a piece of it, or any other key in a URL."""
        return redact.redact(text)

    def header(self, name: str) -> int | None:
        """A number from a header of the last pyzotero answer (None when absent or odd)."""
        response = self.zot.request
        return as_int(response.headers.get(name)) if response is not None else None

    # -- the boundary: every answer is checked here before anything else looks at it

    def call(self, fetch: Callable[..., Any], what: str, *args: Any, **params: Any) -> Any:
        """A pyzotero call, its answer redacted; one it cannot parse becomes a SourceError."""
        try:
            return redact.redact_data(fetch(*args, **params))
        except (HttpFailure, httpx2.HTTPError, PyZoteroError, BridgeError):
            raise
        except Exception as exc:  # noqa: BLE001 - all that is left is parsing the answer
            self.reset()
            response = self.zot.request
            if response is not None and "content-type" not in response.headers:
                raise self.unusable(what, "it has no Content-Type header") from None
            raise self.unusable(what, parse_problem(exc)) from None

    def json(self, response: httpx2.Response, what: str) -> Any:
        try:
            return redact.redact_data(response.json())
        except (ValueError, RecursionError) as exc:  # also UnicodeDecodeError
            raise self.unusable(what, parse_problem(exc), response) from None

    def objects(self, page: Any, what: str, collection: bool = False) -> list[dict]:
        """The usable objects of one page of a listing; the others are skipped with a warning.

        A page that is not a list, or holds nothing that even looks like an object, is not
        Zotero's answer at all: SourceError.
        """
        if not isinstance(page, list):
            raise self.unusable(what, shape_problem(page))
        if page and not any(isinstance(entry, dict) for entry in page):
            raise self.unusable(
                what, f"a list of {len(page)} entries, none an object (the first is "
                f"{short(page[0])})",
            )  # fmt: skip
        good = []
        for index, entry in enumerate(page):
            problem, key = object_problem(entry, collection)
            if problem is None:
                good.append(entry)
            elif key is None:
                self.skip(f"entry {index + 1} of {what} {problem}", None)
            else:
                self.skip(f"{'collection' if collection else 'object'} {key} in {what}: "
                          f"{problem}", key)  # fmt: skip
        return good

    def keys(self, answer: Any, what: str) -> set[str]:
        """A `format=keys` answer: one key per line, every line a key, or SourceError.

        Half a key list is worse than none: every key missing from it looks erased."""
        if not isinstance(answer, bytes | str):
            raise self.unusable(what, shape_problem(answer, "a text list of keys"))
        lines = as_text(answer).split()
        bad = [line for line in lines if not KEY_RE.match(line)]
        if bad:
            raise self.unusable(
                what, f"{len(bad)} of its {len(lines)} entries are not Zotero keys (the first is "
                f"{short(bad[0])})",
            )  # fmt: skip
        return set(lines)

    def skip(self, problem: str, key: str | None) -> None:
        """Leave one object out. Without its key, no deletion and no cursor can be trusted."""
        if key is None:
            self.blind = True
            self.skipped.append(f"the API sent an unreadable entry: {problem}; skipped")
        else:
            self.kept.add(key)
            self.skipped.append(f"{problem}; skipped, its note is left as it is")

    def unusable(
        self, what: str, problem: str, response: httpx2.Response | None = None
    ) -> SourceError:
        response = response if response is not None else self.zot.request
        described = f" [{describe_response(response)}]" if response is not None else ""
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
            self.scrub(
                f"the Zotero API at {self.base_url} sent an unusable answer to {what}: "
                f"{problem}{described}"
            ),
            hint,
        )

    # -- the snapshot

    def snapshot(
        self,
        items: Iterable[Any],
        all_keys: frozenset[str],
        cursor: str | None,
        incremental: bool,
        warnings: list[str],
    ) -> LibrarySnapshot:
        """The snapshot, honest about what was skipped: a kept key stays in `all_keys`; after an
        entry without a key, `all_keys` and the cursor are unknown (None)."""
        found = [*self.skipped, *warnings]
        known: frozenset[str] | None = all_keys | self.kept
        if self.blind:
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
            incremental=incremental,
            warnings=self.setup_warnings + tuple(dict.fromkeys(self.scrub(w) for w in found)),
        )
