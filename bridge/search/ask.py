"""`zob ask QUESTION`: the passages that answer it, cited, and — only when the config names an
OpenAI-compatible endpoint (`[ask] endpoint`) — an answer written from those passages alone.

Without an endpoint nothing is sent anywhere (the HTTP client is not even imported). With
one, the request carries the question and the retrieved passages, nothing else of the vault.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from bridge.config import Config, read_small_file
from bridge.errors import EXIT_SOURCE, BridgeError
from bridge.search import engine, tokens
from bridge.search.store import SearchIndex
from bridge.vault import neutralise

TOP_PASSAGES = 6
MAX_CHARS = 1500  # of one passage sent to the model
MIN_CHARS = 40  # a shorter passage is not worth a citation
TIMEOUT = 120.0  # seconds: a local model can be slow (the whole reply, not each read)
MAX_REPLY = 1 << 20  # bytes: an answer of a few paragraphs is a few KB; more is not one
SYSTEM = (
    "You answer questions about a researcher's reading notes. Use ONLY the numbered passages "
    "given. After every claim, cite the passage it comes from with its citation in double "
    "brackets exactly as given, e.g. [[smith2020deep]]. If the passages do not answer the "
    "question, say so in one sentence. Be brief."
)


class AskError(BridgeError):
    """The configured endpoint did not answer."""

    exit_code = EXIT_SOURCE


@dataclass(frozen=True)
class Cited:
    number: int
    cite: str  # [[citekey]] or [[Note]]
    title: str
    year: int | None
    where: str  # "p. 3", "highlight", "note"
    link: str
    text: str


def retrieve(index: SearchIndex, question: str, k: int = TOP_PASSAGES) -> list[Cited]:
    """The `k` best passages for the question (at most two from one note), with citations."""
    hits = index.match(tokens.query_terms(question), 80)
    # a title, or a line of a few words, answers nothing
    hits = [h for h in hits if h.kind != "head" and h.length >= MIN_CHARS] or hits
    docs = index.docs(h.doc_id for h in hits)
    chosen: list = []
    per_note: dict[int, int] = {}
    for hit in hits:
        if len(chosen) == k:
            break
        if hit.doc_id in docs and per_note.get(hit.doc_id, 0) < 2:
            per_note[hit.doc_id] = per_note.get(hit.doc_id, 0) + 1
            chosen.append(hit)
    out: list[Cited] = []
    for hit in index.with_texts(chosen):
        doc = docs[hit.doc_id]
        stem = doc["path"].rsplit("/", 1)[-1].removesuffix(".md")
        where = f"p. {hit.page}" if hit.page else {"highlight": "highlight"}.get(hit.kind, "note")
        link = engine.note_link(doc, hit.block)
        if hit.kind == "fulltext":
            link = engine.pdf_link(doc, hit) or link
        out.append(
            Cited(len(out) + 1, f"[[{doc['citekey'] or stem}]]", doc["title"], doc["year"],
                  where, link, engine.shown_text(hit)[:MAX_CHARS])
        )  # fmt: skip
    return out


def passages_text(passages: list[Cited]) -> str:
    """The passages as numbered, cited quotes, ready to paste into a note or a prompt."""
    blocks = []
    for p in passages:
        year = f", {p.year}" if p.year else ""
        blocks.append(f"[{p.number}] {p.cite} ({p.title}{year}; {p.where}) {p.link}\n> {p.text}")
    return "\n\n".join(blocks)


def answer(config: Config, question: str, passages: list[Cited]) -> str:
    """The endpoint's answer, from these passages only."""
    if not config.ask_endpoint:
        raise AskError("no [ask] endpoint in the config", hint="see config.example.toml")
    import httpx2  # the HTTP client pyzotero brings; imported only when a call is made

    url = config.ask_endpoint.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    if config.ask_api_key_file:
        key = read_small_file(config.ask_api_key_file, 4096, "ask api_key_file").strip()
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": config.ask_model,
        "temperature": 0,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Question: {question}\n\nPassages:\n\n"
             + passages_text(passages)},
        ],
    }  # fmt: skip
    try:
        reply = _post(httpx2, url, body, headers)
        return _inert(_content(json.loads(reply)), {p.cite for p in passages})
    except (httpx2.HTTPError, ValueError) as exc:
        raise AskError(
            f"the ask endpoint {url} did not answer: {type(exc).__name__}: {exc}",
            hint="check [ask] endpoint and model in the config; the passages above stand",
        ) from None


def _post(httpx2: Any, url: str, body: dict, headers: dict) -> bytes:
    """The endpoint's reply body, read up to MAX_REPLY bytes and TIMEOUT seconds in all: a
    server that sends without end, or a byte a minute, does not hold `zob ask` (or its
    memory) forever. A redirect is not followed (the key would go with it)."""
    deadline = time.monotonic() + TIMEOUT
    with httpx2.stream(
        "POST", url, json=body, headers=headers, timeout=TIMEOUT, follow_redirects=False
    ) as response:
        response.raise_for_status()
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_REPLY:
                raise AskError(
                    f"the ask endpoint {url} sent a reply too large (over {MAX_REPLY} bytes)",
                    hint="check [ask] endpoint in the config; the passages above stand",
                )
            if time.monotonic() > deadline:
                raise AskError(
                    f"the ask endpoint {url} took over {TIMEOUT:.0f} s to answer",
                    hint="a smaller model, or try again; the passages above stand",
                )
    return bytes(data)


def _inert(answer: str, cites: set[str]) -> str:
    """The model's answer (made from third-party text) through the neutraliser, keeping the
    `[[citekey]]` citations of the passages it was given as links."""
    pattern = "(" + "|".join(re.escape(c) for c in sorted(cites, key=len, reverse=True)) + ")"
    parts = re.split(pattern, answer) if cites else [answer]
    return "".join(p if p in cites else neutralise.text(p) for p in parts).strip()


def _content(reply: Any) -> str:
    try:
        return str(reply["choices"][0]["message"]["content"]).strip()
    except (KeyError, IndexError, TypeError):
        raise ValueError("the reply is not an OpenAI-style chat completion") from None


def cited_json(p: Cited) -> dict[str, Any]:
    return {
        "n": p.number, "cite": p.cite, "title": p.title, "year": p.year, "where": p.where,
        "link": p.link, "text": p.text,
    }  # fmt: skip
