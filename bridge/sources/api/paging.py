"""Listings: every page of a multi-object request at one library version, and objects asked
for by key.

A listing follows pyzotero's `Link: rel="next"` pages and checks that they belong together:
every page at the same `Last-Modified-Version` and as many objects as `Total-Results` said.
A listing torn by a concurrent change raises `LibraryChanged` (read it again); pages that
never end are a `SourceError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.sources.api.client import ApiClient
from bridge.sources.api.cursor import LibraryChanged

PAGE_SIZE = 100  # the API's maximum `limit`
KEY_BATCH = 50  # the API's maximum number of keys in one `itemKey=` request
MAX_PAGES = 20_000  # 2 million objects: a listing longer than this is a server gone wrong


def listing(
    client: ApiClient,
    fetch: Callable[..., Any],
    what: str,
    *,
    collection: bool = False,
    **params: Any,
) -> tuple[list[dict], int | None]:
    """Every page of a multi-object request, all at one library version.

    The version is None when a page came without a usable `Last-Modified-Version`: then
    nothing tells a torn listing from a whole one, and the caller keeps no cursor.
    """
    zot = client.zot
    page = client.call(fetch, what, limit=PAGE_SIZE, **params)
    objects = client.objects(page, what, collection)
    count = len(page)
    version = client.header("Last-Modified-Version")
    total = client.header("Total-Results")
    followed: set[str] = set()
    while zot.links and zot.links.get("next"):
        link = zot.links["next"]
        if link in followed or len(followed) >= MAX_PAGES:
            raise client.unusable(what, f"its pages never end (the next page is {link})")
        followed.add(link)
        page = client.call(zot.follow, what)
        objects.extend(client.objects(page, what, collection))
        count += len(page)
        page_version = client.header("Last-Modified-Version")
        if page_version is None or version is None:
            version = None
        elif page_version != version:
            raise LibraryChanged
        if total is not None and count > total:
            raise LibraryChanged
    if total is not None and count != total:
        raise LibraryChanged
    return objects, version


def fetch_by_key(client: ApiClient, keys: set[str]) -> dict[str, dict]:
    """Objects by key (trash included), `KEY_BATCH` keys per request."""
    found: dict[str, dict] = {}
    ordered = sorted(keys)
    for start in range(0, len(ordered), KEY_BATCH):
        batch = ",".join(ordered[start : start + KEY_BATCH])
        what = "the items asked for by key"
        page = client.call(client.zot.items, what, itemKey=batch, includeTrashed=1, limit=KEY_BATCH)
        for obj in client.objects(page, what):
            found[obj["key"]] = obj
    return found
