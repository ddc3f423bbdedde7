"""The local API `zob watch` serves to the Obsidian plugin: status, sync, items, new note, lineage.

Why the standard library's `ThreadingHTTPServer`: the API is five small JSON endpoints for one
client on the loopback interface. A kept framework (aiohttp, Starlette + uvicorn) would add
two or more dependencies and an event loop beside the daemon's own thread model for nothing
this needs; `http.server` is maintained with Python, and every check below (Host, Origin,
token, body size) is a few explicit lines we can test, not a middleware's default. A thread
per request keeps a long sync from blocking `/status`.

Who may call it, checked in this order for every request:
1. **Host** must be `127.0.0.1:PORT` or `localhost:PORT` (a DNS-rebinding page sends its own
   name): else 403.
2. **Origin**, when a browser sends one, must be Obsidian's (`app://obsidian.md`): a web page
   in a browser on this machine is refused with 403 before anything runs. No CORS header is
   ever sent, so no page can read an answer either.
3. **Token**: `Authorization: Bearer <token>`, compared in constant time: else 401. The token
   is random per start, kept only in `<vault>/.zotero-bridge/api.json` (mode 0600, with the
   port and the host name) and registered with `bridge.redact`, so it never reaches a log
   line; it is never accepted in a URL.
4. **Body**: a POST must say its `Content-Length` (411), in digits (400), of at most
   `MAX_BODY` bytes (413, refused before reading it), be `application/json` (415) holding one
   JSON object (400). Two Host, Origin, Authorization or Content-Length headers: refused. A
   browser's `Sec-Fetch-Site` other than `none`/`same-origin`: 403, even without an Origin.
5. **Arguments**: a note path must be a vault-relative `.md` path that stays inside the vault
   (400); an item key must look like one (400).

At most `MAX_CONNECTIONS` connections at once (more are closed at once, no thread each), and
each request must be read whole within `REQUEST_TIMEOUT`: a local client dribbling bytes or
opening thousands of connections cannot pile up threads in the daemon that runs the syncs.

Every write goes through the same pipeline, under the same sync lock, as the command line:
`POST /sync` is `bridge.sync.sync`, `POST /notes` is `zob new`'s `new_paper_note` — both take
the lock with `bridge.session.writing`, so they take turns with the daemon's own syncs.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bridge import redact
from bridge.config import Config
from bridge.errors import BridgeError
from bridge.statefolder import STATE_DIRNAME, StateFolder

log = logging.getLogger("bridge.daemon")

API_FILE = "api.json"
MAX_BODY = 16 * 1024
ALLOWED_ORIGINS = frozenset({"app://obsidian.md"})
REQUEST_TIMEOUT = 15.0  # seconds a client may take to send its whole request
MAX_CONNECTIONS = 32  # at once; more are closed unanswered (no thread each)
_SINGLE = ("Host", "Origin", "Authorization", "Content-Length", "Content-Type")
_ITEM_KEY = re.compile(r"^[A-Z0-9]{8}$")


class ApiError(Exception):
    """A refused request: its HTTP status and a sentence for the plugin to show."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------- arguments


def note_path(vault: Path, value: object) -> str:
    """A vault-relative note path from a request, or ApiError(400): no absolute path, no
    `..`, no hidden folder, a `.md` name, and — links resolved — inside the vault."""
    if not isinstance(value, str) or not value or len(value) > 1024 or "\0" in value:
        raise ApiError(HTTPStatus.BAD_REQUEST, "give the note's path in the vault")
    if "\\" in value:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{value!r}: use / in paths")
    path = PurePosixPath(value)
    parts = path.parts
    if path.is_absolute() or any(p in ("..", ".") or p.startswith(".") for p in parts):
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{value!r} is not a path inside the vault")
    if path.suffix.lower() != ".md":
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{value!r} is not a note (.md)")
    root = vault.resolve()
    try:
        resolved = (root / path).resolve()
    except (OSError, RuntimeError):  # a loop of links (RuntimeError before Python 3.13)
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{value!r} is a loop of links") from None
    if root not in resolved.parents:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{value!r} leads outside the vault")
    return path.as_posix()


def item_key(value: object) -> str:
    if not isinstance(value, str) or not _ITEM_KEY.match(value):
        raise ApiError(HTTPStatus.BAD_REQUEST, "give the item's 8-character Zotero key")
    return value


# --------------------------------------------------------------------------- endpoints


def _status(config: Config, live: dict[str, Any]) -> dict[str, Any]:
    """What `zob status --json` says, with the daemon's live status (`live`) — read here
    from the state DB rather than through `bridge.status`, which imports the daemon."""
    from bridge.state import State

    assert config.vault is not None
    info: dict[str, Any] = {"vault": str(config.vault), "source": config.source,
                            "daemon": {**live, "running": True}}  # fmt: skip
    info["synced"] = (config.vault / STATE_DIRNAME / "state.sqlite").exists()
    info["last_sync"], info["conflicts"] = None, []
    if info["synced"]:
        with State(config.vault) as state:
            info["last_sync"] = state.last_sync()
            info["conflicts"] = [
                {"key": key, "path": path, "field": field, "since": since}
                for key, path, field, since in state.conflicts()
            ]
    return info


