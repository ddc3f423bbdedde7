"""Describing bad answers: a few words about what came instead of Zotero's JSON, enough to
recognise a login page or a proxy's error, without ever quoting the API key.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2

from bridge import redact
from bridge.sources.api.objects import KEY_RE, as_text


def object_problem(entry: Any, collection: bool) -> tuple[str | None, str | None]:
    """(what is wrong with one listed object or None, its key when it has a usable one)."""
    if not isinstance(entry, dict):
        return f"is {short(entry)}, not an object", None
    key = entry.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        return f"has no usable key ({short(key)})", None
    data = entry.get("data")
    if not isinstance(data, dict):
        return f"no `data` object ({short(data)})", key
    if data.get("key", key) != key:
        return f"its data is that of {short(data.get('key'))}", key
    if collection:
        if not isinstance(data.get("name"), str):
            return f"no collection name ({short(data.get('name'))})", key
    elif not isinstance(data.get("itemType"), str) or not data["itemType"]:
        return f"no itemType ({short(data.get('itemType'))})", key
    return None, key


def short(value: Any) -> str:
    """A value as a few words for a message: its type, and its start when it is text."""
    if value is None:
        return "null"
    if isinstance(value, bool | int | float):
        return f"the number {value!r}"
    if isinstance(value, bytes | str):
        return repr(redact.snippet(" ".join(as_text(value).split()), 40))
    if isinstance(value, dict):
        return f"an object with {len(value)} keys"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return f"a {type(value).__name__}"


def shape_problem(value: Any, expected: str = "a JSON list of objects") -> str:
    if isinstance(value, bytes):  # what pyzotero hands over for a non-JSON Content-Type
        return f"expected {expected}, got text that is not JSON"
    return f"expected {expected}, got {short(value)}"


def parse_problem(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(exc, RecursionError):
        return "its JSON is nested too deeply to read"
    if isinstance(exc, json.JSONDecodeError):
        return f"it is not valid JSON ({exc.msg} at character {exc.pos})"
    return f"it is not Zotero API data ({type(exc).__name__}: {short(str(exc))})"


def describe_response(response: httpx2.Response) -> str:
    """`HTTP 200, text/html, 1.2 kB: '<!DOCTYPE html>…'` — enough to recognise a login page."""
    content_type = response.headers.get("content-type") or "no Content-Type"
    try:
        body = response.content
    except httpx2.HTTPError:  # a streamed answer that was not read: no body to show
        return f"HTTP {response.status_code}, {content_type}"
    size = len(body)
    amount = f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{size / 1e3:.1f} kB"
    amount = amount if size >= 1000 else f"{size} bytes"
    return f"HTTP {response.status_code}, {content_type}, {amount}: {short(body[:200])}"
