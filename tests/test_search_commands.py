"""The search commands end to end on a Zotero library built in Zotero's real tables: the PDF
full text found with its page, lineage suggestions accepted through a sync, `zob ask` against
a real local HTTP server, and no network at all without an endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response
from zotero_db import ZoteroDB

from bridge.cli import main
from tests.helpers import settled

PAGE_2 = "Greedy suppression keeps the highest scoring window and discards its neighbours."
SECRET = "My private diary: nothing here is about detection."


def build_library(data_dir: Path) -> dict[str, str]:
    """NMS and Soft-NMS (with no `extends: NMS` edge), their PDFs and an unrelated paper."""
    data_dir.mkdir()
    keys: dict[str, str] = {}
    with ZoteroDB.create(data_dir / "zotero.sqlite") as db:
        keys["nms"] = db.add_item(
            "conferencePaper", title="Efficient Non-Maximum Suppression", date="2006",
            creators=[("author", "Alexander", "Neubeck")], tags=["proposes:NMS"],
            citation_key="neubeck2006efficient",
            abstractNote="Non-maximum suppression (NMS) is a preprocessing step in vision.",
        )  # fmt: skip
        keys["nms_pdf"] = db.add_attachment(keys["nms"], filename="nms.pdf")
        keys["soft"] = db.add_item(
            "conferencePaper", title="Soft-NMS: Improving Object Detection", date="2017",
            creators=[("author", "Navaneeth", "Bodla")], extra="proposes: Soft-NMS",
            citation_key="bodla2017softnms",
            abstractNote="NMS sorts detection boxes by score and suppresses overlapping ones.",
        )  # fmt: skip
        keys["soft_pdf"] = db.add_attachment(keys["soft"], filename="soft.pdf")
        for text in (
            "Soft-NMS decays the scores of overlapping boxes instead of removing them.",
            "Traditional NMS sets the score of neighbouring detections to zero.",
            "Replacing NMS with Soft-NMS needs one line of code.",
        ):
            db.add_annotation(keys["soft_pdf"], text=text, page_label="2")
        keys["adam"] = db.add_item(
            "journalArticle", title="Adam: A Method for Stochastic Optimization", date="2015",
            creators=[("author", "Diederik", "Kingma")], citation_key="kingma2015adam",
            abstractNote="First-order gradient-based optimization of stochastic objectives.",
        )  # fmt: skip
        db.commit()
    cache = data_dir / "storage" / keys["nms_pdf"] / ".zotero-ft-cache"
    cache.parent.mkdir(parents=True)
    cache.write_text(
        f"Efficient Non-Maximum Suppression\n\nIntroduction text.\f{PAGE_2}\n\nMore.\f"
        "End. <% tp.system.exit() %> <script>alert(1)</script>\n",
        encoding="utf-8",
    )
    old = os.stat(data_dir / "zotero.sqlite").st_mtime - 30
    for path in (data_dir / "zotero.sqlite", cache):
        os.utime(path, (old, old))  # a library at rest, as a user's is when they sync
    return keys


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    data_dir, vault = tmp_path / "Zotero", tmp_path / "vault"
    keys = build_library(data_dir)
    vault.mkdir()
    (vault / "Diary.md").write_text(SECRET + "\n", encoding="utf-8")
    config = tmp_path / "config.toml"
    config.write_text(
        f'vault = "{vault}"\n[source]\ntype = "sqlite"\nzotero_dir = "{data_dir}"\n',
        encoding="utf-8",
    )
    assert zob(config, "sync").exit_code == 0
    return config, vault, keys


def zob(config: Path, *args: str):  # noqa: ANN201 - click's Result
    result = CliRunner().invoke(main, [*args], env={"ZOB_CONFIG": str(config)})
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_a_full_text_sentence_is_found_with_its_page(library, tmp_path: Path) -> None:
    config, vault, keys = library
    cache = tmp_path / "Zotero" / "storage" / keys["nms_pdf"] / ".zotero-ft-cache"
    before = (cache.read_bytes(), os.stat(cache).st_mtime_ns)
    result = zob(config, "search", "greedy suppression discards neighbours", "--json")
    found = json.loads(result.stdout)
    assert found[0]["note"] == "Papers/neubeck2006efficient.md"
    passage = found[0]["passages"][0]
    assert passage["kind"] == "fulltext" and passage["page"] == 2
    assert PAGE_2 in passage["text"]
    assert passage["pdf"] == f"zotero://open-pdf/library/items/{keys['nms_pdf']}?page=2"
    assert (cache.read_bytes(), os.stat(cache).st_mtime_ns) == before  # only ever read
    text = zob(config, "search", "greedy suppression").output
    assert "PDF p. 2" in text and "neubeck2006efficient" in text


def test_the_pdf_text_is_shown_inert(library) -> None:
    config, _, _ = library
    found = json.loads(zob(config, "search", "tp system exit alert", "--json").stdout)
    passage = found[0]["passages"][0]
    assert passage["kind"] == "fulltext" and passage["page"] == 3
    assert "<%" not in passage["text"] and "<script" not in passage["text"]
    assert "tp.system.exit()" in passage["text"]  # reads the same


def test_suggest_proposes_soft_nms_extends_nms_and_accept_writes_it(library) -> None:
    config, vault, _ = library
    note = vault / "Papers" / "bodla2017softnms.md"
    before = note.read_bytes()
    suggested = json.loads(zob(config, "lineage", "--suggest", "NMS", "--json").stdout)
    assert [(s["citekey"], s["relation"], s["method"]) for s in suggested] == [
        ("bodla2017softnms", "extends", "NMS")
    ]
    assert suggested[0]["accept"] == "zob lineage --accept bodla2017softnms extends NMS"
    assert note.read_bytes() == before  # a suggestion writes nothing
    assert "[[bodla2017softnms]]" not in (vault / "Methods" / "NMS.md").read_text("utf-8")
    os.utime(note)  # saved just now: left alone
    busy = zob(config, "lineage", "--accept", "bodla2017softnms", "extends", "NMS")
    assert busy.exit_code == 2 and "changed moments ago" in busy.stderr
    assert note.read_bytes() == before
    settled(note)
    result = zob(config, "lineage", "--accept", "bodla2017softnms", "extends", "NMS")
    assert result.exit_code == 0, result.output
    assert "extends:\n- '[[NMS]]'" in note.read_text("utf-8")
    info = json.loads(zob(config, "lineage", "NMS", "--json").stdout)
    assert [p["note"] for p in info["extended_by"]] == ["Papers/bodla2017softnms.md"]
    assert "[[bodla2017softnms]]" in (vault / "Methods" / "NMS.md").read_text("utf-8")
    assert json.loads(zob(config, "lineage", "--suggest", "NMS", "--json").stdout) == []


def test_related_says_why(library) -> None:
    config, _, _ = library
    info = json.loads(zob(config, "related", "bodla2017softnms", "--json").stdout)
    assert info["related"][0]["note"] == "Papers/neubeck2006efficient.md"
    assert "nms" in info["related"][0]["shared_terms"]


def test_ask_sends_only_the_retrieved_passages_and_prints_the_cited_answer(
    library, httpserver: HTTPServer
) -> None:
    config, _, _ = library
    config.write_text(
        config.read_text("utf-8")
        + f'[ask]\nendpoint = "{httpserver.url_for("/v1")}"\nmodel = "tiny"\n',
        encoding="utf-8",
    )
    sent: list[dict] = []

    def handler(request: Request) -> Response:
        sent.append(request.get_json())
        reply = (
            "Soft-NMS decays overlapping scores instead of removing boxes [[bodla2017softnms]]."
            " <% tp.file.delete() %> [[Secret plans]]"
        )
        body = {"choices": [{"message": {"role": "assistant", "content": reply}}]}
        return Response(json.dumps(body), content_type="application/json")

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    result = zob(config, "ask", "How does Soft-NMS treat overlapping boxes?")
    assert result.exit_code == 0, result.output
    answer = result.stdout.splitlines()[0]  # the answer, first
    assert "[[bodla2017softnms]]" in answer  # a citation of a passage it was given: a link
    assert "<%" not in answer and "[[Secret plans]]" not in answer  # the rest is inert
    assert "> Soft-NMS decays the scores of overlapping boxes" in result.stdout  # its sources
    assert len(sent) == 1 and sent[0]["model"] == "tiny"
    prompt = sent[0]["messages"][-1]["content"]
    assert "How does Soft-NMS treat overlapping boxes?" in prompt
    assert "Soft-NMS decays the scores of overlapping boxes" in prompt
    shown = result.stdout.split("\n\n", 1)[1].strip()  # the passages printed under the answer
    assert prompt.split("Passages:\n\n", 1)[1].strip() == shown  # exactly those were sent
    assert SECRET not in json.dumps(sent)  # a note that did not match never leaves


def test_ask_without_an_endpoint_makes_no_network_call(library, httpserver: HTTPServer) -> None:
    config, _, _ = library
    proxy = httpserver.url_for("/")
    script = (
        "import sys\nfrom click.testing import CliRunner\nfrom bridge.cli import main\n"
        "r = CliRunner().invoke(main, ['ask', 'Soft-NMS overlapping boxes'])\n"
        "print(r.output)\nprint('httpx2 loaded' if 'httpx2' in sys.modules else 'no client')\n"
    )
    env = {**os.environ, "ZOB_CONFIG": str(config), "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy,
           "ALL_PROXY": proxy}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "[1] [[bodla2017softnms]]" in done.stdout and "set [ask] endpoint" in done.stdout
    assert done.stdout.strip().endswith("no client")  # the HTTP client was never imported
    assert httpserver.log == []  # and nothing reached the (proxy) server


def test_search_on_an_unindexed_vault_builds_the_index_first(tmp_path: Path) -> None:
    vault = tmp_path / "vault"
    (vault / "Notes").mkdir(parents=True)
    (vault / "Notes" / "idea.md").write_text("Quasicrystal tilings as priors.\n", "utf-8")
    config = tmp_path / "config.toml"
    config.write_text(f'vault = "{vault}"\n', encoding="utf-8")
    assert not (vault / ".zotero-bridge").exists()  # never synced, never searched
    result = zob(config, "search", "quasicrystal")
    assert result.exit_code == 0
    assert "Indexing the vault for search" in result.stderr
    assert "[[Notes/idea]]" in result.stdout
    assert (vault / ".zotero-bridge" / "search.sqlite").is_file()
    again = zob(config, "search", "quasicrystal")
    assert "Indexing" not in again.stderr and "[[Notes/idea]]" in again.stdout


def test_semantic_without_the_extra_says_so_once_and_searches_lexically(
    library, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.search import semantic

    monkeypatch.setattr(semantic, "MODEL_PACKAGE", "no_such_model_package_here")
    config, _, _ = library
    result = zob(config, "search", "greedy suppression", "--semantic", "--json")
    assert result.exit_code == 0
    assert result.stderr.count("[semantic] extra is not installed") == 1
    assert json.loads(result.stdout)[0]["note"] == "Papers/neubeck2006efficient.md"