def _sync(config: Config) -> dict[str, Any]:
    from bridge.sync import SyncOptions, sync

    result = sync(config, SyncOptions(wait_for_saves=False))
    return {
        "counts": result.counts(),
        "warnings": [redact.redact(w) for w in result.warnings][:50],
        "errors": [redact.redact(e["message"]) for e in result.errors][:50],
    }


def _items(config: Config, query: dict[str, list[str]]) -> dict[str, Any]:
    from bridge.library_index import load, search

    assert config.vault is not None
    try:
        with StateFolder(config.vault, create=False) as folder:
            index = load(folder) or {"items": [], "complete": False}
    except FileNotFoundError:  # never synced: no state folder yet
        index = {"items": [], "complete": False}
    items = index["items"]
    q = (query.get("q") or [""])[0][:200]
    try:
        limit = max(1, min(int((query.get("limit") or ["50"])[0]), 500))
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, "limit must be a number") from None
    if q.strip():
        items = search(items, q, limit)
    elif "limit" in query:
        items = items[:limit]
    return {"complete": bool(index.get("complete")), "count": len(items), "items": items}


def _new_note(config: Config, body: dict[str, Any]) -> dict[str, Any]:
    from bridge.library_index import refresh_notes
    from bridge.workflow.newnote import new_paper_note

    key = item_key(body.get("key"))
    made = new_paper_note(config, key, first=True)
    refresh_notes(config)
    return {
        "path": made.path,
        "action": made.action,
        "uri": made.uri,
        "warnings": [redact.redact(w) for w in made.result.warnings][:50],
        "errors": [redact.redact(e["message"]) for e in made.result.errors][:50],
    }


def _lineage(config: Config, query: dict[str, list[str]]) -> dict[str, Any]:
    from bridge.api_lineage import note_lineage

    assert config.vault is not None
    path = note_path(config.vault, (query.get("path") or [""])[0])
    return note_lineage(config, path)


ROUTES: dict[tuple[str, str], Callable[[_Server, dict[str, list[str]], dict], dict]] = {
    ("GET", "/status"): lambda server, query, body: _status(server.config(), server.live()),
    ("POST", "/sync"): lambda server, query, body: _sync(server.config()),
    ("GET", "/items"): lambda server, query, body: _items(server.config(), query),
    ("POST", "/notes"): lambda server, query, body: _new_note(server.config(), body),
    ("GET", "/lineage"): lambda server, query, body: _lineage(server.config(), query),
}


