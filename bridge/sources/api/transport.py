"""Retries and error statuses, below pyzotero: the httpx transport every API request goes
through.

pyzotero builds the URLs, sends the key and follows `Link: rel="next"` pages. Everything about
*what a response means* happens one layer below, in `RetryingTransport` (the httpx client
handed to pyzotero): 429/5xx retries with `Retry-After`/`Backoff` honoured (via tenacity, with
bounded, injectable waits), and every error status turned into one exception type. pyzotero's
own rate-limit handling sleeps for whatever the server asks, unbounded and in real time, and
does not retry 5xx; it never sees such a response here.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx2
import tenacity

from bridge import redact

TIMEOUT_SECONDS = 30.0  # per request (connect, and between two bytes of an answer)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
TRANSIENT_ERRORS = (
    httpx2.TimeoutException,
    httpx2.RemoteProtocolError,
    httpx2.ReadError,
    httpx2.WriteError,
)


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


class RetryingTransport(httpx2.BaseTransport):
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
