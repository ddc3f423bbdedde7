"""The API key never leaves the process: not in what `zob` prints, logs or writes.

A real Zotero API server (`FakeZotero` over pytest-httpserver) puts the key in every answer it
can give — 200/4xx/5xx bodies as JSON, HTML and garbage, item data, and headers (`Link`,
`Location`, `Backoff`, `Retry-After`, `Content-Type`, the version headers) — and real `zob`
processes (`sync`, `status`, `doctor`, `watch`) talk to it. Afterwards every byte they printed
and every file below the test's folder (the vault, the state DB, `watch.log`, the daemon's
lock file, HOME) is searched for any 8-character piece of the key, in any case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from bridge import redact
from bridge.daemon import probe_lock
from tests.test_api_source import KEY, FakeZotero, item, small_library

REPO = Path(__file__).resolve().parent.parent
PIECES = sorted({KEY[i : i + 8].lower() for i in range(len(KEY) - 7)})


def leaks(data: bytes | str) -> list[str]:
    """The 8-character pieces of the key found in `data` (any case)."""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lowered = text.lower()
    return [piece for piece in PIECES if piece in lowered]


def files_leaking(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            pieces = leaks(path.read_bytes())
            if pieces:
                found[str(path.relative_to(root))] = pieces
    return found


def environment(tmp_path: Path) -> dict[str, str]:
    """HOME and the XDG folders (so `watch.log` too) inside the folder that is searched."""
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "ZOB_CONFIG"}
    return {
        **env,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "ZOTERO_API_KEY": KEY,
    }


def zob(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bridge.cli", *args],
        capture_output=True,
        env=environment(tmp_path),
        cwd=REPO,
        timeout=120,
    )


# ── every answer the server can give, each carrying the key ─────────────────────────────────


def _json(body: Any, status: int = 200, **headers: str) -> Response:
    return Response(json.dumps(body), status, {"Last-Modified-Version": "99", **headers},
                    content_type="application/json")  # fmt: skip


def _raw(body: bytes | str, status: int = 200, content_type: str = "text/html") -> Response:
    return Response(body, status, {"Last-Modified-Version": "99"}, content_type=content_type)


def _html(offset: int) -> str:
    """A page whose text has the key `offset` characters in (snippets are cut near 40)."""
    return f"{'x' * offset}{KEY} <input value='{KEY}'></body></html>"


def _retried(make: Callable[[], Response], times: int = 5) -> list[Response]:
    return [make() for _ in range(times)]  # every attempt of one request fails the same way


def hostile_answers(fake: FakeZotero) -> dict[str, list[Response]]:
    """Name → the answers served (in order, to whatever is asked) for one `zob sync`."""
    url = fake.url
    echo = {"error": f"invalid key {KEY}", "key": KEY, KEY: KEY}
    no_wait = {"Retry-After": "0", "Backoff": KEY}
    return {
        **{f"200 HTML, key at {n}": [_raw(_html(n))] for n in (0, 8, 16, 19, 25, 33, 39, 60)},
        "200 JSON object echoing the key": [_json(echo)],
        "200 JSON string": [_json(f"{KEY} is not allowed")],
        "200 list of non-objects": [_json([KEY, KEY[:12], KEY[12:]])],
        "200 objects whose key is the key": [
            _json([{"key": KEY, "version": 1, "data": {"key": KEY, "itemType": KEY}}] * 3)
        ],
        "200 garbage bytes": [
            _raw(b"\xff\xfe\x00" + KEY.encode() + b"\x00" * 50, 200, "application/octet-stream")
        ],  # fmt: skip
        "200 plain text": [_raw(f"Service {KEY} unavailable", 200, "text/plain")],
        "200 key in Content-Type": [_raw("<html></html>", 200, f"text/html; charset={KEY}")],
        "200 nested JSON with the key inside": [_raw("[" * 5000 + json.dumps(KEY) + "]" * 5000)],
        "400 JSON": [_json(echo, 400)],
        "403 text": [_raw(f"Invalid key {KEY}", 403, "text/plain")],
        "404 HTML": [_raw(_html(30), 404)],
        "412 JSON": [_json(echo, 412)],
        "418 garbage": [_raw(b"\x00\xff" + KEY.encode() * 40, 418, "application/octet-stream")],
        "429 every time": _retried(lambda: _with(_raw(f"Slow {KEY}", 429, "text/plain"), no_wait)),
        "500 HTML": _retried(lambda: _with(_raw(_html(38), 500), no_wait)),
        "503 JSON": _retried(lambda: _json(echo, 503, **no_wait)),
        "302 to a URL with key=": [
            Response("", 302, {"Location": f"{url}/nowhere?key={KEY}&start=0"}),
        ],
        "301 to a path that is the key": [Response("", 301, {"Location": f"{url}/{KEY}/items"})],
        "302 to another host with key=": [
            Response("", 302, {"Location": f"http://127.0.0.1:9/users/1/items?key={KEY}"}),
        ],
        "Link next with key=, pages never end": [
            _json([], Link=f'<{url}/users/1/items?key={KEY}&start=0>; rel="next"')
        ]
        * 30,
        "key in the version and count headers": [
            _json([], **{"Last-Modified-Version": KEY, "Total-Results": KEY, "Backoff": KEY})
        ],
    }


def _with(response: Response, headers: dict[str, str]) -> Response:
    for name, value in headers.items():
        response.headers[name] = value
    return response


def echo_key_in_item_data(fake: FakeZotero) -> None:
    """A good answer whose item data itself carries the key (title, tags, Extra, a URL)."""
    fake.put(
        item("DDDD2222", f"Leaked {KEY} title", citationKey="leak2020",
             abstractNote=f"abstract {KEY.upper()} and {KEY[3:15]}",
             url=f"https://example.org/?key={KEY}", tags=[KEY], extra=f"proposes: {KEY}"),
    )  # fmt: skip


# ── the tests ────────────────────────────────────────────────────────────────────────────────


def test_redaction_happens_before_cutting() -> None:
    redact.register(KEY)
    for offset in range(0, 60):
        text = "x" * offset + KEY + " tail"
        for limit in (30, 40, 300):
            assert leaks(redact.snippet(text, limit)) == [], (offset, limit)
    assert leaks(redact.redact(f"{KEY[:9]} and {KEY[-10:]} and {KEY.swapcase()}")) == []
    assert redact.redact("GET /x?a=1&key=OTHERKEY1234&b=2") == "GET /x?a=1&key=<api-key>&b=2"
    assert redact.redact("see https://zotero.org/settings/keys") == (
        "see https://zotero.org/settings/keys"
    )


def _library_and_vault(tmp_path: Path, httpserver: HTTPServer) -> tuple[FakeZotero, Path]:
    """A fake web API serving a small library, and an empty vault."""
    fake = FakeZotero(httpserver)
    small_library(fake)
    vault = tmp_path / "vault"
    vault.mkdir()
    return fake, vault


@pytest.mark.slow
def test_the_key_in_every_answer_reaches_no_output_and_no_file(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    fake, vault = _library_and_vault(tmp_path, httpserver)
    args = ["--source", "web", "--library-id", "1", "--api-url", fake.url, "--vault", str(vault)]
    outputs: dict[str, subprocess.CompletedProcess[bytes]] = {}

    outputs["first sync"] = first = zob(tmp_path, "sync", *args)
    assert first.returncode == 0, first.stderr
    for read in ("incremental", "--full"):  # the probe with `_json`, listings via pyzotero
        for name, answers in hostile_answers(fake).items():
            fake.edit("BBBB2222", title=f"Highway Networks ({name})")  # there is work to do
            fake.faults[:] = answers
            flags = ("--full",) if read == "--full" else ()
            outputs[f"{name}, {read}"] = zob(tmp_path, "sync", *flags, *args)
    fake.faults.clear()
    echo_key_in_item_data(fake)
    outputs["item data with the key"] = zob(tmp_path, "sync", *args)
    outputs["a full read after all that"] = zob(tmp_path, "sync", "--full", *args)
    fake.deleted_floor = 10_000
    fake.faults[:] = [_raw(f"since too old {KEY}", 409, "text/plain")]
    outputs["409 from /deleted"] = zob(tmp_path, "sync", *args)
    outputs["status"] = zob(tmp_path, "status", "--vault", str(vault))
    outputs["status --json"] = zob(tmp_path, "status", "--json", "--vault", str(vault))
    fake.faults[:] = [_json({"key": KEY, "userID": 1, "username": KEY, "access": {KEY: KEY}})]
    outputs["doctor, /keys/current echoing"] = zob(tmp_path, "doctor", *args)
    fake.faults[:] = _retried(lambda: _with(_raw(_html(5), 502), {"Retry-After": "0"}))
    outputs["doctor, 502"] = zob(tmp_path, "doctor", *args)

    for name, result in outputs.items():
        printed = result.stdout + result.stderr
        assert b"Traceback" not in printed, (name, printed.decode())
        assert result.returncode in (0, 1, 2, 3, 4), (name, result.returncode, printed.decode())
        assert leaks(printed) == [], (name, printed.decode())
    for read in ("incremental", "--full"):
        issue_16 = outputs[f"200 HTML, key at 19, {read}"]  # the case the issue reported
        assert issue_16.returncode == 3 and b"<api-key>" in issue_16.stderr, issue_16.stderr
    note = (vault / "Papers" / "leak2020.md").read_text("utf-8")
    # the rest of the item still arrives (its `<` made inert by the neutraliser's zero-width space)
    assert "Leaked <\u200bapi-key> title" in note
    assert (vault / ".zotero-bridge" / "state.sqlite").is_file()
    assert files_leaking(tmp_path) == {}


# the last one's error stays in the daemon's status, where it must show `<api-key>`
DAEMON_CASES = [
    "200 objects whose key is the key", "403 text", "503 JSON", "302 to a URL with key=",
    "key in the version and count headers", "200 HTML, key at 19",
]  # fmt: skip


@pytest.mark.slow
def test_the_daemon_logs_and_records_no_piece_of_the_key(
    tmp_path: Path, httpserver: HTTPServer
) -> None:
    fake, vault = _library_and_vault(tmp_path, httpserver)
    config = tmp_path / "config.toml"
    config.write_text(f'vault = "{vault}"\n[watch]\npoll_seconds = 0.3\n')
    answers = hostile_answers(fake)
    output = tmp_path / "watch.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bridge.cli", "watch", "-v", "--config", str(config),
             "--source", "web", "--library-id", "1", "--api-url", fake.url],
            stdout=out, stderr=subprocess.STDOUT, env=environment(tmp_path), cwd=REPO,
        )  # fmt: skip
    try:
        syncs = wait_for_syncs(vault, process, 1)
        for name in DAEMON_CASES:
            fake.edit("BBBB2222", title=f"Highway Networks ({name})")
            fake.faults[:] = answers[name]
            syncs = wait_for_syncs(vault, process, syncs + 1)  # failed, then recovered
            assert not fake.faults, name
        recorded = (probe_lock(vault) or {}).get("last_error")
        assert recorded and "<api-key>" in recorded, recorded
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    printed = output.read_text("utf-8", "replace")
    assert "failed" in printed and "<api-key>" in printed, printed
    logs = list((tmp_path / "home").rglob("watch.log"))
    assert logs and "<api-key>" in logs[0].read_text("utf-8")
    assert leaks(printed) == [], printed
    assert files_leaking(tmp_path) == {}


def wait_for_syncs(vault: Path, process: subprocess.Popen[bytes], count: int) -> int:
    """Wait until the daemon has finished `count` successful syncs; return how many it has."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        done = int((probe_lock(vault) or {}).get("syncs", 0))
        if done >= count:
            return done
        time.sleep(0.1)
    raise AssertionError(f"no sync #{count} (daemon exit code {process.poll()})")