# --------------------------------------------------------------------------- the handler


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "zob"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def do_GET(self) -> None:  # noqa: N802 - http.server's names
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")

    def handle_one_request(self) -> None:
        """The socket's timeout bounds each read; this deadline bounds the whole request, so a
        client sending a byte at a time (slowloris) cannot hold a thread for ever."""
        self._deadline = threading.Timer(REQUEST_TIMEOUT, self._cut_off)
        self._deadline.daemon = True
        self._deadline.start()
        try:
            super().handle_one_request()
        finally:
            self._deadline.cancel()

    def _cut_off(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _handle(self, method: str) -> None:
        self._body_read = False
        try:
            self._check_caller()
            url = urlsplit(self.path)
            route = ROUTES.get((method, url.path))
            if route is None:
                known = any(path == url.path for _, path in ROUTES)
                status = HTTPStatus.METHOD_NOT_ALLOWED if known else HTTPStatus.NOT_FOUND
                raise ApiError(status, f"no {method} {url.path}")
            body = self._body() if method == "POST" else {}
            self._deadline.cancel()  # all read: a sync may now take its time
            answer = route(self.server, parse_qs(url.query), body)
            self._send(HTTPStatus.OK, answer)
        except ApiError as exc:
            self._send(exc.status, {"error": exc.message})
        except BridgeError as exc:
            status = HTTPStatus.CONFLICT if exc.exit_code == 6 else HTTPStatus.UNPROCESSABLE_ENTITY
            self._send(status, {"error": redact.redact(exc.message), "hint": exc.hint})
        except Exception as exc:  # noqa: BLE001 - a bug answers 500, the daemon goes on
            log.exception("local API: internal error on %s %s", method, self._safe_path())
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": f"{type(exc).__name__}"})

    def _check_caller(self) -> None:
        port = self.server.server_address[1]
        for name in _SINGLE:  # two of one (a good Host and a page's): which one counts?
            if len(self.headers.get_all(name) or ()) > 1:
                self.close_connection = True
                raise ApiError(HTTPStatus.BAD_REQUEST if name != "Host" else
                               HTTPStatus.FORBIDDEN, f"more than one {name} header")  # fmt: skip
        host = self.headers.get("Host", "")
        if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            raise ApiError(HTTPStatus.FORBIDDEN, "this API answers only on 127.0.0.1")
        origin = self.headers.get("Origin")
        if origin is not None and origin not in ALLOWED_ORIGINS:
            raise ApiError(HTTPStatus.FORBIDDEN, "requests from web pages are refused")
        # a browser marks even a request without Origin; Node's http (the plugin) sends none
        if self.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            raise ApiError(HTTPStatus.FORBIDDEN, "requests from web pages are refused")
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.server.token.encode()
        ):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "a valid token is needed (api.json)")

    def _body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length")
        given = self.headers.get("Content-Length")
        if given is None:
            self.close_connection = True
            raise ApiError(HTTPStatus.LENGTH_REQUIRED, "a Content-Length is needed")
        if not (given.isascii() and given.isdigit()):  # int() also takes "+2", "0_2", " 2"
            self.close_connection = True
            raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Length must be digits")
        length = int(given)
        if length > MAX_BODY:
            self.close_connection = True  # the body is not read: the connection cannot go on
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"bodies stop at {MAX_BODY} B")
        data = self.rfile.read(length)
        self._body_read = True
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise ApiError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send application/json")
        try:
            body = json.loads(data or b"{}")
        except ValueError:
            raise ApiError(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
        return body

    def _send(self, status: HTTPStatus, data: dict[str, Any]) -> None:
        payload = json.dumps(data, ensure_ascii=False).encode()
        declared = self.headers.get("Content-Length", "0").strip() not in ("", "0")
        if not self._body_read and (declared or self.headers.get("Transfer-Encoding")):
            self.close_connection = True  # its unread body must not be parsed as a request
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

    def version_string(self) -> str:
        return self.server_version

    def _safe_path(self) -> str:
        return redact.redact(urlsplit(self.path).path)[:200]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # the base logs the raw request line; `log_request` logs what is safe

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        log.debug("local API: %s %s → %s", self.command, self._safe_path(), code)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    request_queue_size = 64

    def process_request(self, request: Any, client_address: Any) -> None:
        """A thread per connection, at most `MAX_CONNECTIONS` at once: one client opening
        thousands cannot exhaust the daemon's threads or memory (its sync loop runs here)."""
        if not self.slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def __init__(
        self, config: Callable[[], Config], live: Callable[[], dict[str, Any]], token: str
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.config = config
        self.live = live  # the daemon's live status (`Daemon.status`)
        self.token = token
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)


# --------------------------------------------------------------------------- lifetime


class ApiServer:
    """The server thread and its `api.json`; `close()` stops both."""

    def __init__(
        self,
        vault: Path,
        config: Callable[[], Config],
        live: Callable[[], dict[str, Any]] = lambda: {"pid": os.getpid()},
    ) -> None:
        self.vault = vault
        self.token = secrets.token_urlsafe(32)
        redact.register(self.token)
        self.server = _Server(config, live, self.token)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="zob-api", daemon=True
        )

    def start(self) -> None:
        # `host`: a vault synced to another machine carries this file there; its plugin must
        # not send the token to whatever listens on this port on that machine
        data = {"port": self.port, "token": self.token, "pid": os.getpid(), "format": 1,
                "host": socket.gethostname()}  # fmt: skip
        with StateFolder(self.vault) as folder:
            folder.write_atomic(API_FILE, json.dumps(data).encode(), 0o600)
        self.thread.start()
        log.info("local API for the Obsidian plugin on 127.0.0.1:%d", self.port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with contextlib.suppress(OSError, BridgeError), StateFolder(self.vault) as folder:
            current = folder.read_small(API_FILE)
            if current and self.token.encode() in current:  # not a newer daemon's file
                folder.remove(API_FILE)


def serve(
    vault: Path, config: Callable[[], Config], live: Callable[[], dict[str, Any]]
) -> ApiServer | None:
    """Start the local API (the daemon's one call); None, with a log line, when it cannot
    start — the daemon keeps syncing, and the plugin falls back to the `zob` command.
    `config`: the daemon's current config (it may be reloaded); `live`: its status."""
    try:
        server = ApiServer(vault, config, live)
        server.start()
    except Exception as exc:  # noqa: BLE001 - nothing here may stop the daemon from syncing
        log.warning("the local API for Obsidian could not start (%s); syncing goes on", exc)
        return None
    return server


def read_api_file(vault: Path) -> dict[str, Any] | None:
    """`api.json` as the daemon wrote it (port, token), for clients in Python and tests."""
    with contextlib.suppress(OSError, ValueError), StateFolder(vault, create=False) as folder:
        data = folder.read_small(API_FILE)
        return json.loads(data) if data else None
    return None
