"""The web/local API source against a real HTTP server speaking Zotero's API.

`FakeZotero` is a small but faithful Zotero API server (pytest-httpserver): object versions,
`since=`, `format=json|keys|versions`, `itemKey=`, `includeTrashed=`, `/deleted` (with 409 when
`since` is too old), `If-Modified-Since-Version` → 304, `limit`/`start` pages with `Link` and
`Total-Results`, auth by API key, and injectable faults (429, 500, `Backoff`). The source is
driven through pyzotero exactly as in production; only the base URL differs.
"""

from __future__ import annotations

import json
import re
import sqlite3
import stat
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bridge import sources
from bridge.cli import main
from bridge.config import Config
from bridge.errors import ConfigError, SourceError
from bridge.model import Library
from bridge.sources import api
from bridge.sources.api import ApiSource, RetryPolicy
from bridge.sync import SyncOptions, sync
from tests.helpers import zkey

KEY = "sEcReTkEy9876543210abcd"  # what ZOTERO_API_KEY holds in these tests
STAMP = "2024-03-12T09:15:22Z"


# ── a Zotero API server ──────────────────────────────────────────────────────────────────────


class FakeZotero:
    """Zotero's API for one library, over a real HTTP server."""

    def __init__(
        self,
        server: HTTPServer,
        *,
        prefix: str = "/users/1",
        key: str | None = KEY,
        page_cap: int = 100,
        library: dict[str, Any] | None = None,
    ) -> None:
        self.server = server
        self.prefix = prefix
        self.key = key
        self.page_cap = page_cap
        self.library = library or {"type": "user", "id": 1, "name": "tester"}
        self.version = 0
        self.objects: dict[str, dict] = {}
        self.collections: dict[str, dict] = {}
        self.deleted_items: dict[str, int] = {}
        self.deleted_collections: dict[str, int] = {}
        self.deleted_floor = 0  # /deleted?since below this answers 409
        self.faults: list[Response] = []  # served first, one per request
        self.forbidden = False  # every request answers 403 (a disabled local API)
        self.on_request: Any = None  # callback(self, path) before answering
        self.tamper: Any = None  # callback(path, args, response) -> a response to send instead
        self.mangle: dict[str, Any] = {}  # key -> what listings send instead of that object
        self.ignore_limit = False  # send every object in one page, whatever `limit` asks
        self.log: list[tuple[str, dict[str, str], dict[str, str]]] = []
        server.expect_request(re.compile(".*")).respond_with_handler(self.handle)

    @property
    def url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    # -- editing the library (each edit is one library version, as a sync upload is)

    def bump(self) -> int:
        self.version += 1
        return self.version

    def put(self, *datas: dict) -> None:
        version = self.bump()
        for data in datas:
            data["version"] = version
            self.objects[data["key"]] = data

    def edit(self, key: str, **fields: Any) -> None:
        data = self.objects[key]
        data.update(fields)
        data["dateModified"] = "2024-04-01T10:00:00Z"
        self.put(data)

    def erase(self, *keys: str) -> None:
        version = self.bump()
        for key in keys:
            self.objects.pop(key)
            self.deleted_items[key] = version

    def put_collection(self, key: str, name: str, parent: str | bool = False) -> None:
        version = self.bump()
        self.collections[key] = {
            "key": key, "version": version, "name": name, "parentCollection": parent,
            "relations": {},
        }  # fmt: skip

    # -- the HTTP side

    def requests(self, part: str = "") -> list[tuple[str, dict[str, str], dict[str, str]]]:
        return [r for r in self.log if part in r[0]]

    def handle(self, request: Request) -> Response:
        args = {k: v for k, v in request.args.items()}
        self.log.append((request.path, args, dict(request.headers)))
        if self.on_request:
            self.on_request(self, request.path)
        if self.faults:
            return self.faults.pop(0)
        if self.forbidden:
            return Response("Local API is not enabled", 403)
        if self.key and request.headers.get("Authorization") != f"Bearer {self.key}":
            return Response("Forbidden", 403)
        if request.path == "/keys/current":
            return self._json(
                {"key": self.key, "userID": 1, "username": "tester",
                 "access": {"user": {"library": True, "files": True}}},
            )  # fmt: skip
        if not request.path.startswith(self.prefix + "/"):
            return Response("Not found", 404)
        response = self._route(request, request.path[len(self.prefix) :], args)
        if self.tamper:
            response = self.tamper(request.path, args, response)
        return response

    def _route(self, request: Request, rest: str, args: dict[str, str]) -> Response:
        if rest == "/deleted":
            since = int(args.get("since", "-1"))
            if since < self.deleted_floor:
                return Response("'since' value too old", 409)
            body = {
                "items": [k for k, v in self.deleted_items.items() if v > since],
                "collections": [k for k, v in self.deleted_collections.items() if v > since],
                "searches": [], "tags": [], "settings": [],
            }  # fmt: skip
            return self._json(body)
        if rest == "/collections":
            cols = [self._wrap_collection(c) for c in self.collections.values()]
            return self._listing(request, args, cols)
        member = re.fullmatch(r"/collections/([A-Z0-9]+)/items/top", rest)
        if rest in ("/items", "/items/top") or member:
            objs = self._select(args, top=rest != "/items", collection=member and member[1])
            return self._listing(request, args, objs)
        return Response("Not found", 404)

    def _select(self, args: dict[str, str], *, top: bool, collection: str | None) -> list[dict]:
        objs = list(self.objects.values())
        if top:
            objs = [o for o in objs if not o.get("parentItem")]
        if collection:
            objs = [o for o in objs if collection in o.get("collections", [])]
        if args.get("includeTrashed") != "1":
            objs = [o for o in objs if not o.get("deleted")]
        if "since" in args:
            objs = [o for o in objs if o["version"] > int(args["since"])]
        if "itemKey" in args:
            wanted = set(args["itemKey"].split(","))
            objs = [o for o in objs if o["key"] in wanted]
        return [self.mangle[o["key"]] if o["key"] in self.mangle else self._wrap(o) for o in objs]

    def _listing(self, request: Request, args: dict[str, str], objs: list[dict]) -> Response:
        headers = {"Last-Modified-Version": str(self.version), "Total-Results": str(len(objs))}
        condition = request.headers.get("If-Modified-Since-Version")
        if condition is not None and int(condition) >= self.version:
            return Response(status=304, headers=headers)
        fmt = args.get("format", "json")
        if fmt == "keys":
            body = "\n".join(o["key"] for o in objs) + "\n"
            return Response(body, 200, headers, content_type="text/plain")
        if fmt == "versions":
            return self._json({o["key"]: o["version"] for o in objs}, headers)
        start = int(args.get("start", "0"))
        limit = (
            len(objs) or 1
            if self.ignore_limit
            else min(int(args.get("limit", "25")), self.page_cap)
        )
        page = objs[start : start + limit]
        if start + limit < len(objs):
            nxt = {**args, "start": str(start + limit), "limit": str(limit)}
            last = {**args, "start": str((len(objs) - 1) // limit * limit), "limit": str(limit)}
            base = self.url + request.path
            headers["Link"] = (
                f'<{base}?{urlencode(nxt)}>; rel="next", <{base}?{urlencode(last)}>; rel="last"'
            )
        return self._json(page, headers)

    def _wrap(self, data: dict) -> dict:
        meta: dict[str, Any] = {}
        creators = data.get("creators")
        if isinstance(creators, list) and creators and isinstance(creators[0], dict):
            meta["creatorSummary"] = creators[0].get("lastName", "")
        return {
            "key": data["key"],
            "version": data["version"],
            "library": self.library,
            "links": {"self": {"href": f"{self.url}{self.prefix}/items/{data['key']}"}},
            "meta": meta,
            "data": data,
        }

    def _wrap_collection(self, data: dict) -> dict:
        meta = {"numCollections": 0, "numItems": 0}
        return {"key": data["key"], "version": data["version"], "library": self.library,
                "links": {}, "meta": meta, "data": data}  # fmt: skip

    def _json(self, body: Any, headers: dict[str, str] | None = None) -> Response:
        headers = {"Last-Modified-Version": str(self.version), **(headers or {})}
        return Response(json.dumps(body), 200, headers, content_type="application/json")


# ── Zotero JSON builders ─────────────────────────────────────────────────────────────────────


def item(
    key: str,
    title: str,
    *,
    item_type: str = "journalArticle",
    creators: list[dict] | None = None,
    tags: list[str] = (),  # type: ignore[assignment]
    collections: list[str] = (),  # type: ignore[assignment]
    related: list[str] = (),  # type: ignore[assignment]
    **fields: Any,
) -> dict:
    """A regular item's `data`, with the empty fields Zotero always sends."""
    return {
        "key": key, "version": 0, "itemType": item_type, "title": title,
        "creators": creators if creators is not None
        else [{"creatorType": "author", "firstName": "Ada", "lastName": "Lovelace"}],
        "abstractNote": "", "publicationTitle": "", "volume": "", "date": "2016",
        "DOI": "", "url": "", "extra": "",
        "tags": [{"tag": t} for t in tags], "collections": list(collections),
        "relations": {"dc:relation": [f"http://zotero.org/users/1/items/{k}" for k in related]}
        if related else {},
        "dateAdded": STAMP, "dateModified": STAMP,
        **fields,
    }  # fmt: skip


def attachment(key: str, parent: str, filename: str = "paper.pdf", **fields: Any) -> dict:
    return {
        "key": key, "version": 0, "itemType": "attachment", "parentItem": parent,
        "linkMode": "imported_file", "title": "Full Text PDF", "accessDate": "", "url": "",
        "note": "", "contentType": "application/pdf", "charset": "", "filename": filename,
        "md5": None, "mtime": None, "tags": [], "relations": {},
        "dateAdded": STAMP, "dateModified": STAMP, **fields,
    }  # fmt: skip


def annotation(key: str, att: str, text: str, *, page: int = 1, **fields: Any) -> dict:
    position = json.dumps({"pageIndex": page - 1, "rects": [[100.5, 200.25, 300.75, 212.5]]},
                          separators=(",", ":"))  # fmt: skip
    return {
        "key": key, "version": 0, "itemType": "annotation", "parentItem": att,
        "annotationType": "highlight", "annotationText": text, "annotationComment": "",
        "annotationColor": "#ffd400", "annotationPageLabel": str(page),
        "annotationSortIndex": f"{page - 1:05d}|000100|00200", "annotationPosition": position,
        "tags": [], "relations": {}, "dateAdded": STAMP, "dateModified": STAMP, **fields,
    }  # fmt: skip


def small_library(fake: FakeZotero) -> None:
    """Three papers (one with a PDF and two highlights), a collection, a standalone note."""
    fake.put_collection("COLL2222", "Vision")
    fake.put(
        item("AAAA2222", "Deep Residual Learning", collections=["COLL2222"], tags=["cnn"],
             citationKey="he2016deep"),
        attachment("ATT22222", "AAAA2222"),
        annotation("ANN22222", "ATT22222", "residual functions", page=2),
        annotation("ANN33333", "ATT22222", "shortcut connections", page=3,
                   annotationColor="#2ea8e5"),
        item("BBBB2222", "Highway Networks", extra="Citation Key: srivastava2015highway"),
        item("CCCC2222", "Batch Normalization", citationKey="ioffe2015batch"),
        {"key": "NOTE2222", "version": 0, "itemType": "note", "note": "<p>hi</p>",
         "tags": [], "collections": [], "relations": {}, "dateAdded": STAMP,
         "dateModified": STAMP},
    )  # fmt: skip


# ── fixtures and helpers ─────────────────────────────────────────────────────────────────────


class Sleeps(list):
    """A `sleep` that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(round(seconds, 3))


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeZotero:
    return FakeZotero(httpserver)


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ZOTERO_API_KEY", KEY)
    return KEY


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> Sleeps:
    """Retries in every source (also those built from a config) record their waits."""
    recorded = Sleeps()
    policy = RetryPolicy(attempts=4, base_delay=0.5, max_wait=60.0, sleep=recorded)
    monkeypatch.setattr(api, "DEFAULT_RETRY", policy)
    return recorded


def web_config(vault: Path, fake: FakeZotero, **kwargs: Any) -> Config:
    vault.mkdir(exist_ok=True)
    return Config(vault=vault, source="web", library_id="1", api_url=fake.url, **kwargs)


def web_source(fake: FakeZotero, **kwargs: Any) -> ApiSource:
    return ApiSource("web", "1", "user", KEY, fake.url, **kwargs)


def papers(vault: Path) -> dict[str, str]:
    return {p.name: p.read_text("utf-8") for p in sorted((vault / "Papers").glob("*.md"))}


def every_byte(root: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


# ── full and incremental web syncs ───────────────────────────────────────────────────────────


def test_full_sync_writes_every_paper(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    fake.page_cap = 2  # force Link: rel="next" paging over the 7 objects
    small_library(fake)
    result = sync(web_config(tmp_path / "vault", fake))
    assert result.ok and result.counts()["created"] == 3
    notes = papers(tmp_path / "vault")
    assert set(notes) == {"he2016deep.md", "srivastava2015highway.md", "ioffe2015batch.md"}
    he = notes["he2016deep.md"]
    assert "residual functions" in he and "shortcut connections" in he
    assert "^ann22222" in he.lower() and "zotero://open-pdf/library/items/ATT22222" in he
    assert "Vision" in he
    item_pages = [r for r in fake.requests("/users/1/items") if r[1].get("format") != "versions"]
    assert len(item_pages) == 4 and all(r[1]["includeTrashed"] == "1" for r in item_pages)
    assert all(r[2]["Authorization"] == f"Bearer {KEY}" for r in fake.log)


def test_snapshot_model(fake: FakeZotero) -> None:
    small_library(fake)
    snapshot = web_source(fake).read()
    by_key = {i.key: i for i in snapshot.items}
    assert snapshot.all_keys == {"AAAA2222", "BBBB2222", "CCCC2222"}
    assert not snapshot.incremental
    he = by_key["AAAA2222"]
    assert he.citation_key == "he2016deep" and he.collections == ("Vision",)
    assert [a.text for a in he.annotations] == ["residual functions", "shortcut connections"]
    assert [a.color for a in he.annotations] == ["#ffd400", "#2ea8e5"]
    assert he.attachments[0].path == "storage:paper.pdf"
    assert by_key["BBBB2222"].citation_key == "srivastava2015highway"


def test_incremental_sync_requests_only_changes(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    before = fake.version
    fake.log.clear()
    fake.edit("BBBB2222", title="Highway Networks, revised")
    result = sync(config)
    assert result.counts()["updated"] == 1 and result.counts()["created"] == 0
    assert "Highway Networks, revised" in papers(tmp_path / "vault")["srivastava2015highway.md"]
    probe = fake.log[0]
    assert probe[1]["since"] == str(before) and probe[1]["format"] == "versions"
    assert probe[2]["If-Modified-Since-Version"] == str(before)
    item_requests = [r for r in fake.requests("/items") if r is not probe]
    assert item_requests and all("itemKey" in r[1] for r in item_requests)
    assert {k for r in item_requests for k in r[1]["itemKey"].split(",")} == {"BBBB2222"}
    assert fake.requests("/deleted")[0][1]["since"] == str(before)


def test_annotation_edit_brings_its_paper(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    fake.log.clear()
    fake.edit("ANN33333", annotationText="identity shortcuts", annotationComment="key idea")
    result = sync(config)
    assert result.counts()["updated"] == 1
    he = papers(tmp_path / "vault")["he2016deep.md"]
    assert "identity shortcuts" in he and "key idea" in he
    assert "residual functions" in he  # the unchanged highlight is still there
    fetched = {k for r in fake.requests("/items") for k in r[1].get("itemKey", "").split(",")}
    assert {"ANN33333", "AAAA2222", "ATT22222", "ANN22222"} <= fetched


def test_child_notes_follow_edits_and_deletions_through_the_web_api(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    small_library(fake)
    note = {"key": "NOTE4444", "itemType": "note", "parentItem": "AAAA2222",
            "note": "<h1>Mine</h1><p>first words</p>", "tags": [], "relations": {},
            "dateAdded": STAMP, "dateModified": STAMP}  # fmt: skip
    fake.put(note)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    assert "first words" in papers(tmp_path / "vault")["he2016deep.md"]
    fake.edit("NOTE4444", note="<p>second words</p>")
    assert sync(config).counts()["updated"] == 1
    he = papers(tmp_path / "vault")["he2016deep.md"]
    assert "second words" in he and "first words" not in he
    fake.erase("NOTE4444")
    assert sync(config).counts()["updated"] == 1
    assert "second words" not in papers(tmp_path / "vault")["he2016deep.md"]


def test_a_standalone_pdf_is_an_item_through_the_web_api(fake: FakeZotero) -> None:
    small_library(fake)
    standalone = attachment("FILE2222", "", "keshav.pdf", title="keshav.pdf")
    del standalone["parentItem"]
    fake.put(standalone, annotation("FANN2222", "FILE2222", "three passes"))
    source = web_source(fake)
    first = source.read()
    assert "FILE2222" in (first.all_keys or ())
    (pdf,) = [i for i in first.items if i.key == "FILE2222"]
    assert pdf.item_type == "attachment" and [a.key for a in pdf.annotations] == ["FANN2222"]
    fake.put(annotation("FANN3333", "FILE2222", "the second pass", page=2))
    second = source.read(first.cursor)
    assert second.incremental and [i.key for i in second.items] == ["FILE2222"]
    assert len(second.items[0].annotations) == 2


def test_new_annotation_on_known_attachment(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.put(annotation("ANN44444", "ATT22222", "a third highlight", page=5))
    second = source.read(first.cursor)
    assert second.incremental and [i.key for i in second.items] == ["AAAA2222"]
    assert len(second.items[0].annotations) == 3


def test_deleted_annotation_is_removed_from_its_paper(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    fake.erase("ANN22222")
    result = sync(config)
    assert result.counts()["updated"] == 1
    he = papers(tmp_path / "vault")["he2016deep.md"]
    assert "residual functions" not in he and "shortcut connections" in he


def test_deleted_item_found_through_deleted(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    fake.erase("CCCC2222")
    result = sync(config)
    assert result.counts()["deleted"] == 1
    assert "deleted-in-zotero" in papers(tmp_path / "vault")["ioffe2015batch.md"]
    assert fake.requests("/deleted")


def test_409_from_deleted_falls_back_to_key_comparison(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.erase("CCCC2222", "ANN22222")
    fake.deleted_floor = fake.version  # the cursor's version is now "too old"
    second = source.read(first.cursor)
    assert second.incremental and second.all_keys == {"AAAA2222", "BBBB2222"}
    assert [i.key for i in second.items] == ["AAAA2222"]
    assert [a.key for a in second.items[0].annotations] == ["ANN33333"]
    keys_requests = [r for r in fake.requests("/items") if r[1].get("format") == "keys"]
    assert keys_requests and "since" not in keys_requests[0][1]


def test_trash_and_restore(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.edit("BBBB2222", deleted=1)
    second = source.read(first.cursor)
    assert [(i.key, i.trashed) for i in second.items] == [("BBBB2222", True)]
    assert "BBBB2222" in second.all_keys
    fake.edit("BBBB2222", deleted=0)
    third = source.read(second.cursor)
    assert [(i.key, i.trashed) for i in third.items] == [("BBBB2222", False)]


def test_renamed_collection_updates_its_items(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.put_collection("COLL2222", "Computer Vision")
    second = source.read(first.cursor)
    assert [(i.key, i.collections) for i in second.items] == [("AAAA2222", ("Computer Vision",))]


def test_deleted_collection_means_full_read(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    del fake.collections["COLL2222"]
    fake.objects["AAAA2222"]["collections"] = []
    fake.deleted_collections["COLL2222"] = fake.bump()
    second = source.read(first.cursor)
    assert not second.incremental and len(second.items) == 3
    assert {i.key: i.collections for i in second.items}["AAAA2222"] == ()


def test_304_means_nothing_changed(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    fake.log.clear()
    result = sync(config)
    counts = result.counts()
    assert counts["created"] == counts["updated"] == counts["deleted"] == 0
    assert len(fake.log) == 1 and fake.log[0][2]["If-Modified-Since-Version"] == str(fake.version)
    snapshot = web_source(fake).read(web_source(fake).read().cursor)
    assert snapshot.incremental and snapshot.items == ()
    assert snapshot.all_keys == {"AAAA2222", "BBBB2222", "CCCC2222"}


def test_library_version_going_back_means_full_read(fake: FakeZotero) -> None:
    small_library(fake)
    first = web_source(fake).read()
    fake.version = 1  # a restored library: its version is lower than the cursor's
    second = web_source(fake).read(first.cursor)
    assert not second.incremental and len(second.items) == 3


def test_library_changing_during_paging_is_read_again(fake: FakeZotero) -> None:
    fake.page_cap = 2
    small_library(fake)
    pages = []

    def edit_once(server: FakeZotero, path: str) -> None:
        pages.append(path)
        if len(pages) == 2:  # between the first and second page
            server.edit("CCCC2222", title="Batch Normalization (v2)")

    fake.on_request = edit_once
    snapshot = web_source(fake).read()
    titles = {i.key: i.title for i in snapshot.items}
    assert titles["CCCC2222"] == "Batch Normalization (v2)" and len(titles) == 3


def test_many_changes_are_listed_not_fetched_by_key(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.log.clear()
    fake.put(*(item(zkey(5000 + n), f"Paper {n}") for n in range(150)))
    second = source.read(first.cursor)
    assert len(second.items) == 150 and len(second.all_keys) == 153
    listing = [r for r in fake.requests("/items") if r[1].get("since") and "format" in r[1]]
    assert any(r[1]["format"] == "json" for r in listing)


# ── retries, backoff, failures ───────────────────────────────────────────────────────────────


def test_429_then_success(fake: FakeZotero, sleeps: Sleeps) -> None:
    small_library(fake)
    fake.faults.append(Response("Too Many Requests", 429, {"Retry-After": "7"}))
    snapshot = web_source(fake).read()
    assert len(snapshot.items) == 3 and sleeps == [7.0]


def test_backoff_header_delays_the_next_request(fake: FakeZotero, sleeps: Sleeps) -> None:
    fake.page_cap = 2
    small_library(fake)
    fake.faults.append(
        Response(json.dumps([]), 200, {"Backoff": "5", "Last-Modified-Version": "1"})
    )
    source = web_source(fake)
    source.zot.items(limit=1)  # the answer carrying Backoff
    assert sleeps == []
    source.read()
    assert sleeps[0] == pytest.approx(5.0, abs=0.5)


def test_503_and_timeouts_retry_with_growing_waits(fake: FakeZotero, sleeps: Sleeps) -> None:
    small_library(fake)
    fake.faults += [Response("busy", 503), Response("busy", 502)]
    assert len(web_source(fake).read().items) == 3
    assert sleeps == [0.5, 1.0]


def test_retry_after_longer_than_max_wait_gives_up_at_once(fake: FakeZotero) -> None:
    recorded = Sleeps()
    fake.faults.append(Response("slow down", 429, {"Retry-After": "3600"}))
    source = web_source(fake, retry=RetryPolicy(max_wait=60, sleep=recorded))
    with pytest.raises(SourceError) as caught:
        source.read()
    assert "3600" in caught.value.message and "try again later" in str(caught.value)
    assert recorded == []


def test_500_run_out_exits_3(
    tmp_path: Path, fake: FakeZotero, key_env: str, sleeps: Sleeps
) -> None:
    fake.faults += [Response("Internal Server Error", 500)] * 10
    vault = tmp_path / "vault"
    vault.mkdir()
    result = CliRunner().invoke(
        main,
        ["sync", "--source", "web", "--library-id", "1", "--api-url", fake.url, "--vault",
         str(vault)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "500" in result.output and "after 4 attempt(s)" in result.output
    assert "try again later" in result.output and "Traceback" not in result.output
    assert sleeps == [0.5, 1.0, 2.0]
    assert KEY not in result.output


def test_forbidden_key_is_reported_without_the_key(fake: FakeZotero) -> None:
    fake.faults.append(Response(f"Invalid key {KEY}", 403))
    with pytest.raises(SourceError) as caught:
        web_source(fake).read()
    text = str(caught.value)
    assert "refused the API key" in text and "zotero.org/settings/keys" in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert KEY not in getattr(caught.value.__context__, "detail", "")


def test_api_key_never_written_or_printed(
    tmp_path: Path, fake: FakeZotero, key_env: str, sleeps: Sleeps
) -> None:
    small_library(fake)
    vault = tmp_path / "vault"
    vault.mkdir()
    args = ["sync", "--source", "web", "--library-id", "1", "--api-url", fake.url,
            "--vault", str(vault)]  # fmt: skip
    runner = CliRunner()
    outputs = [runner.invoke(main, args)]
    fake.edit("ANN22222", annotationComment="a comment")
    fake.erase("CCCC2222")
    outputs.append(runner.invoke(main, args))
    outputs.append(runner.invoke(main, [*args, "--json"]))
    outputs.append(runner.invoke(main, ["status", "--vault", str(vault)]))
    outputs.append(runner.invoke(main, ["doctor", *args[1:]]))
    fake.faults.append(Response(f"Invalid key {KEY}", 403))
    outputs.append(runner.invoke(main, args))
    assert [o.exit_code for o in outputs] == [0, 0, 0, 0, 0, 3], [o.output for o in outputs]
    for output in outputs:
        assert KEY not in output.output
    written = list(every_byte(vault))
    assert any(p.name == "state.sqlite" for p, _ in written)
    for path, data in written:
        assert KEY.encode() not in data, path


# ── configuration ────────────────────────────────────────────────────────────────────────────


def test_web_needs_a_key_and_a_library_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as no_key:
        ApiSource.from_config(Config(source="web", library_id="1"))
    assert "zotero.org/settings/keys" in str(no_key.value)
    monkeypatch.setenv("ZOTERO_API_KEY", KEY)
    with pytest.raises(ConfigError) as no_id:
        ApiSource.from_config(Config(source="web"))
    assert "library ID" in str(no_id.value) and "zotero.org/settings/keys" in str(no_id.value)
    result = CliRunner().invoke(
        main, ["sync", "--source", "web", "--vault", str(tmp_path)], env={"ZOTERO_API_KEY": ""}
    )
    assert result.exit_code == 2 and "API key" in result.output


def test_api_key_file_and_its_permissions(tmp_path: Path, fake: FakeZotero) -> None:
    key_file = tmp_path / "zotero.key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o644)
    config = Config(source="web", library_id="1", api_url=fake.url, api_key_file=key_file)
    small_library(fake)
    loose = ApiSource.from_config(config).read()
    assert any("chmod 600" in w for w in loose.warnings) and len(loose.items) == 3
    key_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    tight = ApiSource.from_config(config).read()
    assert not any("chmod" in w for w in tight.warnings)


def test_group_library(tmp_path: Path, httpserver: HTTPServer, key_env: str) -> None:
    fake = FakeZotero(httpserver, prefix="/groups/4242",
                      library={"type": "group", "id": 4242, "name": "Lab"})  # fmt: skip
    small_library(fake)
    config = web_config(tmp_path / "vault", fake, library_type="group")
    config = Config(**{**config.__dict__, "library_id": "4242"})
    snapshot = ApiSource.from_config(config).read()
    assert {i.library for i in snapshot.items} == {Library("group", 4242)}
    assert snapshot.library == Library("group", 4242)
    sync(config)
    he = papers(tmp_path / "vault")["he2016deep.md"]
    assert "zotero://select/groups/4242/items/AAAA2222" in he


# ── the local API ────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def local(httpserver: HTTPServer) -> FakeZotero:
    return FakeZotero(httpserver, prefix="/api/users/0", key=None)


def local_source(fake: FakeZotero) -> ApiSource:
    return ApiSource.from_config(Config(source="local", api_url=fake.url + "/api"))


def test_local_reads_fully_and_reports_unchanged(local: FakeZotero) -> None:
    local.page_cap = 3
    small_library(local)
    source = local_source(local)
    first = source.read()
    assert len(first.items) == 3 and not first.incremental
    assert all("Authorization" not in r[2] for r in local.log)
    assert not local.requests("/deleted")
    second = source.read(first.cursor)
    assert second.incremental and second.items == () and second.cursor == first.cursor
    local.edit("ANN22222", annotationText="changed locally")  # never synced: version-blind
    third = source.read(second.cursor)
    assert not third.incremental and len(third.items) == 3
    assert "changed locally" in [a.text for i in third.items for a in i.annotations]


def test_local_api_disabled(local: FakeZotero) -> None:
    local.forbidden = True
    with pytest.raises(SourceError) as caught:
        local_source(local).read()
    assert "Allow other applications on this computer to communicate with Zotero" in str(
        caught.value
    )


def test_zotero_not_running() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    source = ApiSource.from_config(Config(source="local", api_url=f"http://127.0.0.1:{port}/api"))
    with pytest.raises(SourceError) as caught:
        source.read()
    assert "Zotero is not running" in str(caught.value)


def test_source_protocol(fake: FakeZotero) -> None:
    source: sources.Source = web_source(fake)
    assert source.name == "web" and KEY not in repr(source)


# ── zob doctor ───────────────────────────────────────────────────────────────────────────────


def test_doctor_web_all_good(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    vault = tmp_path / "vault"
    vault.mkdir()
    result = CliRunner().invoke(
        main, ["doctor", "--source", "web", "--library-id", "1", "--api-url", fake.url,
               "--vault", str(vault)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "✓ API key: accepted: user tester (ID 1)" in result.output
    assert "✓ library: users/1: 4 top-level items" in result.output
    assert "✗" not in result.output and KEY not in result.output


def test_doctor_web_bad_key_exits_3(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    fake.key = "another key"
    result = CliRunner().invoke(
        main, ["doctor", "--source", "web", "--library-id", "1", "--api-url", fake.url,
               "--vault", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 3
    assert "✗ API key" in result.output and "zotero.org/settings/keys" in result.output


def test_doctor_config_problems_exit_2(tmp_path: Path, fake: FakeZotero) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["doctor", "--source", "web", "--library-id", "1",
                                   "--api-url", fake.url, "--vault", str(tmp_path)])  # fmt: skip
    assert missing.exit_code == 2 and "✗ API settings" in missing.output
    no_vault = runner.invoke(main, ["doctor", "--vault", str(tmp_path / "nope")])
    assert no_vault.exit_code == 2 and "✗ config" in no_vault.output


def test_doctor_local_not_running(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["doctor", "--source", "local", "--api-url", "http://127.0.0.1:9/api",
               "--vault", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 3 and "Zotero is not running" in result.output


def test_doctor_sqlite(tmp_path: Path) -> None:
    from tests.zotero_db import ZoteroDB

    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        db.add_item(title="One paper", creators=[("author", "Ada", "Lovelace")])
    result = CliRunner().invoke(
        main, ["doctor", "--zotero-dir", str(data_dir), "--vault", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "1 items, userdata schema 123" in result.output
    empty = CliRunner().invoke(main, ["doctor", "--zotero-dir", str(tmp_path / "none"),
                                      "--vault", str(tmp_path)])  # fmt: skip
    assert empty.exit_code == 3 and "✗ Zotero database" in empty.output


# ── contract: the API and zotero.sqlite give the same items and the same notes ──────────────

# One small library, described once and built twice: in Zotero's database layout (the shared
# builder) and as the JSON Zotero's API serves for it.
POSITION = {"pageIndex": 1, "rects": [[100.5, 200.25, 300.75, 212.5]]}
CONTRACT_ITEMS: list[dict[str, Any]] = [
    {
        "key": "AAAA2222", "item_type": "journalArticle", "version": 12,
        "title": "Deep Residual Learning for Image Recognition", "date": "2016-06-27",
        "creators": [("author", "Kaiming", "He"), ("author", "Xiangyu", "Zhang"),
                     ("editor", "", "CVPR Program Committee", 1)],
        "tags": ["cnn", "extends:Highway Network", "proposes:ResNet"],
        "collections": ["Vision/Detection"], "citation_key": "he2016deep",
        "fields": {"DOI": "10.1109/CVPR.2016.90", "publicationTitle": "CVPR",
                   "abstractNote": "We present a residual learning framework.",
                   "url": "https://arxiv.org/abs/1512.03385"},
    },
    {
        "key": "BBBB2222", "item_type": "conferencePaper", "version": 9,
        "title": "Highway Networks", "date": "May 2015",
        "creators": [("author", "Rupesh Kumar", "Srivastava"), ("author", "Klaus", "Greff")],
        "tags": ["proposes:Highway Network"], "collections": ["Vision"],
        "extra": "Citation Key: srivastava2015highway",
        "fields": {"proceedingsTitle": "ICML Deep Learning Workshop"},
    },
    {
        "key": "CCCC2222", "item_type": "book", "version": 3, "title": "An Old Book",
        "date": "1999", "creators": [("author", "Ada", "Lovelace")], "trashed": True,
        "fields": {"publisher": "Old Press", "place": "London"},
    },
]  # fmt: skip
CONTRACT_ANNOTATIONS = [
    {"key": "ANN22222", "type": "highlight", "text": "residual functions", "comment": "key idea",
     "color": "#ffd400", "page_label": "2", "sort_index": "00001|000100|00200"},
    {"key": "ANN33333", "type": "underline", "text": "shortcut connections", "comment": "",
     "color": "#2EA8E5", "page_label": "2", "sort_index": "00001|000300|00100"},
]  # fmt: skip


def build_contract_db(data_dir: Path) -> None:
    from tests.zotero_db import ZoteroDB

    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite", user_id=1) as db:
        for spec in CONTRACT_ITEMS:
            db.add_item(
                spec["item_type"], key=spec["key"], title=spec["title"], date=spec["date"],
                creators=spec["creators"], tags=spec.get("tags", ()),
                collections=spec.get("collections", ()), extra=spec.get("extra"),
                citation_key=spec.get("citation_key"), version=spec["version"],
                **spec["fields"],
            )  # fmt: skip
        db.add_attachment("AAAA2222", key="ATT22222", filename="he2016.pdf", title="Full Text PDF")
        for ann in CONTRACT_ANNOTATIONS:
            db.add_annotation("ATT22222", position=POSITION, **ann)
        db.add_note("AAAA2222", "<p>a child note</p>", key="NOTE2222")
        db.add_note(None, "<p>a standalone note</p>", key="NOTE3333")
        # a standalone PDF with a highlight: an item of its own in both sources
        db.add_attachment(None, key="FILE2222", filename="keshav.pdf", version=9)
        db.add_annotation(
            "FILE2222", key="FANN2222", text="three passes", page_label="1",
            sort_index="00000|000100|00200", position={"pageIndex": 0, "rects": [[1, 2, 3, 4]]},
        )  # fmt: skip
        db.relate("AAAA2222", "BBBB2222")
        db.trash("CCCC2222")


def _db_rows(data_dir: Path) -> tuple[dict[str, tuple[str, str, int]], dict[str, tuple]]:
    """Timestamps/versions of items and the collections, as the builder stamped them."""
    with closing(sqlite3.connect(data_dir / "zotero.sqlite")) as conn:
        item_rows = conn.execute("SELECT key, dateAdded, dateModified, version FROM items")
        items = {key: (added, modified, version) for key, added, modified, version in item_rows}
        collection_rows = conn.execute(
            "SELECT collectionID, key, collectionName, parentCollectionID FROM collections"
        )
        collections = {cid: (key, name, parent) for cid, key, name, parent in collection_rows}
    return items, collections


def _iso(text: str) -> str:
    return text.replace(" ", "T") + "Z"


def serve_contract_library(fake: FakeZotero, data_dir: Path) -> None:
    """The JSON Zotero's API serves for the library `build_contract_db` made."""
    stamps, collections = _db_rows(data_dir)
    path_keys: dict[str, str] = {}
    for _cid, (key, name, parent) in sorted(collections.items()):
        fake.put_collection(key, name, collections[parent][0] if parent else False)
        path_keys[name if not parent else f"{collections[parent][1]}/{name}"] = key

    def stamped(data: dict) -> dict:
        added, modified, version = stamps[data["key"]]
        data.update(dateAdded=_iso(added), dateModified=_iso(modified))
        return data

    objects = []
    for spec in CONTRACT_ITEMS:
        creators = [
            {"creatorType": c[0], "name": c[2]} if len(c) > 3 and c[3] == 1
            else {"creatorType": c[0], "firstName": c[1], "lastName": c[2]}
            for c in spec["creators"]
        ]  # fmt: skip
        other = "BBBB2222" if spec["key"] == "AAAA2222" else "AAAA2222"
        in_collections = [path_keys[p] for p in spec.get("collections", ())]
        data = item(
            spec["key"], spec["title"], item_type=spec["item_type"], creators=creators,
            tags=spec.get("tags", []), collections=in_collections,
            related=[other] if spec["key"] != "CCCC2222" else [], date=spec["date"],
            extra=spec.get("extra", ""), citationKey=spec.get("citation_key", ""),
            **spec["fields"],
        )  # fmt: skip
        if spec.get("trashed"):
            data["deleted"] = 1
        objects.append(stamped(data))
    objects.append(stamped(attachment("ATT22222", "AAAA2222", "he2016.pdf")))
    for ann in CONTRACT_ANNOTATIONS:
        data = annotation(ann["key"], "ATT22222", ann["text"], page=2)
        data.update(
            annotationType=ann["type"], annotationComment=ann["comment"],
            annotationColor=ann["color"], annotationPageLabel=ann["page_label"],
            annotationSortIndex=ann["sort_index"],
            annotationPosition=json.dumps(POSITION, separators=(",", ":")),
        )  # fmt: skip
        objects.append(stamped(data))
    standalone = attachment("FILE2222", "", "keshav.pdf", title="keshav.pdf")
    del standalone["parentItem"]
    objects.append(stamped(standalone))
    objects.append(
        stamped(
            annotation(
                "FANN2222", "FILE2222", "three passes",
                annotationPosition='{"pageIndex":0,"rects":[[1,2,3,4]]}',
            )
        )
    )  # fmt: skip
    for key, parent, html in (
        ("NOTE2222", "AAAA2222", "<p>a child note</p>"),
        ("NOTE3333", None, "<p>a standalone note</p>"),
    ):
        note = {
            "key": key,
            "version": 0,
            "itemType": "note",
            "note": html,
            "tags": [],
            "relations": {},
            **({"parentItem": parent} if parent else {"collections": []}),
        }
        objects.append(stamped(note))
    fake.put(*objects)
    for data in objects:  # the versions Zotero's server holds for them
        data["version"] = stamps[data["key"]][2] or data["version"]


@pytest.fixture
def contract(tmp_path: Path, fake: FakeZotero) -> tuple[Path, FakeZotero]:
    data_dir = tmp_path / "Zotero"
    build_contract_db(data_dir)
    serve_contract_library(fake, data_dir)
    return data_dir, fake


def test_contract_same_items(contract: tuple[Path, FakeZotero]) -> None:
    from bridge.sources.sqlite import SqliteSource

    data_dir, fake = contract
    from_db = SqliteSource(data_dir).read()
    from_api = web_source(fake).read()
    assert from_api.all_keys == from_db.all_keys == {"AAAA2222", "BBBB2222", "CCCC2222", "FILE2222"}
    db_items = {i.key: i for i in from_db.items}
    api_items = {i.key: i for i in from_api.items}
    for key in sorted(db_items):
        assert api_items[key] == db_items[key], key
    he = api_items["AAAA2222"]
    assert he.related == ("BBBB2222",) and he.collections == ("Vision/Detection",)
    assert [a.color for a in he.annotations] == ["#ffd400", "#2ea8e5"]
    assert api_items["CCCC2222"].trashed and not he.trashed
    assert from_api.warnings == () and from_db.warnings == ()


def test_contract_byte_identical_notes(tmp_path: Path, contract: tuple[Path, FakeZotero]) -> None:
    from bridge.sources.sqlite import SqliteSource

    data_dir, fake = contract
    via_db, via_api = tmp_path / "via-db", tmp_path / "via-api"
    sync(Config(vault=via_db.mkdir() or via_db), source=SqliteSource(data_dir))
    sync(Config(vault=via_api.mkdir() or via_api), source=web_source(fake))
    db_notes = dict(every_byte(via_db / "Papers"))
    api_notes = dict(every_byte(via_api / "Papers"))
    # CCCC2222 was in the trash before the first sync: no note; FILE2222 is a standalone PDF
    assert len(db_notes) == 3
    assert {p.name: b for p, b in api_notes.items()} == {p.name: b for p, b in db_notes.items()}


def test_contract_tag_and_attachment_order(tmp_path: Path, fake: FakeZotero) -> None:
    from bridge.sources.sqlite import SqliteSource
    from tests.zotero_db import ZoteroDB

    data_dir = tmp_path / "Zotero"
    data_dir.mkdir()
    with ZoteroDB.create(data_dir / "zotero.sqlite", user_id=1) as db:
        db.add_item(key="AAAA2222", title="T", date="2016", tags=["zeta", "alpha"],
                    creators=[("author", "Ada", "Lovelace")])  # fmt: skip
        db.add_attachment("AAAA2222", key="ZZZZ2222", filename="first.pdf")
        db.add_attachment("AAAA2222", key="ATT22222", filename="second.pdf")
    stamps, _ = _db_rows(data_dir)
    objects = [
        item("AAAA2222", "T", tags=["zeta", "alpha"]),
        attachment("ZZZZ2222", "AAAA2222", "first.pdf", title="first.pdf"),
        attachment("ATT22222", "AAAA2222", "second.pdf", title="second.pdf"),
    ]
    for data in objects:
        added, modified, _version = stamps[data["key"]]
        data.update(dateAdded=_iso(added), dateModified=_iso(modified))
    fake.put(*objects)
    fake.objects["AAAA2222"]["version"] = 0
    assert web_source(fake).read().items == SqliteSource(data_dir).read().items


# ── hostile answers: garbage, wrong shapes, missing headers, huge pages, timeouts ───────────


def answer_once(fake: FakeZotero, part: str, response: Response, **arg: str) -> None:
    """Send `response` instead of the first answer whose path ends with `part` (and has `arg`)."""
    pending = [response]

    def tamper(path: str, args: dict[str, str], normal: Response) -> Response:
        wanted = path.endswith(part) and all(args.get(k) == v for k, v in arg.items())
        return pending.pop() if wanted and pending else normal

    fake.tamper = tamper


def json_answer(body: Any, version: int = 7, **headers: str) -> Response:
    return Response(json.dumps(body), 200, {"Last-Modified-Version": str(version), **headers},
                    content_type="application/json")  # fmt: skip


def raw_answer(body: bytes | str, content_type: str | None = "application/json") -> Response:
    response = Response(body, 200, {"Last-Modified-Version": "7"})
    if content_type is None:
        del response.headers["Content-Type"]
    else:
        response.headers["Content-Type"] = content_type
    return response


def assert_clean_source_error(error: SourceError, *parts: str, hint: str = "--api-url") -> None:
    """Says what was wrong and what to do; no key, no chained traceback."""
    text = str(error)
    for part in parts:
        assert part in text, text
    assert error.hint and hint in error.hint, text
    assert KEY not in text and error.__cause__ is None and error.__suppress_context__
    assert len(text) < 1200, text


GARBAGE_PAGES = {
    "not JSON": raw_answer("this is not JSON {"),
    "HTML login page with 200": raw_answer(
        f"<!DOCTYPE html><html><head><title>Hotel Wi-Fi</title></head><body>Log in to continue"
        f" <input value='{KEY}'></body></html>",
        "text/html; charset=utf-8",
    ),
    "plain text": raw_answer("Service temporarily unavailable", "text/plain"),
    "no Content-Type": raw_answer(b"[]", None),
    "invalid UTF-8": raw_answer(b'[{"key": "\xff\xfe\xfa"}]'),
    "nested 100,000 deep": raw_answer("[" * 100_000 + "]" * 100_000),
    "Atom feed": raw_answer("<feed><entry>x</entry></feed>", "application/atom+xml"),
    "BibTeX": raw_answer("@article{x, title={y}}", "application/x-bibtex"),
    "an object, not a list": json_answer({"items": [], "error": "nope"}),
    "null": json_answer(None),
    "a number": json_answer(42),
    "a string": json_answer("AAAA2222"),
    "a list of non-objects only": json_answer([1, "two", None, [3]]),
}


@pytest.mark.parametrize("name", sorted(GARBAGE_PAGES))
def test_unusable_item_page_is_a_source_error(fake: FakeZotero, name: str) -> None:
    small_library(fake)
    answer_once(fake, "/items", GARBAGE_PAGES[name])
    with pytest.raises(SourceError) as caught:
        web_source(fake).read()
    assert_clean_source_error(caught.value, "unusable answer", "item list")


@pytest.mark.parametrize("body", [{"COLL2222": 1}, "nope", [None, 5]], ids=repr)
def test_unusable_collection_list_is_a_source_error(fake: FakeZotero, body: Any) -> None:
    small_library(fake)
    answer_once(fake, "/collections", json_answer(body, fake.version))
    with pytest.raises(SourceError) as caught:
        web_source(fake).read()
    assert_clean_source_error(caught.value, "unusable answer", "collection list")


def test_local_api_garbage_points_at_zotero(local: FakeZotero) -> None:
    small_library(local)
    answer_once(local, "/items", GARBAGE_PAGES["HTML login page with 200"])
    with pytest.raises(SourceError) as caught:
        local_source(local).read()
    assert "unusable answer" in str(caught.value) and "local API" in str(caught.value.hint)


def test_garbage_through_zob_sync_exits_3(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    answer_once(fake, "/items", GARBAGE_PAGES["HTML login page with 200"])
    vault = tmp_path / "vault"
    vault.mkdir()
    result = CliRunner().invoke(
        main, ["sync", "--source", "web", "--library-id", "1", "--api-url", fake.url,
               "--vault", str(vault)],
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert "unusable answer" in result.output and "--api-url" in result.output
    assert "text/html" in result.output and "Traceback" not in result.output
    assert KEY not in result.output


BAD_ENTRIES = [
    "just text",
    42,
    None,
    ["AAAA2222"],
    {"version": 3, "data": {"itemType": "book", "title": "no key"}},
    {"key": "not a key!", "version": 3, "data": {"key": "not a key!", "itemType": "book"}},
    {"key": 12345678, "version": 3, "data": {"itemType": "book"}},
]


def test_unidentifiable_objects_are_skipped_and_nothing_is_deleted(fake: FakeZotero) -> None:
    small_library(fake)
    fake.ignore_limit = True

    def add_junk(path: str, args: dict[str, str], response: Response) -> Response:
        if path.endswith("/items") and args.get("format", "json") == "json":
            body = json.loads(response.get_data()) + BAD_ENTRIES
            response.set_data(json.dumps(body))
            response.headers["Total-Results"] = str(len(body))
        return response

    fake.tamper = add_junk
    snapshot = web_source(fake).read()
    assert {i.key for i in snapshot.items} == {"AAAA2222", "BBBB2222", "CCCC2222"}
    skipped = [w for w in snapshot.warnings if "skipped" in w]
    assert len(skipped) == len(BAD_ENTRIES), snapshot.warnings
    assert any("'just text'" in w for w in skipped) and any("not a key!" in w for w in skipped)
    # a key we could not read might be any paper: no deletion can be trusted, no cursor kept
    assert snapshot.all_keys is None and snapshot.cursor is None
    assert any("deleted-in-zotero" in w for w in snapshot.warnings)


@pytest.mark.parametrize(
    "broken",
    [
        {"key": "BBBB2222", "version": 9},  # no data
        {"key": "BBBB2222", "version": 9, "data": "Highway Networks"},
        {"key": "BBBB2222", "version": 9, "data": {"key": "BBBB2222", "title": "no type"}},
        {"key": "BBBB2222", "version": 9, "data": {"key": "BBBB2222", "itemType": ["book"]}},
        {"key": "BBBB2222", "version": 9, "data": {"key": "ZZZZ2222", "itemType": "book"}},
    ],
    ids=["no data", "data is text", "no itemType", "itemType is a list", "data of another key"],
)
def test_malformed_object_with_a_key_is_skipped_but_kept(fake: FakeZotero, broken: dict) -> None:
    small_library(fake)
    fake.mangle["BBBB2222"] = broken
    snapshot = web_source(fake).read()
    assert {i.key for i in snapshot.items} == {"AAAA2222", "CCCC2222"}
    assert "BBBB2222" in (snapshot.all_keys or ())  # its note is not marked deleted
    assert snapshot.cursor is not None
    assert any("BBBB2222" in w and "skipped" in w for w in snapshot.warnings), snapshot.warnings


def test_wrong_field_types_drop_only_the_value(fake: FakeZotero) -> None:
    small_library(fake)
    wrong = item(
        "DDDD2222", "Wrong Types", creators="Smith, J.",  # type: ignore[arg-type]
        collections=[["COLL2222"], {"k": 1}, "COLL2222"], volume=12, extra={"x": 1},
        relations=["http://zotero.org/users/1/items/AAAA2222"], dateAdded=1234,
        dateModified="yesterday", deleted="0", citationKey=None,
    )  # fmt: skip
    wrong["tags"] = {"cnn": 1}  # (the builder would turn a dict into a list)
    fake.put(
        wrong,
        item("EEEE2222", 12345, creators=[None, "Ada", {"lastName": 7}]),  # type: ignore[arg-type]
        attachment("ATT33333", "DDDD2222", filename=["x"], linkMode=5, parentItem="DDDD2222"),
        attachment("ATT44444", ["DDDD2222"]),  # type: ignore[arg-type]
        annotation("ANN55555", "ATT33333", {"t": 1}, annotationColor=7,  # type: ignore[arg-type]
                   annotationPosition=[1, 2], annotationType=None),
        annotation("ANN66666", "ATT33333", "kept", annotationSortIndex=None, tags="x"),
    )  # fmt: skip
    snapshot = web_source(fake).read()
    by_key = {i.key: i for i in snapshot.items}
    assert set(by_key) == {"AAAA2222", "BBBB2222", "CCCC2222", "DDDD2222", "EEEE2222"}
    wrong = by_key["DDDD2222"]
    assert wrong.creators == () and wrong.tags == () and wrong.collections == ("Vision",)
    assert wrong.fields["volume"] == "12" and "extra" not in wrong.fields and not wrong.trashed
    assert wrong.related == () and wrong.date_added == "" and wrong.date_modified == ""
    assert [a.key for a in wrong.attachments] == ["ATT33333"]
    assert [a.text for a in wrong.attachments[0].annotations] == ["kept"]
    odd = by_key["EEEE2222"]  # numbers are taken as their text; non-objects are left out
    assert odd.title == "12345" and [c.last_name for c in odd.creators] == ["7"]
    text = "\n".join(snapshot.warnings)
    for expected in ("creators should be a list", "tags should be a list", "relations",
                     "extra should be text", "ATT44444", "ANN55555", "is not a key"):  # fmt: skip
        assert expected in text, (expected, text)
    assert snapshot.all_keys is not None and snapshot.cursor is not None


def test_broken_object_leaves_its_note_alone(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    before = papers(tmp_path / "vault")
    fake.edit("BBBB2222", title="Highway Networks, revised")
    fake.mangle["BBBB2222"] = {"key": "BBBB2222", "version": fake.version}
    fake.edit("CCCC2222", title="Batch Normalization, revised")
    result = sync(config)
    assert result.counts()["updated"] == 1 and result.counts()["deleted"] == 0
    after = papers(tmp_path / "vault")
    assert after["srivastava2015highway.md"] == before["srivastava2015highway.md"]
    assert "Batch Normalization, revised" in after["ioffe2015batch.md"]
    assert any("BBBB2222" in w for w in result.warnings)
    assert sync(config).counts()["deleted"] == 0  # the kept key survives in the cursor
    full = sync(config, SyncOptions(full=True))
    assert full.counts()["deleted"] == 0
    assert (
        papers(tmp_path / "vault")["srivastava2015highway.md"] == before["srivastava2015highway.md"]
    )
    del fake.mangle["BBBB2222"]
    fake.edit("BBBB2222", title="Highway Networks, fixed")
    assert sync(config).counts()["updated"] == 1
    assert "Highway Networks, fixed" in papers(tmp_path / "vault")["srivastava2015highway.md"]


def strip_header(name: str, value: str | None = None) -> Any:
    def tamper(path: str, args: dict[str, str], response: Response) -> Response:
        if value is None:
            response.headers.pop(name, None)
        else:
            response.headers[name] = value
        return response

    return tamper


@pytest.mark.parametrize("value", [None, "", "abc", "7.5", "-", "-5"], ids=repr)
def test_missing_or_bad_library_version_means_full_reads(
    tmp_path: Path, fake: FakeZotero, key_env: str, value: str | None
) -> None:
    small_library(fake)
    fake.tamper = strip_header("Last-Modified-Version", value)
    snapshot = web_source(fake).read()
    assert len(snapshot.items) == 3 and snapshot.cursor is None
    assert snapshot.all_keys == {"AAAA2222", "BBBB2222", "CCCC2222"}
    assert any("Last-Modified-Version" in w for w in snapshot.warnings)
    config = web_config(tmp_path / "vault", fake)
    assert sync(config).counts()["created"] == 3
    fake.edit("BBBB2222", title="Highway Networks, revised")
    second = sync(config)
    assert second.counts()["updated"] == 1 and second.counts()["deleted"] == 0
    assert "revised" in papers(tmp_path / "vault")["srivastava2015highway.md"]


def test_library_version_missing_on_a_later_page(fake: FakeZotero) -> None:
    fake.page_cap = 2
    small_library(fake)
    fake.tamper = lambda path, args, r: (
        strip_header("Last-Modified-Version")(path, args, r) if args.get("start") else r
    )
    snapshot = web_source(fake).read()
    assert len(snapshot.items) == 3 and snapshot.cursor is None


def test_library_version_missing_on_incremental_probe(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.edit("BBBB2222", title="Highway Networks, revised")
    fake.tamper = strip_header("Last-Modified-Version")
    second = source.read(first.cursor)
    assert [i.title for i in second.items] == ["Highway Networks, revised"]
    assert second.all_keys == {"AAAA2222", "BBBB2222", "CCCC2222"}
    fake.tamper = None
    third = source.read(second.cursor)  # asks again from where it knows: nothing lost
    assert [i.key for i in third.items] == ["BBBB2222"]


def test_bad_total_results_is_ignored(fake: FakeZotero) -> None:
    small_library(fake)
    fake.tamper = strip_header("Total-Results", "many")
    assert len(web_source(fake).read().items) == 3


def test_pages_that_link_back_are_a_source_error(fake: FakeZotero) -> None:
    small_library(fake)

    def loop(path: str, args: dict[str, str], response: Response) -> Response:
        if path.endswith("/items"):
            response.headers.pop("Total-Results", None)
            response.headers["Link"] = f'<{fake.url}{path}?start=0&limit=100>; rel="next"'
        return response

    fake.tamper = loop
    with pytest.raises(SourceError) as caught:
        web_source(fake).read()
    assert_clean_source_error(caught.value, "unusable answer", "item list")
    assert len(fake.requests("/items")) < 10


INCREMENTAL_GARBAGE = {
    "versions: a list": ("/items", json_answer(["BBBB2222"]), {"format": "versions"}),
    "versions: HTML": ("/items", raw_answer("<html>busy</html>", "text/html"),
                       {"format": "versions"}),
    "versions: text pairs": ("/items", json_answer(["AB", "CD"]), {"format": "versions"}),
    "collections: object": ("/collections", json_answer({"a": 1}), {}),
    "deleted: a list": ("/deleted", json_answer(["CCCC2222"]), {}),
    "deleted: items is text": ("/deleted", json_answer({"items": "CCCC2222"}), {}),
    "deleted: HTML": ("/deleted", raw_answer("<html>oops</html>", "text/html"), {}),
    "items by key: object": ("/items", json_answer({"BBBB2222": {}}), {"format": "json"}),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(INCREMENTAL_GARBAGE))
def test_unusable_answer_after_good_sync_leaves_vault_unchanged(
    tmp_path: Path, fake: FakeZotero, key_env: str, name: str
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    assert sync(config).counts()["created"] == 3
    before = dict(every_byte(tmp_path / "vault"))
    fake.edit("BBBB2222", title="Highway Networks, revised")
    fake.erase("CCCC2222")
    part, response, arg = INCREMENTAL_GARBAGE[name]
    answer_once(fake, part, response, **arg)
    with pytest.raises(SourceError) as caught:
        sync(config)
    assert_clean_source_error(caught.value, "unusable answer")
    assert dict(every_byte(tmp_path / "vault")) == before
    fake.tamper = None
    healed = sync(config)  # the next good answer brings everything
    assert healed.counts()["deleted"] == 1  # (the erased paper's note is updated too)
    assert "revised" in papers(tmp_path / "vault")["srivastava2015highway.md"]


@pytest.mark.parametrize(
    "body",
    [
        raw_answer("<html><body>Please log in</body></html>", "text/html"),
        raw_answer("Service temporarily unavailable\n", "text/plain"),
        json_answer(["AAAA2222", "BBBB2222"]),
        raw_answer("AAAA2222\nBBBB2222\n{}\n", "text/plain"),
    ],
    ids=["HTML", "text", "JSON list", "a bad line"],
)
def test_unusable_key_list_on_409_never_deletes(
    tmp_path: Path, fake: FakeZotero, key_env: str, body: Response
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    before = dict(every_byte(tmp_path / "vault"))
    fake.edit("BBBB2222", title="Highway Networks, revised")
    fake.deleted_floor = fake.version + 1  # /deleted answers 409: compare all keys
    answer_once(fake, "/items", body, format="keys")
    with pytest.raises(SourceError) as caught:
        sync(config)
    assert_clean_source_error(caught.value, "unusable answer", "key")
    assert dict(every_byte(tmp_path / "vault")) == before


def test_unidentifiable_entries_defer_deletions_through_sync(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    fake.erase("CCCC2222")
    fake.edit("BBBB2222", title="Highway Networks, revised")

    def add_junk(path: str, args: dict[str, str], response: Response) -> Response:
        if path.endswith("/items") and args.get("format", "json") == "json":
            response.set_data(json.dumps([*json.loads(response.get_data()), "junk", None]))
        return response

    fake.tamper = add_junk
    deferred = sync(config)
    assert deferred.counts()["updated"] == 1 and deferred.counts()["deleted"] == 0
    assert "deleted-in-zotero" not in papers(tmp_path / "vault")["ioffe2015batch.md"]
    assert any("skipped" in w for w in deferred.warnings)
    fake.tamper = None
    done = sync(config)  # the cursor did not move: the erasure is found now
    assert done.counts()["deleted"] == 1
    assert "deleted-in-zotero" in papers(tmp_path / "vault")["ioffe2015batch.md"]


def test_unidentifiable_versions_key_defers_deletions(fake: FakeZotero) -> None:
    small_library(fake)
    source = web_source(fake)
    first = source.read()
    fake.edit("BBBB2222", title="Highway Networks, revised")
    fake.erase("CCCC2222")

    def odd_key(path: str, args: dict[str, str], response: Response) -> Response:
        if args.get("format") == "versions":
            body = {**json.loads(response.get_data()), "../../etc/passwd": 3, "A,B": 4}
            response.set_data(json.dumps(body))
        return response

    fake.tamper = odd_key
    second = source.read(first.cursor)
    assert [i.title for i in second.items] == ["Highway Networks, revised"]
    assert second.all_keys is None and second.cursor is None
    assert all("A,B" not in r[1].get("itemKey", "") for r in fake.log)
    fake.tamper = None
    third = source.read(first.cursor)  # the old cursor, as sync keeps it
    assert third.all_keys == {"AAAA2222", "BBBB2222"}


# -- big answers


def test_ten_megabyte_abstract(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    small_library(fake)
    huge = ("All work and no play makes Jack a dull boy. " * 240_000)[:10_000_000]
    fake.edit("BBBB2222", abstractNote=huge)
    config = web_config(tmp_path / "vault", fake)
    result = sync(config)
    assert result.ok and result.counts()["created"] == 3
    note = papers(tmp_path / "vault")["srivastava2015highway.md"]
    assert len(note) > 10_000_000 and "dull boy" in note


def test_thousands_of_items_in_one_page(fake: FakeZotero) -> None:
    fake.ignore_limit = True  # a server that ignores `limit`
    padding = "x" * 1800
    fake.put(*(item(zkey(7000 + n), f"Paper {n}", abstractNote=padding) for n in range(5000)))
    sizes: list[int] = []

    def measure(path: str, args: dict[str, str], response: Response) -> Response:
        sizes.append(len(response.get_data()))
        return response

    fake.tamper = measure
    snapshot = web_source(fake).read()
    assert len(snapshot.items) == 5000 and snapshot.warnings == ()
    assert len(snapshot.all_keys or ()) == 5000 and snapshot.cursor is not None
    assert len(fake.requests("/items")) == 1 and max(sizes) > 10_000_000


def test_ten_megabytes_of_garbage(fake: FakeZotero) -> None:
    small_library(fake)
    answer_once(fake, "/items", raw_answer(b"\x00\xff garbage " * 1_000_000, "application/json"))
    with pytest.raises(SourceError) as caught:
        web_source(fake).read()
    assert_clean_source_error(caught.value, "unusable answer", "MB")


# -- timeouts


class RealSleeps(Sleeps):
    """Records waits and spends them: the test server answers one request at a time, so a
    retry must wait until it has finished the slow answer the client gave up on."""

    def __call__(self, seconds: float) -> None:
        super().__call__(seconds)
        time.sleep(seconds)


class SlowServer:
    """Answers after `delay` seconds, the first `times` requests; counts finished answers."""

    def __init__(self, delay: float, times: int = 1_000) -> None:
        self.delay, self.times, self.started, self.finished = delay, times, 0, 0

    def __call__(self, server: FakeZotero, path: str) -> None:
        self.started += 1
        if self.started <= self.times:
            time.sleep(self.delay)
        self.finished += 1

    def drain(self) -> None:
        """Wait until the (single-threaded) server has answered every request it got."""
        deadline = time.monotonic() + 30
        while self.finished < self.started and time.monotonic() < deadline:
            time.sleep(0.05)


def test_timeouts_are_retried_then_a_source_error(fake: FakeZotero) -> None:
    small_library(fake)
    slow = SlowServer(1.5)  # far past the timeout: a loaded machine cannot blur the two
    fake.on_request = slow
    recorded = Sleeps()
    source = web_source(fake, retry=RetryPolicy(attempts=3, timeout=0.5, sleep=recorded))
    started = time.monotonic()
    try:
        with pytest.raises(SourceError) as caught:
            source.read()
        elapsed = time.monotonic() - started
    finally:
        slow.drain()
    assert_clean_source_error(caught.value, hint="try again later")
    assert "did not answer within 0.5 s" in str(caught.value)
    assert "3 attempts" in str(caught.value)
    assert recorded == [1.0, 2.0] and elapsed < 4
    # every attempt was sent; on a loaded machine the last may time out before the server's
    # handler thread has even started on it, so the server may have seen only two
    assert 2 <= slow.started <= 3


def test_one_timeout_then_success(fake: FakeZotero) -> None:
    small_library(fake)
    slow = SlowServer(1.5, times=1)  # far past the timeout; the others far within it
    fake.on_request = slow
    recorded = RealSleeps()
    policy = RetryPolicy(attempts=3, base_delay=0.4, timeout=0.75, sleep=recorded)
    try:
        snapshot = web_source(fake, retry=policy).read()
    finally:
        slow.drain()
    assert len(snapshot.items) == 3 and recorded == [0.4]


def test_timeout_after_good_sync_leaves_vault_unchanged(
    tmp_path: Path, fake: FakeZotero, key_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_library(fake)
    config = web_config(tmp_path / "vault", fake)
    sync(config)
    before = dict(every_byte(tmp_path / "vault"))
    fake.edit("BBBB2222", title="Highway Networks, revised")
    slow = SlowServer(0.4)
    fake.on_request = slow
    monkeypatch.setattr(api, "DEFAULT_RETRY", RetryPolicy(attempts=2, timeout=0.1, sleep=Sleeps()))
    try:
        with pytest.raises(SourceError) as caught:
            sync(config)
    finally:
        slow.drain()
    assert "did not answer within 0.1 s (2 attempts)" in str(caught.value)
    assert dict(every_byte(tmp_path / "vault")) == before


def test_timeout_through_zob_sync_exits_3(
    tmp_path: Path, fake: FakeZotero, key_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    small_library(fake)
    slow = SlowServer(0.5)
    fake.on_request = slow
    policy = RetryPolicy(attempts=2, timeout=0.15, sleep=Sleeps())
    monkeypatch.setattr(api, "DEFAULT_RETRY", policy)
    vault = tmp_path / "vault"
    vault.mkdir()
    try:
        result = CliRunner().invoke(
            main, ["sync", "--source", "web", "--library-id", "1", "--api-url", fake.url,
                   "--vault", str(vault)],
        )  # fmt: skip
    finally:
        slow.drain()
    assert result.exit_code == 3, result.output
    assert "did not answer within 0.15 s (2 attempts)" in result.output
    assert "Traceback" not in result.output and KEY not in result.output
