"""A note cut into passages: the paragraphs its author wrote, each highlight with its
`^block` id and PDF page, and a head passage of its title and properties.

Any note of the vault is read this way, not only the bridge's own: a note without properties
is a plain note, one with `zotero_key` a paper, one with `type: method` a method. A block is
what Obsidian calls one: lines up to a blank line; a `^id` alone on the next line (as the
bridge writes under each highlight) or at the end of the block's last line names it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime

from bridge.errors import NoteError
from bridge.vault.notefile import parse_note

MAX_PASSAGE = 1200  # characters; a longer paragraph is cut at sentence ends

_BLOCK_ID = re.compile(r"(?:^|\s)\^([A-Za-z0-9-]+)\s*$")
_COMMENT = re.compile(r"%%.*?%%", re.DOTALL)
# the bridge's regions that only restate other notes (who extends whom, the reading queue):
# searching them would rank a list of titles above the notes themselves
_RESTATED = re.compile(
    r"%% zob:begin (lineage|proposed-in|extends|extended-by|queue-[a-z0-9-]+) %%.*?"
    r"%% zob:end \1 %%",
    re.DOTALL,
)
_PAGE = re.compile(r"zotero://open-pdf/[^)\s]*?[?&]page=(\d+)")
_PDF_KEY = re.compile(r"zotero://open-pdf/(?:library|groups/\d+)/items/([23456789A-Z]{8})")
_LINK_LINE = re.compile(r"^\[p\.\s*[^\]]*\]\(zotero://[^)]*\)(?P<tags>.*)$")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_WIKI = re.compile(r"!?\[\[([^\]|#]*)(?:#[^\]|]*)?(?:\|([^\]]*))?\]\]")
_EMPTY_FIELD = re.compile(r"^[-*]\s+\*\*[^*]+\*\*[^:]*:\s*$|^[-*]\s+\*\*[^*]+:\*\*\s*$")
_HINT = re.compile(r"^\*[^*].*\*$")  # a template's italic hint line
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|(?<=[。！？])")
_FENCE = re.compile(r"^(```|~~~)")
_GENERATED = {"mermaid", "dataview", "dataviewjs", "query", "tasks", "base"}
_HEADING = re.compile(r"^#{1,6}\s")
_ONLY_LINKS = re.compile(r"^(?:\s|[·|,;/-]|!?\[[^\]]*\]\([^)]*\))*$")
# a line that only lists links under a label (lineage regions, method notes' lists of papers)
_LINK_LIST = re.compile(r"^(?:[-*]\s+)?(?:\*\*[^*]+:?\*\*:?\s*)?(?:!?\[\[[^\]]*\]\][\s,;·]*)+$")


@dataclass(frozen=True)
class Passage:
    kind: str  # "head" | "text" | "highlight"
    text: str
    section: str = ""  # the heading it sits under
    block: str | None = None  # the `^id` that names it
    page: int | None = None  # PDF page (1-based) of a highlight


@dataclass
class NoteDoc:
    """A note's facts for search results and filters, and its passages."""

    path: str
    kind: str  # "paper" | "method" | "note"
    title: str
    citekey: str = ""
    year: int | None = None
    reading_pass: str = ""
    status: str = ""
    tags: list[str] = field(default_factory=list)
    added: str = ""  # ISO date the paper was added to Zotero (or "")
    zotero_key: str = ""
    pdf_key: str = ""  # the attachment whose full text belongs to this note
    passages: list[Passage] = field(default_factory=list)


def read_note(path: str, text: str) -> NoteDoc:
    """Cut a note's text into a NoteDoc. Properties that do not parse leave a plain note."""
    try:
        note = parse_note(path, text)
        props, body = note.properties or {}, note.body
    except NoteError:
        props, body = {}, text
    doc = _facts(path, props if isinstance(props, dict) else {})
    doc.passages.append(Passage("head", _head_text(doc, props)))
    doc.passages.extend(body_passages(body))
    return doc


def _facts(path: str, props: dict) -> NoteDoc:
    stem = path.rsplit("/", 1)[-1].removesuffix(".md")
    year = props.get("year")
    kind = "paper" if props.get("zotero_key") else "note"
    if str(props.get("type") or "").casefold() == "method":
        kind = "method"
    pdf = _PDF_KEY.search(str(props.get("pdf") or ""))
    return NoteDoc(
        path=path, kind=kind, title=_text(props.get("title")) or stem,
        citekey=_text(props.get("citekey")),
        year=year if isinstance(year, int) and not isinstance(year, bool) else None,
        reading_pass=_text(props.get("pass")), status=_text(props.get("status")),
        tags=[_text(t).lstrip("#") for t in _listed(props.get("tags")) if _text(t)],
        added=_iso(props.get("date_added")), zotero_key=_text(props.get("zotero_key")),
        pdf_key=pdf.group(1) if pdf else "",
    )  # fmt: skip


