"""The peer: ZotVault (`pip install zotvault`), a tool a user would pick instead of the bridge.

ZotVault reads `zotero.sqlite` (a copy, like the bridge) and writes one Obsidian note per paper
with a marker-delimited highlight block, plus `index.md`/`log.md`. It needs Better BibTeX for
citation keys, which it asks for over Zotero's local HTTP server (JSON-RPC
`item.citationkey`); here a small server on 127.0.0.1 answers that call the way Better BibTeX
does, with a key for every item. Its extras that need the network (open-access PDF download,
citation graph, embeddings) are switched off in its config.

It is installed into a throwaway venv under /tmp (never into the project's environment) the
first time the benchmark needs it, and run as its own CLI (`zotvault run-once`), one process per
sync, so its time includes interpreter start-up — compare it with the bridge's process time.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PEER = "zotvault"
PEER_VERSION = "0.10.0"
PEER_ROOT = Path(os.environ.get("ZOB_BENCH_PEER_ROOT", "/tmp/zob-bench-peer"))


def ensure_peer() -> tuple[Path | None, str]:
    """The peer's executable (installing it on first use), or None and the reason."""
    venv = PEER_ROOT / f"venv-{PEER}-{PEER_VERSION}"
    exe = venv / "bin" / PEER
    if exe.exists():
        return exe, ""
    try:
        PEER_ROOT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "-q", f"{PEER}=={PEER_VERSION}"],
            check=True, timeout=600, capture_output=True, text=True,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        return None, f"could not install {PEER}=={PEER_VERSION}: {detail.strip()[-300:]}"
    return (exe, "") if exe.exists() else (None, f"{PEER} installed without its CLI")


def citation_keys(db_path: Path) -> dict[str, str]:
    """What Better BibTeX would answer: the native citation key, else `authorYEARkey`."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        native = dict(
            conn.execute(
                "SELECT i.key, v.value FROM items i JOIN itemData d USING (itemID) "
                "JOIN fieldsCombined f USING (fieldID) JOIN itemDataValues v USING (valueID) "
                "WHERE f.fieldName = 'citationKey'"
            )
        )
        rows = conn.execute(
            "SELECT i.key, (SELECT c.lastName FROM itemCreators ic JOIN creators c "
            "USING (creatorID) WHERE ic.itemID = i.itemID ORDER BY ic.orderIndex LIMIT 1), "
            "(SELECT substr(v.value, 1, 4) FROM itemData d JOIN itemDataValues v "
            "USING (valueID) WHERE d.itemID = i.itemID AND d.fieldID = 6) FROM items i"
        ).fetchall()
    finally:
        conn.close()
    keys = {}
    for key, last, year in rows:
        made = native.get(key) or f"{last or 'anon'}{year or ''}{key}"
        keys[key] = re.sub(r"[^\w.\-]", "", made).lower()
    return keys


@contextlib.contextmanager
def better_bibtex_server(keys: dict[str, str]) -> Iterator[str]:
    """Zotero's local server as Better BibTeX extends it: JSON-RPC `item.citationkey` and
    `/connector/ping`, on a free loopback port. Yields the base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = json.loads(body or b"{}")
            wanted = (request.get("params") or [[]])[0]
            result = {key: keys[key] for key in wanted if key in keys}
            self._send({"jsonrpc": "2.0", "result": result, "id": request.get("id")})

        def do_GET(self) -> None:  # noqa: N802
            self._send({"ok": True})

        def _send(self, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def seed_pdf_cache(db_path: Path, keys: dict[str, str], pdf_dir: Path) -> int:
    """A PDF in the peer's own download folder for each item Zotero has none for, as if it had
    fetched the open-access copies on an earlier day. Without them it would retry those items
    (and so rescan the whole library) on every cycle, since downloads are off here."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        bare = [
            key
            for (key,) in conn.execute(
                "SELECT i.key FROM items i JOIN itemTypesCombined t USING (itemTypeID) "
                "WHERE t.typeName NOT IN ('attachment', 'note', 'annotation') AND NOT EXISTS "
                "(SELECT 1 FROM itemAttachments a WHERE a.parentItemID = i.itemID "
                "AND a.contentType = 'application/pdf')"
            )
        ]
    finally:
        conn.close()
    pdf_dir.mkdir(parents=True, exist_ok=True)
    for key in bare:
        (pdf_dir / f"{keys[key]}.pdf").write_bytes(b"%PDF-1.4\n%%EOF\n")
    return len(bare)


def write_config(path: Path, zotero_dir: Path, vault: Path, work: Path, url: str) -> None:
    path.write_text(
        f"""[zotero]
data_dir = "{zotero_dir}"
connector_url = "{url}"
[vault]
dir = "{vault}"
papers_subdir = "Papers"
[pipeline]
resolve_pdfs = false
[pdf]
dir = "{work / "pdfs"}"
[web]
enabled = false
[features]
citation_graph = false
related_papers = false
synthesis_suggestions = false
[app]
state_db = "{work / "state.db"}"
log_level = "WARNING"
""",
        encoding="utf-8",
    )


def run_peer(exe: Path, config: Path, home: Path) -> dict[str, object]:
    """One `zotvault run-once`; wall time of the whole process."""
    env = {**os.environ, "HOME": str(home), "ZOTVAULT_CONFIG": str(config)}
    os.sync()
    began = time.perf_counter()
    done = subprocess.run(
        [str(exe), "run-once"], env=env, capture_output=True, text=True, timeout=3600
    )
    seconds = time.perf_counter() - began
    return {"seconds": seconds, "rc": done.returncode, "summary": done.stdout.strip()[:300],
            "stderr": done.stderr.strip()[-300:]}  # fmt: skip
