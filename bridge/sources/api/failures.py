"""Every failure below the source, as one `SourceError` that says what to do — and has no key.

`translate_errors(client)` wraps each public call of `ApiSource`: HTTP error statuses that
retries did not cure (`HttpFailure`), a server that cannot be reached or does not answer in
time, pyzotero's own errors, and answers that could not be parsed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from pyzotero.errors import PyZoteroError

from bridge.errors import SourceError
from bridge.sources.api.answers import parse_problem
from bridge.sources.api.client import ApiClient
from bridge.sources.api.key import KEYS_PAGE
from bridge.sources.api.transport import RETRY_STATUSES, HttpFailure

LOCAL_API_HINT = (
    "enable Zotero's local API: Settings → Advanced → Allow other applications on this "
    "computer to communicate with Zotero"
)


@contextmanager
def translate_errors(client: ApiClient) -> Iterator[None]:
    """Every failure below becomes a SourceError that says what to do — and has no key."""
    try:
        yield
    except SourceError as exc:
        hint = exc.hint and client.scrub(exc.hint)
        raise SourceError(client.scrub(exc.message), hint) from None
    except HttpFailure as exc:
        raise _http_error(client, exc) from None
    except httpx2.ConnectError as exc:
        raise _unreachable(client, exc) from None
    except httpx2.TimeoutException:
        attempts = client.transport.attempts
        raise SourceError(
            f"{client.where()} did not answer within {client.timeout:g} s "
            f"({attempts} attempt{'s' if attempts != 1 else ''})",
            "try again later; check your network connection"
            + ("; Zotero may be busy (a large import or sync)" if client.name == "local" else ""),
        ) from None
    except (httpx2.HTTPError, PyZoteroError) as exc:
        raise SourceError(
            client.scrub(f"talking to {client.where()} failed: {type(exc).__name__}: {exc}"),
            "try again later; if it persists, check --api-url",
        ) from None
    except (ValueError, RecursionError, LookupError, TypeError, AttributeError) as exc:
        raise client.unusable("a request", parse_problem(exc)) from None


def _unreachable(client: ApiClient, exc: Exception) -> SourceError:
    if client.name == "local":
        return SourceError(
            f"Zotero is not running (nothing answers at {client.base_url})",
            f"start Zotero 7 or later; if it is running, {LOCAL_API_HINT}",
        )
    return SourceError(
        client.scrub(f"cannot reach {client.base_url}: {exc}"),
        "check your network connection (and --api-url if you set it)",
    )


def _http_error(client: ApiClient, exc: HttpFailure) -> SourceError:
    where = f"{client.base_url}{exc.target}"
    detail = f" ({exc.detail})" if exc.detail else ""
    if exc.status in (401, 403) and client.name == "local":
        message, hint = f"Zotero's local API refused the request ({exc.status})", LOCAL_API_HINT
    elif exc.status in (401, 403):
        message = f"the Zotero API refused the API key for {client.prefix} ({exc.status})"
        hint = (
            f"check on {KEYS_PAGE} that the key exists and may read this library "
            "(a group needs read access under 'Per Group Permissions')"
        )
    elif exc.status == 404:
        message = f"{where} was not found (404)"
        hint = (
            "Zotero 7 or later is needed for the local API"
            if client.name == "local"
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
    return SourceError(client.scrub(message), hint and client.scrub(hint))
