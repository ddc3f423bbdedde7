"""The local API's guards: who may call it, how much they may send, which paths they may
name. Each refusal has its status and no effect on the vault; the token is never logged."""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge import api_server
from bridge.api_server import API_FILE, MAX_BODY, ApiServer, read_api_file
from bridge.config import Config
from bridge.sync import sync
from tests.helpers import snapshot_tree, with_the_plugin


@dataclass
class Api:
    vault: Path
    port: int
    token: str
    records: list[str]

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = "ok",
        host: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host or f"127.0.0.1:{self.port}")
        if token is not None:
            conn.putheader("Authorization", f"Bearer {self.token if token == 'ok' else token}")
        data = b"" if body is None else json.dumps(body).encode()
        extra = {"Content-Type": "application/json", **(headers or {})}
        if method == "POST":
            extra.setdefault("Content-Length", str(len(data)))
        for name, value in extra.items():
            conn.putheader(name, value)
        conn.endheaders()
        if data and int(extra["Content-Length"]) == len(data):
            conn.send(data)
        response = conn.getresponse()
        answer = json.loads(response.read() or b"null")
        conn.close()
        return response.status, answer


class _Records(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    with serving(tmp_path) as started:
        yield started


@contextlib.contextmanager
def serving(tmp_path: Path) -> Iterator[Api]:
    vault = tmp_path / "vault"
    with_the_plugin(vault)
    # no item passes the filter: every item is in the index, none has a note yet
    config = Config(vault=vault, source="sample", filter_tags=("no-such-tag",))
    sync(config)
    records: list[str] = []
    logger = logging.getLogger("bridge.daemon")
    handler = _Records(records)
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    server = ApiServer(vault.resolve(), lambda: config)
    server.start()
    try:
        yield Api(vault, server.port, server.token, records)
    finally:
        server.close()
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def item_without_note(api: Api) -> str:
    status, answer = api.request("GET", "/items")
    assert status == 200
    return next(row["key"] for row in answer["items"] if row["note"] is None)


def test_the_api_file_is_private_and_goes_with_the_server(tmp_path: Path, api: Api) -> None:
    path = api.vault / ".zotero-bridge" / API_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert read_api_file(api.vault) == {
        "port": api.port, "token": api.token, "pid": read_api_file(api.vault)["pid"], "format": 1,
        "host": socket.gethostname(),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("why", "kwargs", "status"),
    [
        ("no token", {"token": None}, 401),
        ("a wrong token", {"token": "x" * 43}, 401),
        (
            "a token in the wrong scheme",
            {"token": None, "headers": {"Authorization": "Basic abc"}},
            401,
        ),
        ("a foreign Host (DNS rebinding)", {"host": "evil.example"}, 403),
        ("another port in Host", {"host": "127.0.0.1:1"}, 403),
        ("a web page's Origin", {"headers": {"Origin": "https://evil.example"}}, 403),
        ("a null Origin", {"headers": {"Origin": "null"}}, 403),
        ("Obsidian's Origin as a prefix", {"headers": {"Origin": "app://obsidian.md.evil"}}, 403),
        ("a browser's no-Origin request", {"headers": {"Sec-Fetch-Site": "cross-site"}}, 403),
        ("a trailing dot in Host", {"host": "127.0.0.1.:{port}"}, 403),
        ("IPv6 loopback in Host", {"host": "[::1]:{port}"}, 403),
        ("userinfo in Host", {"host": "evil@127.0.0.1:{port}"}, 403),
        ("a Host with no port", {"host": "localhost"}, 403),
    ],
)
def test_a_caller_that_is_not_the_plugin_is_refused_with_no_effect(
    api: Api, why: str, kwargs: dict[str, Any], status: int
) -> None:
    key = item_without_note(api)
    before = snapshot_tree(api.vault)
    if "host" in kwargs:
        kwargs = {**kwargs, "host": kwargs["host"].replace("{port}", str(api.port))}
    for method, path, body in (("POST", "/notes", {"key": key}), ("POST", "/sync", {}),
                               ("GET", "/status", None), ("GET", "/items", None)):  # fmt: skip
        got, answer = api.request(method, path, body, **kwargs)
        assert got == status, (why, path, answer)
        assert "error" in answer and "items" not in answer
    assert snapshot_tree(api.vault) == before, why


def test_obsidian_s_origin_and_the_right_token_are_let_in(api: Api) -> None:
    got, answer = api.request("GET", "/status", headers={"Origin": "app://obsidian.md"})
    assert got == 200 and answer["synced"] is True and "daemon" in answer
    got, _ = api.request("GET", "/status", host=f"localhost:{api.port}")
    assert got == 200


def test_bodies_are_size_limited_and_typed(api: Api) -> None:
    key = item_without_note(api)
    before = snapshot_tree(api.vault)
    huge = {"Content-Length": str(MAX_BODY + 1)}
    assert api.request("POST", "/notes", {"key": key}, headers=huge)[0] == 413
    assert api.request("POST", "/notes", {"key": key, "pad": "x" * MAX_BODY})[0] == 413
    chunked = {"Transfer-Encoding": "chunked"}
    assert api.request("POST", "/notes", {"key": key}, headers=chunked)[0] == 411
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert api.request("POST", "/notes", {"key": key}, headers=form)[0] == 415
    assert api.request("POST", "/notes", [key])[0] == 400
    assert snapshot_tree(api.vault) == before


def test_a_path_or_key_outside_the_vault_is_refused(api: Api, tmp_path: Path) -> None:
    outside = tmp_path / "outside.md"
    outside.write_text("---\ntype: method\n---\n")
    (api.vault / "Linked.md").symlink_to(outside)
    before = snapshot_tree(api.vault)
    for path in ("../outside.md", "/etc/passwd.md", str(outside), "Linked.md",
                 "Papers/../../outside.md", ".zotero-bridge/x.md", "C:\\\\x.md", "notes.txt",
                 ""):  # fmt: skip
        got, answer = api.request("GET", "/lineage?path=" + path.replace("/", "%2F"))
        assert got == 400, (path, answer)
    for key in ("../../x", "/etc/passwd", "ABC", "abcdefgh", None):
        got, answer = api.request("POST", "/notes", {"key": key})
        assert got == 400, (key, answer)
    assert snapshot_tree(api.vault) == before
    assert outside.read_text() == "---\ntype: method\n---\n"


def test_the_plugin_s_requests_work_and_the_token_is_never_logged(api: Api) -> None:
    key = item_without_note(api)
    got, made = api.request("POST", "/notes", {"key": key})
    assert got == 200 and made["action"] == "create", made
    assert (api.vault / made["path"]).is_file()
    got, answer = api.request("GET", "/items?q=" + key)
    assert got == 200 and answer["items"][0]["note"] == made["path"]
    got, lineage = api.request("GET", "/lineage?path=" + made["path"])
    assert got == 200 and lineage["kind"] == "paper"
    got, synced = api.request("POST", "/sync", {})
    assert got == 200 and "counts" in synced
    api.request("GET", f"/status?token={api.token}")  # a token in a URL is not accepted
    api.request("GET", "/nowhere")
    assert api.records, "requests are logged"
    assert all(api.token not in line and api.token[:8] not in line for line in api.records)


# --- review: what a hostile local client can send ---------------------------------------------


def _raw(api: Api, head: str, body: bytes = b"") -> bytes:
    """One request as raw bytes (headers as given, nothing added); the server's whole answer."""
    with socket.create_connection(("127.0.0.1", api.port), timeout=10) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def _status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_ambiguous_headers_are_refused(api: Api) -> None:
    """Two Hosts (a good one and a page's), two lengths, a length `int()` reads but HTTP does
    not (`0_2`, `+2`): each is a request two parsers could read two ways — refused."""
    good = f"Host: 127.0.0.1:{api.port}\nAuthorization: Bearer {api.token}\n"
    post = f"POST /sync HTTP/1.1\n{good}Content-Type: application/json\nConnection: close\n"
    for why, head, status in (
        ("two Hosts", f"GET /status HTTP/1.1\n{good}Host: evil.example\nConnection: close\n", 403),
        ("two lengths", f"{post}Content-Length: 2\nContent-Length: 0\n", 400),
        ("a length with _", f"{post}Content-Length: 0_2\n", 400),
        ("a length with +", f"{post}Content-Length: +2\n", 400),
    ):
        assert _status_of(_raw(api, head, b"{}")) == status, why


def test_a_browser_request_without_origin_is_refused(api: Api) -> None:
    """A page's no-cors request may carry no Origin, but a browser marks it `Sec-Fetch-Site`;
    the plugin (Node's http) sends neither. Defence in depth behind the token."""
    for site in ("cross-site", "same-site"):
        got, _ = api.request("GET", "/status", headers={"Sec-Fetch-Site": site})
        assert got == 403, site
    assert api.request("GET", "/status")[0] == 200


def _held_open(api: Api, seconds: float) -> bool:
    """A client that sends a header byte every 0.2 s (slowloris): still connected after
    `seconds`?"""
    conn = socket.create_connection(("127.0.0.1", api.port), timeout=5)
    try:
        conn.sendall(f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n".encode())
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            conn.sendall(b"X")
            time.sleep(0.2)
        conn.sendall(b"-A: b\r\n")
        conn.settimeout(0.5)
        try:
            return conn.recv(1) != b""
        except TimeoutError:
            return True  # nothing answered, nothing closed: the thread is still held
    except OSError:
        return False
    finally:
        conn.close()


def test_a_slow_client_is_cut_off_at_the_request_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read has a timeout, but a client dribbling a byte at a time must not hold a thread
    past the deadline for its whole request."""
    monkeypatch.setattr(api_server, "REQUEST_TIMEOUT", 1.0)
    monkeypatch.setattr(api_server._Handler, "timeout", 1.0)
    with serving(tmp_path) as api:
        assert not _held_open(api, 3.0)


def test_connections_at_once_are_capped_and_the_plugin_gets_in_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle connections beyond the cap are closed at once (no thread each); once the idle
    ones reach the deadline, the plugin's request is answered."""
    monkeypatch.setattr(api_server, "REQUEST_TIMEOUT", 1.0)
    monkeypatch.setattr(api_server._Handler, "timeout", 1.0)
    monkeypatch.setattr(api_server, "MAX_CONNECTIONS", 4)
    with serving(tmp_path) as api:
        idle = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(4)]
        time.sleep(0.3)
        threads = threading.active_count()
        extra = [socket.create_connection(("127.0.0.1", api.port), timeout=5) for _ in range(20)]
        try:
            assert all(conn.recv(1) == b"" for conn in extra), "over the cap: closed at once"
            assert threading.active_count() <= threads + 1
            time.sleep(1.5)
            assert api.request("GET", "/status")[0] == 200
        finally:
            for conn in idle + extra:
                conn.close()


def test_a_link_loop_as_the_note_path_is_a_bad_request_not_a_crash(api: Api) -> None:
    """`Path.resolve` raises on a loop of links (RuntimeError before Python 3.13): that was a
    500 and a traceback in the daemon's log for what is a bad path."""
    (api.vault / "a.md").symlink_to(api.vault / "b.md")
    (api.vault / "b.md").symlink_to(api.vault / "a.md")
    got, answer = api.request("GET", "/lineage?path=a.md")
    assert got == 400, answer
    assert not any("Traceback" in line or "internal error" in line for line in api.records)


def test_a_body_left_unread_is_never_read_as_a_request(api: Api) -> None:
    """A request refused before its body is read (no token, a GET with a body) must end the
    connection: else the body's bytes are parsed as the next request on it (smuggling)."""
    inner = (
        f"GET /status HTTP/1.1\r\nHost: 127.0.0.1:{api.port}\r\n"
        f"Authorization: Bearer {api.token}\r\nConnection: close\r\n\r\n"
    ).encode()
    for head in (
        f"POST /sync HTTP/1.1\nHost: 127.0.0.1:{api.port}\nContent-Type: application/json\n",
        f"GET /status HTTP/1.1\nHost: 127.0.0.1:{api.port}\nAuthorization: Bearer {api.token}\n",
    ):
        answer = _raw(api, f"{head}Content-Length: {len(inner)}\n", inner)
        assert answer.count(b"HTTP/1.1 ") == 1, answer[:400]


def test_the_token_is_never_written_through_a_link_planted_as_api_json(tmp_path: Path) -> None:
    """A link (or a second hard link) planted as `api.json` is replaced, not written
    through: the token never lands in a file that others may read."""
    outside = tmp_path / "readable-by-all.json"
    outside.write_text("{}")
    outside.chmod(0o644)
    state = tmp_path / "vault" / ".zotero-bridge"
    state.mkdir(parents=True)
    (state / API_FILE).symlink_to(outside)
    config = Config(vault=tmp_path / "vault", source="sample")
    server = ApiServer((tmp_path / "vault").resolve(), lambda: config)
    server.start()
    try:
        assert outside.read_text() == "{}"
        assert not (state / API_FILE).is_symlink()
        assert (state / API_FILE).stat().st_mode & 0o777 == 0o600
        assert read_api_file(tmp_path / "vault")["token"] == server.token
    finally:
        server.close()
    assert outside.read_text() == "{}" and not (state / API_FILE).exists()