def _text(value: object) -> str:
    if value is None or isinstance(value, dict | list):
        return ""
    return str(value).strip()


def _listed(value: object) -> list:
    return value if isinstance(value, list) else [value] if value is not None else []


def _iso(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return _text(value)[:25]


def _head_text(doc: NoteDoc, props: dict) -> str:
    parts = [doc.title, doc.path.rsplit("/", 1)[-1].removesuffix(".md"), doc.citekey]
    for key in ("aliases", "authors", "venue", "tags", "collections", "proposes", "extends"):
        parts.extend(_text(v) for v in _listed(props.get(key)))
    return " · ".join(dict.fromkeys(_plain(p) for p in parts if p))


def _plain(text: str) -> str:
    """Markdown → the words a reader sees (links keep their label)."""
    text = _WIKI.sub(lambda m: m.group(2) or m.group(1), text)
    text = _MD_LINK.sub(r"\1", text)
    return text.replace("**", "").replace("__", "").strip()


def body_passages(body: str) -> list[Passage]:
    """The passages of a note's body, in order."""
    out: list[Passage] = []
    section = ""
    body = _RESTATED.sub("", body) if "%% zob:begin" in body else body
    for lines in _blocks(_COMMENT.sub("", body)):
        if _HEADING.match(lines[0]):
            section = lines[0].lstrip("#").strip()
            continue
        block = None
        match = _BLOCK_ID.search(lines[-1])
        if match:
            block = match.group(1)
            lines[-1] = lines[-1][: match.start()].rstrip()
        out.extend(_passages(lines, section, block))
    return out


def _blocks(body: str) -> list[list[str]]:
    """Blank-line separated blocks; a lone `^id` line joins the block above it."""
    blocks: list[list[str]] = []
    current: list[str] = []
    fenced = False
    for raw in body.splitlines():
        line = raw.rstrip()
        if _FENCE.match(line.lstrip()):
            fenced = not fenced
        if _HEADING.match(line) and not fenced:  # a heading is a block of its own
            if current:
                blocks.append(current)
            blocks.append([line])
            current = []
            continue
        if line.strip() or fenced:
            current.append(line)
            continue
        if current:
            blocks.append(current)
            current = []
    if current:
        blocks.append(current)
    merged: list[list[str]] = []
    for block in blocks:
        if len(block) == 1 and _BLOCK_ID.fullmatch(block[0].strip()) and merged:
            merged[-1] = [*merged[-1], block[0].strip()]
        else:
            merged.append(block)
    return merged


def _passages(lines: list[str], section: str, block: str | None) -> list[Passage]:
    fence = _FENCE.match(lines[0].lstrip()) if lines else None
    if fence and lines[0].lstrip()[3:].strip().lower() in _GENERATED:
        return []  # a diagram or a query, not words anyone wrote
    quoted = bool(lines) and all(line.lstrip().startswith(">") for line in lines if line)
    page = None
    kept: list[str] = []
    for line in lines:
        bare = line.lstrip().lstrip(">").strip() if quoted else line.strip()
        match = _PAGE.search(bare)
        if match and page is None:
            page = int(match.group(1))
        link = _LINK_LINE.match(bare)
        if link:  # the highlight's own "[p. 3](zotero://…)" line: its page is kept
            bare = link.group("tags").strip()
        if not bare or _EMPTY_FIELD.match(bare) or _HINT.match(bare):
            continue
        if _ONLY_LINKS.match(bare) or _LINK_LIST.match(bare):
            continue
        kept.append(_plain(bare))
    text = " ".join(k for k in kept if k).strip()
    if not text:
        return []
    if quoted and block:
        return [Passage("highlight", text, section, block, page)]
    return [Passage("text", piece, section, block) for piece in _cut(text)]


def _cut(text: str) -> list[str]:
    """A long paragraph in pieces of at most ~MAX_PASSAGE characters, cut after sentences."""
    if len(text) <= MAX_PASSAGE:
        return [text]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        if current and len(current) + len(sentence) > MAX_PASSAGE:
            pieces.append(current.strip())
            current = ""
        current += sentence + " "
    if current.strip():
        pieces.append(current.strip())
    return [p[i : i + 2 * MAX_PASSAGE] for p in pieces for i in range(0, len(p), 2 * MAX_PASSAGE)]
