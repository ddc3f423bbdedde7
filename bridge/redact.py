"""One place that keeps secrets out of every message, log line and file the bridge writes.

A server can echo the API key anywhere: in an error body, a header, a redirect URL, even in an
item's title. Every text that came from a server or names a URL passes `redact` before it is
shown, logged or stored, and `snippet` redacts *before* it cuts, so a shortened text cannot
keep a piece of the key that a full-key search would have missed.

What is blanked out:
- every run of 8 or more characters that is a piece of a registered secret (any case): half a
  key echoed back, or a key cut off at the end of a snippet, goes too;
- the value of a `key=`/`api_key=`/`token=` URL parameter and of an `Authorization: Bearer`
  or `Zotero-API-Key` header, whatever the value is (a redirect may carry another key).

Secrets are registered process-wide (`register`) by whoever reads them, so the last lines of
defence (the CLI's error printer, the daemon's log handlers and status) need no access to the
source that knows the key.
"""

from __future__ import annotations

import logging
import re
from typing import Any

__all__ = ["PLACEHOLDER", "register", "redact", "redact_data", "snippet", "RedactingFilter"]

PLACEHOLDER = "<api-key>"
MIN_RUN = 8  # a piece of a secret this long is treated as the secret itself

_PATTERNS = (
    re.compile(r"([?&;](?:key|api_key|apikey|token|access_token)=)[^&#;\s\"'<>]+", re.I),
    re.compile(r"(\bAuthorization\s*[:=]\s*['\"]?(?:Bearer|Basic|token)\s+)[^\s'\",;]+", re.I),
    re.compile(r"(\bZotero-API-Key\s*[:=]\s*['\"]?)[^\s'\",;]+", re.I),
)

_secrets: dict[str, tuple[tuple[str, ...], re.Pattern[str]]] = {}


def register(secret: str) -> None:
    """From now on, `redact` blanks out `secret` and every 8-character piece of it."""
    secret = secret.strip()
    if not secret or secret in _secrets:
        return
    size = min(MIN_RUN, len(secret))
    pieces = sorted({secret[i : i + size] for i in range(len(secret) - size + 1)})
    # a zero-width lookahead finds overlapping pieces: each match marks where one starts
    finder = re.compile("(?=(" + "|".join(map(re.escape, pieces)) + "))", re.IGNORECASE)
    _secrets[secret] = (tuple(p.lower() for p in pieces), finder)


def redact(text: str) -> str:
    """`text` without any registered secret (or piece of one), key parameter or token."""
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + PLACEHOLDER, text)
    if _secrets:
        lowered = text.lower()
        for pieces, finder in _secrets.values():
            if any(piece in lowered for piece in pieces):  # cheap test before the regex
                text = _blank_runs(text, finder)
                lowered = text.lower()
    return text


def snippet(text: str, limit: int) -> str:
    """At most `limit` characters of `text` (plus `…`), redacted *before* it is cut."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


def redact_data(value: Any) -> Any:
    """Parsed JSON (or text, or bytes) with every string redacted, dict keys included.

    Only registered secrets matter here: an item's `url` field may well hold a `token=`
    parameter that is the user's own data, not ours. Raises RecursionError on data nested
    deeper than Python's recursion limit (the caller treats that as an unusable answer).
    """
    if not _secrets:
        return value
    return _walk(value)


def _walk(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_secrets(value)
    if isinstance(value, bytes):
        text = value.decode("utf-8", "surrogateescape")
        cleaned = _redact_secrets(text)
        return value if cleaned == text else cleaned.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        return [_walk(v) for v in value]
    if isinstance(value, dict):
        return {_walk(k): _walk(v) for k, v in value.items()}
    return value


def _redact_secrets(text: str) -> str:
    lowered = text.lower()
    for pieces, finder in _secrets.values():
        if any(piece in lowered for piece in pieces):
            text = _blank_runs(text, finder)
            lowered = text.lower()
    return text


def _blank_runs(text: str, finder: re.Pattern[str]) -> str:
    """Each maximal run of characters covered by a piece of the secret becomes PLACEHOLDER."""
    covered = bytearray(len(text))
    for match in finder.finditer(text):
        start = match.start()
        covered[start : start + len(match.group(1))] = b"\x01" * len(match.group(1))
    out: list[str] = []
    index = 0
    while index < len(text):
        if covered[index]:
            while index < len(text) and covered[index]:
                index += 1
            out.append(PLACEHOLDER)
        else:
            end = covered.find(b"\x01", index)
            end = len(text) if end < 0 else end
            out.append(text[index:end])
            index = end
    return "".join(out)


class RedactingFilter(logging.Filter):
    """A log filter that redacts each record's final message (arguments merged in first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = redact(text)
        return True
