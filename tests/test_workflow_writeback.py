"""Progress back to Zotero: pyzotero against a real local HTTP server speaking the web API's
write protocol — item versions, `If-Unmodified-Since-Version`, `Last-Modified-Version`, 204 on
success, 412 when the item changed in between, 403 for a key without write access."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bridge.cli import main
from bridge.config import Config
from bridge.sync import SyncOptions, sync
from tests.helpers import ModelSource, make_item, settled, vault_config

KEY = "s3cr3tWRITEkey0123456789"


class FakeZotero:
    """zotero.org's `/users/1/items/KEY` for reading and PATCHing items, and `/itemFields`."""

    def __init__(self, server: HTTPServer) -> None:
        self.library_version = 100
        self.items: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        self.concurrent_edits = 0  # PATCHes answered 412 because "another client" saved first
        self.deny_writes = False
        server.expect_request(re.compile(r"^/users/1/items/\w+$")).respond_with_handler(self.item)
        server.expect_request("/itemFields").respond_with_handler(self.fields)
        self.url = server.url_for("/").rstrip("/")

    def add(self, key: str, *tags: str) -> None:
        self.items[key] = {"version": self.library_version, "tags": [{"tag": t} for t in tags]}

    def tags(self, key: str) -> list[str]:
        return [t["tag"] for t in self.items[key]["tags"]]

    def methods(self) -> list[str]:
        return [method for method, path, _, _ in self.requests if path != "/itemFields"]

    def _bump(self, key: str) -> int:
        self.library_version += 1
        self.items[key]["version"] = self.library_version
        return self.library_version

    def fields(self, request: Request) -> Response:
        self.requests.append(("GET", request.path, dict(request.headers), None))
        body = [{"field": "title", "localized": "Title"}, {"field": "date", "localized": "Date"}]
        return Response(json.dumps(body), content_type="application/json")

    def item(self, request: Request) -> Response:
        key = request.path.rsplit("/", 1)[-1]
        body = json.loads(request.data) if request.data else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if key not in self.items:
            self.add(key)
        item = self.items[key]
        if request.method == "GET":
            data = {"key": key, "version": item["version"], "itemType": "journalArticle",
                    "title": "A Paper", "tags": item["tags"]}  # fmt: skip
            payload = {"key": key, "version": item["version"], "library": {"type": "user",
                       "id": 1}, "links": {}, "meta": {}, "data": data}  # fmt: skip
            return Response(
                json.dumps(payload),
                content_type="application/json",
                headers={"Last-Modified-Version": str(self.library_version)},
            )
        if request.method != "PATCH":
            return Response("Method not allowed", status=405)
        if self.deny_writes:
            return Response("Write access denied", status=403)
        expected = request.headers.get("If-Unmodified-Since-Version")
        if self.concurrent_edits:
            self.concurrent_edits -= 1
            item["tags"] = item["tags"] + [{"tag": f"elsewhere-{self.concurrent_edits}"}]
            self._bump(key)
        if expected != str(item["version"]):
            return Response(
                f"Item has been modified since specified version "
                f"(expected {expected}, found {item['version']})",
                status=412,
            )
        item["tags"] = body["tags"]
        version = self._bump(key)
        return Response(status=204, headers={"Last-Modified-Version": str(version)})


@pytest.fixture
def fake(httpserver: HTTPServer) -> FakeZotero:
    return FakeZotero(httpserver)


@pytest.fixture
def key_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ZOTERO_API_KEY", KEY)
    return KEY


def set_props(path: Path, **changes: object) -> None:
    text = path.read_text(encoding="utf-8")
    for name, value in changes.items():
        text = re.sub(rf"(?m)^{name}:.*$", f"{name}: {value}", text, count=1)
    stat = path.stat()
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def env(tmp_path: Path, fake: FakeZotero, key_env: str) -> tuple[ModelSource, Config, Path]:
    item = make_item("Soft-NMS", citation_key="bodla2017", tags=("detection", "proposes:Soft-NMS"))
    fake.add(item.key, "detection", "proposes:Soft-NMS")
    config = vault_config(
        tmp_path, writeback=True, writeback_library_id="1", writeback_api_url=fake.url
    )
    source = ModelSource([item])
    result = sync(config, source=source)
    assert result.ok and fake.requests == []  # pass 0, nothing to say to Zotero
    return source, config, tmp_path / "Papers" / "bodla2017.md"


