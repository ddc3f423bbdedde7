"""Adversarial review of the search feature: links planted in Zotero's storage, a damaged
index, `--accept` given odd names, hostile text reaching the terminal, a hostile endpoint.
Everything on a real Zotero library (Zotero's tables), the real CLI and a real HTTP server."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from bridge.errors import EXIT_BUG
from bridge.search.suggest import Suggestion
from tests.helpers import settled, snapshot_tree
from tests.test_search_commands import library, zob  # noqa: F401 - the fixture

SENTINEL = "zanzibarquokka"


def _storage(tmp_path: Path, key: str) -> Path:
    return tmp_path / "Zotero" / "storage" / key


def test_a_full_text_cache_linked_outside_zotero_is_never_read(library, tmp_path: Path) -> None:  # noqa: F811
    config, _, keys = library
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text(f"{SENTINEL} private key material\n", encoding="utf-8")
    (outside / "folder").mkdir()
    (outside / "folder" / ".zotero-ft-cache").write_text(f"{SENTINEL} folder\n", "utf-8")
    cache = _storage(tmp_path, keys["nms_pdf"]) / ".zotero-ft-cache"
    cache.unlink()
    cache.symlink_to(secret)  # the cache file itself a link out
    _storage(tmp_path, keys["soft_pdf"]).symlink_to(outside / "folder")  # a key folder
    for path in (secret, outside / "folder" / ".zotero-ft-cache"):
        settled(path, 60)
    found = json.loads(zob(config, "search", SENTINEL, "--json").stdout)
    assert found == []  # nothing outside Zotero's storage reached the index


def test_a_damaged_index_says_reindex_and_reindex_mends_it(library) -> None:  # noqa: F811
    config, vault, _ = library
    assert zob(config, "search", "suppression").exit_code == 0
    index = vault / ".zotero-bridge" / "search.sqlite"
    for side in ("-wal", "-shm"):
        Path(f"{index}{side}").unlink(missing_ok=True)
    index.write_bytes(os.urandom(8192))
    broken = zob(config, "search", "suppression")
    assert broken.exit_code not in (0, EXIT_BUG), broken.output
    assert "--reindex" in broken.output and "internal error" not in broken.output
    synced = zob(config, "sync")
    assert synced.exit_code == 0, synced.output  # the notes are written; a warning at most
    mended = zob(config, "search", "suppression", "--reindex", "--json")
    assert mended.exit_code == 0, mended.output
    assert json.loads(mended.stdout)[0]["note"] == "Papers/neubeck2006efficient.md"


@pytest.mark.parametrize("name", ["%", "_odla2017softnms", "%ingma2015adam"])
def test_accept_takes_no_wildcard_for_a_paper(library, name: str) -> None:  # noqa: F811
    config, vault, _ = library
    assert zob(config, "search", "nms").exit_code == 0  # the index exists
    for note in (vault / "Papers").iterdir():
        settled(note)
    before = snapshot_tree(vault)
    result = zob(config, "lineage", "--accept", name, "extends", "NMS")
    assert result.exit_code == 2, result.output
    after = snapshot_tree(vault)
    assert {k: v for k, v in after.items() if k.endswith(".md")} == {
        k: v for k, v in before.items() if k.endswith(".md")
    }


def test_accept_refuses_a_name_two_papers_share(library) -> None:  # noqa: F811
    config, vault, _ = library
    for folder in ("A", "B"):
        (vault / folder).mkdir()
        (vault / folder / "twin.md").write_text(
            f"---\ntitle: Twin {folder}\n---\nA note about NMS.\n", encoding="utf-8"
        )
        settled(vault / folder / "twin.md")
    assert zob(config, "search", "nms").exit_code == 0  # the index exists
    assert zob(config, "sync").exit_code == 0  # and holds both
    before = snapshot_tree(vault)
    result = zob(config, "lineage", "--accept", "twin", "extends", "NMS")
    assert result.exit_code == 2 and "A/twin" in result.output and "B/twin" in result.output
    assert snapshot_tree(vault)["A/twin.md"] == before["A/twin.md"]
    assert snapshot_tree(vault)["B/twin.md"] == before["B/twin.md"]


@pytest.mark.parametrize(
    "method", ["X]] [[Y", "NMS\nextends: evil", "<% tp.file.delete() %>", "a|b", "a#b"]
)
def test_accept_refuses_a_method_no_note_can_be_named(library, method: str) -> None:  # noqa: F811
    config, vault, _ = library
    note = vault / "Papers" / "bodla2017softnms.md"
    settled(note)
    before = note.read_bytes()
    result = zob(config, "lineage", "--accept", "bodla2017softnms", "extends", method)
    assert result.exit_code == 2, result.output
    assert note.read_bytes() == before


@pytest.mark.parametrize(
    "method", ["$(touch pwned)", "a;rm -rf x", 'Soft "NMS"', "it's", "Non Maximum"]
)
def test_the_printed_accept_command_is_one_safe_shell_word_each(method: str) -> None:
    paper = {"citekey": "", "path": "Papers/Smith 2020 $(id).md"}
    command = Suggestion(paper, method, "extends", 3, []).command()
    assert shlex.split(command)[3:] == ["Papers/Smith 2020 $(id)", "extends", method]


HOSTILE = "\x1b]52;c;cm0gLXJmIH4=\x07 \x1b[2J\x9b31m"


def test_search_and_ask_print_no_terminal_control_sequence(library) -> None:  # noqa: F811
    config, vault, _ = library
    clip = vault / "Clipped page.md"
    clip.write_text(
        f'---\ntitle: "Clip {HOSTILE.encode("unicode_escape").decode()}"\n---\n'
        f"A {SENTINEL} paragraph {HOSTILE} long enough to be worth citing in an answer.\n",
        encoding="utf-8",
    )
    settled(clip)
    for args in (("search", SENTINEL), ("ask", f"what is {SENTINEL}?")):
        out = zob(config, *args).output
        assert SENTINEL in out
        assert not any(c in out for c in "\x1b\x07\x9b"), repr(out)


def _with_endpoint(config: Path, httpserver: HTTPServer) -> None:
    config.write_text(
        config.read_text("utf-8")
        + f'[ask]\nendpoint = "{httpserver.url_for("/v1")}"\nmodel = "tiny"\n',
        encoding="utf-8",
    )


def test_an_endless_reply_is_cut_short(library, httpserver: HTTPServer) -> None:  # noqa: F811
    config, _, _ = library
    _with_endpoint(config, httpserver)

    def handler(request: Request) -> Response:
        def chunks():  # noqa: ANN202
            yield b'{"choices": [{"message": {"content": "'
            for _ in range(64):
                yield b"A" * (1 << 20)  # 64 MiB and counting
            yield b'"}}]}'

        return Response(chunks(), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    result = zob(config, "ask", "How does Soft-NMS treat overlapping boxes?")
    assert result.exit_code == 3, result.output[:300]
    assert "too large" in result.output


def test_a_fifo_in_place_of_the_index_is_refused_not_waited_on(library) -> None:  # noqa: F811
    config, vault, _ = library
    assert zob(config, "search", "suppression").exit_code == 0
    index = vault / ".zotero-bridge" / "search.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{index}{suffix}").unlink(missing_ok=True)
    os.mkfifo(index)
    searched = zob(config, "search", "suppression")
    assert searched.exit_code == 2 and "internal error" not in searched.output
    synced = zob(config, "sync")
    assert synced.exit_code == 0, synced.output
    assert "search index not updated" in synced.output


def test_a_reply_dripping_for_ever_is_given_up(
    library,  # noqa: F811
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bridge.search import ask

    config, _, _ = library
    _with_endpoint(config, httpserver)
    monkeypatch.setattr(ask, "TIMEOUT", 1.5)

    def handler(request: Request) -> Response:
        def drip():  # noqa: ANN202
            yield b'{"choices": [{"message": {"content": "'
            for _ in range(100):
                time.sleep(0.2)
                yield b"A"

        return Response(drip(), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    started = time.monotonic()
    result = zob(config, "ask", "How does Soft-NMS treat overlapping boxes?")
    assert time.monotonic() - started < 10
    assert result.exit_code == 3 and "took over" in result.output


def test_a_redirect_elsewhere_does_not_carry_the_key(
    library,  # noqa: F811
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    config, _, _ = library
    key = tmp_path / "key.txt"
    key.write_text("sk-secret-123\n", encoding="utf-8")
    key.chmod(0o600)
    _with_endpoint(config, httpserver)
    config.write_text(config.read_text("utf-8") + f'api_key_file = "{key}"\n', encoding="utf-8")
    other = HTTPServer(host="127.0.0.1", port=0)
    other.expect_request("/steal").respond_with_data("{}")
    other.start()
    try:
        httpserver.expect_request("/v1/chat/completions").respond_with_response(
            Response(status=307, headers={"Location": other.url_for("/steal")})
        )
        result = zob(config, "ask", "How does Soft-NMS treat overlapping boxes?")
        assert result.exit_code == 3, result.output
        assert other.log == []  # never asked
    finally:
        other.stop()


def test_a_refresh_racing_a_reindex_never_gives_one_note_another_pdf(library) -> None:  # noqa: F811
    """Two writers: `zob sync` (the daemon) refreshing while `zob search --reindex` clears
    and rebuilds. The refresh's work was listed by doc id before the rebuild gave those ids
    to other notes; it must not land on them."""
    from bridge.search import indexer
    from bridge.search.store import SearchIndex
    from bridge.vault.fs import Vault

    config, vault, _ = library
    assert zob(config, "search", "suppression").exit_code == 0
    zotero_dir = config.parent / "Zotero"
    with SearchIndex(vault) as index:
        index.db.execute("UPDATE docs SET ft_etag = NULL")  # the PDF's text changed since
        work = indexer._full_text_work(index, zotero_dir, None)  # the sync's list
        assert work
        with SearchIndex(vault) as other:  # the other writer rebuilds meanwhile
            other.clear()
            notes = Vault(vault)
            changed, _ = indexer._scan(other, notes)
            notes.close()
            indexer._index_notes(other, changed[::-1], None)  # ids in another order
        indexer._index_full_texts(index, work, None)  # the sync goes on
        query = (
            "SELECT d.path, d.pdf_key FROM passages p JOIN docs d ON d.id = p.doc"
            " WHERE p.kind = 'fulltext'"
        )
        assert all(key for _, key in index.db.execute(query)), "a PDF's text on another note"
        indexer.refresh(index, zotero_dir)  # the next refresh reads what was skipped
        rows = index.db.execute(query).fetchall()
    assert rows and all(path == "Papers/neubeck2006efficient.md" for path, _ in rows), rows


@pytest.mark.parametrize(
    "query", ['"', "*", "NEAR(", "-", ":", "AND", 'nms" OR "x', "head:nms", "^nms", "(", "\x00"]
)
def test_a_query_in_fts5_syntax_is_plain_words(library, query: str) -> None:  # noqa: F811
    config, _, _ = library
    for command in ("search", "ask"):
        result = zob(config, command, query)
        assert result.exit_code == 0, result.output


def test_a_damaged_text_in_the_index_is_a_warning_for_sync_and_a_message_for_search(
    library,  # noqa: F811
) -> None:
    """Damage SQLite cannot see (its pages are sound, a compressed text is not): the sync
    still records its run, search says --reindex."""
    import sqlite3

    config, vault, _ = library
    assert zob(config, "search", "suppression").exit_code == 0
    db = sqlite3.connect(vault / ".zotero-bridge" / "search.sqlite")
    with db:
        db.execute("UPDATE texts SET data = zeroblob(64)")
    db.close()
    note = vault / "Papers" / "bodla2017softnms.md"
    note.write_text(note.read_text("utf-8") + "\nMy new thought.\n", encoding="utf-8")
    settled(note)
    synced = zob(config, "sync")
    assert synced.exit_code == 0, synced.output
    assert "search index not updated" in synced.output and "--reindex" in synced.output
    searched = zob(config, "search", "suppression")
    assert searched.exit_code == 5 and "--reindex" in searched.output, searched.output
    assert zob(config, "search", "new thought", "--reindex").exit_code == 0