def test_writeback_is_off_by_default(tmp_path: Path, fake: FakeZotero, key_env: str) -> None:
    source = ModelSource([make_item("Paper", citation_key="p2020")])
    config = vault_config(tmp_path)
    sync(config, source=source)
    set_props(tmp_path / "Papers" / "p2020.md", **{"pass": 2})
    assert sync(config, source=source).ok
    assert fake.requests == []


def test_progress_tags_follow_the_note(env, fake: FakeZotero) -> None:
    source, config, note = env
    key = next(iter(source.items))
    set_props(note, **{"pass": 1})
    assert sync(config, source=source).ok
    assert fake.tags(key) == ["detection", "proposes:Soft-NMS", "pass/1"]
    assert fake.methods() == ["GET", "PATCH"]
    patch = next(r for r in fake.requests if r[0] == "PATCH")
    assert patch[2]["If-Unmodified-Since-Version"] == "100"
    assert patch[2]["Authorization"] == f"Bearer {KEY}"  # a header, never the URL
    assert sync(config, source=source).ok and fake.methods() == ["GET", "PATCH"]  # no change
    set_props(note, **{"pass": 2, "status": "dropped"})
    assert sync(config, source=source).ok
    assert fake.tags(key) == ["detection", "proposes:Soft-NMS", "pass/2", "dropped"]
    set_props(note, **{"pass": 0, "status": "to-read"})
    assert sync(config, source=source).ok
    assert fake.tags(key) == ["detection", "proposes:Soft-NMS"]


def test_a_412_is_answered_by_reading_again_and_retrying_once(env, fake: FakeZotero) -> None:
    source, config, note = env
    key = next(iter(source.items))
    fake.concurrent_edits = 1
    set_props(note, **{"pass": 3})
    result = sync(config, source=source)
    assert result.ok, result.errors
    assert fake.methods() == ["GET", "PATCH", "GET", "PATCH"]
    first, second = [r for r in fake.requests if r[0] == "PATCH"]
    assert int(second[2]["If-Unmodified-Since-Version"]) > int(
        first[2]["If-Unmodified-Since-Version"]
    )
    # the other client's edit survives, and the progress tag is in
    assert fake.tags(key) == ["detection", "proposes:Soft-NMS", "elsewhere-0", "pass/3"]


def test_an_item_that_keeps_changing_is_tried_again_next_sync(env, fake: FakeZotero) -> None:
    source, config, note = env
    key = next(iter(source.items))
    fake.concurrent_edits = 2
    set_props(note, **{"pass": 1})
    settled(note)  # one sync, not one that waits for the edit and tries again
    result = sync(config, source=source)
    assert not result.ok and "kept changing" in result.errors[0]["message"]
    assert "pass/1" not in fake.tags(key)
    assert sync(config, source=source).ok and "pass/1" in fake.tags(key)


def test_a_key_without_write_access_says_what_to_do(
    tmp_path: Path, fake: FakeZotero, key_env: str
) -> None:
    vault = tmp_path / "vault"
    vault.mkdir()
    config_file = tmp_path / "config.toml"
    config_file.write_text(
        f'vault = "{vault}"\n[source]\ntype = "sample"\n'
        f'[writeback]\nenabled = true\nlibrary_id = "1"\napi_url = "{fake.url}"\n'
    )
    runner = CliRunner()
    assert runner.invoke(main, ["sync", "--config", str(config_file)]).exit_code == 0
    fake.deny_writes = True
    set_props(vault / "Papers" / "he2016deep.md", **{"pass": 1})
    set_props(vault / "Papers" / "wu2018group.md", status="dropped")
    result = runner.invoke(main, ["sync", "--config", str(config_file)])
    assert result.exit_code == 1
    assert "no write access" in result.output and "Allow write access" in result.output
    assert fake.methods().count("PATCH") == 1  # the first refusal stops the round
    everything = result.output + "".join(
        p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()
    )
    assert KEY not in everything  # not in output, notes, config or the state DB


def test_writeback_without_a_library_id_or_key(
    tmp_path: Path, fake: FakeZotero, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = ModelSource([make_item("Paper", citation_key="p2020")])
    config = vault_config(tmp_path, writeback=True, writeback_api_url=fake.url)
    sync(config, source=source)
    set_props(tmp_path / "Papers" / "p2020.md", **{"pass": 1})
    result = sync(config, SyncOptions(), source=source)
    assert not result.ok and "writeback.library_id" in result.errors[0]["message"]
    monkeypatch.delenv("ZOTERO_API_KEY", raising=False)
    config = vault_config(
        tmp_path, writeback=True, writeback_library_id="1", writeback_api_url=fake.url
    )
    result = sync(config, source=source)
    assert "write access" in result.errors[0]["message"] and fake.requests == []
