"""Zotero child notes (HTML) → Markdown for the `zotero-notes` region of a paper note.

Conversion is markdownify's (compared with html2text on Zotero's own note HTML: markdownify
escapes Markdown characters in text, so `*stars*` stay stars, writes GFM tables and `-` lists,
and lets images be converted per element; html2text left `*x*` as emphasis, dropped Zotero's
embedded images without a word and wrote indented code and loose tables). Its output then
passes `neutralise.text` like every Zotero string: a note is third-party text too (shared
group libraries, imported notes), so nothing in it runs or breaks the note's structure — no
Templater, no raw HTML, no `%%` region markers, no fences. Links and images are the one
exception, made here rather than by the converter: the label is neutralised as link text,
the destination must use a known scheme (`http`, `https`, `zotero`, `mailto`) and is
percent-encoded wherever it could end the link; they are put back after `neutralise.text`.

Headings move down two levels (a note's `<h1>` becomes `###`) so they sit under the region's
`##` heading; an image stored in Zotero (`data-attachment-key`) becomes a link that shows it
in Zotero, since the file is not in the vault.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any

from bs4 import BeautifulSoup
from markdownify import MarkdownConverter

from bridge.model import ChildNote, Item
from bridge.vault import neutralise

_SCHEMES = ("http", "https", "zotero", "mailto")
_TOKEN = re.compile("\ue000(\\d+)\ue001")
_BLANK_RUNS = re.compile(r"\n{3,}")
CACHE_SIZE = 4096
_CACHE: OrderedDict[bytes, str] = OrderedDict()
_DROPPED = ["script", "style", "iframe", "object", "embed", "noscript", "template", "svg"]


def _safe_url(url: str | None) -> str | None:
    """The link destination, percent-encoded where it could end the link; None for a scheme
    other than `_SCHEMES` (javascript:, data:, file:, a relative path…)."""
    url = (url or "").strip()
    scheme, colon, rest = url.partition(":")
    if not colon or scheme.lower() not in _SCHEMES:
        return None
    return f"{scheme.lower()}:{neutralise.url_part(rest)}"


class _Converter(MarkdownConverter):
    """markdownify with links and images as placeholders the caller fills in afterwards."""

    def __init__(self, library_part: str, in_zotero: str, **options: Any) -> None:
        super().__init__(heading_style="ATX", bullets="-", **options)
        self.library_part = library_part
        self.in_zotero = in_zotero
        self.links: list[str] = []

    def _token(self, markdown: str) -> str:
        self.links.append(markdown)
        return f"\ue000{len(self.links) - 1}\ue001"

    def convert_a(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        label = neutralise.link_label(el.get_text()) or "link"
        url = _safe_url(el.get("href"))
        if url is None:
            return neutralise.inline(el.get_text())
        return self._token(f"[{label}]({url})")

    def convert_img(self, el: Any, text: str, *args: Any, **kwargs: Any) -> str:
        alt = neutralise.link_label(el.get("alt") or "") or "image"
        key = el.get("data-attachment-key") or ""
        if re.fullmatch(r"[23456789A-Z]{8}", key):
            uri = f"zotero://select/{self.library_part}/items/{key}"
            return self._token(f"[{alt} ({self.in_zotero})]({uri})")
        url = _safe_url(el.get("src"))
        if url is None or not url.startswith("http"):
            return f"({alt})"
        return self._token(f"![{alt}]({url})")


def note_markdown(html: str, library_part: str = "library", in_zotero: str = "in Zotero") -> str:
    """One note's HTML as inert Markdown (links and images kept, see the module's doc).

    Converting takes a few ms per note, and a sync that reads everything (the first, or
    after a template change or an erased child) renders every note again: the answers of the
    last `CACHE_SIZE` notes are kept, by a digest of what they were made from."""
    key = hashlib.blake2b(
        "\0".join((html or "", library_part, in_zotero)).encode("utf-8", "replace"),
        digest_size=16,
    ).digest()
    found = _CACHE.get(key)
    if found is None:
        try:
            found = _convert(html, library_part, in_zotero)
        except RecursionError:  # nested thousands deep: its text alone, still inert
            found = _plain(html)
        _CACHE[key] = found
        if len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return found


def _plain(html: str) -> str:
    """The note's text without any formatting (BeautifulSoup walks the tree iteratively)."""
    soup = BeautifulSoup(html or "", "html.parser")
    for element in soup(_DROPPED):
        element.decompose()
    text = soup.get_text("\n")
    return _BLANK_RUNS.sub("\n\n", neutralise.text(text).strip("\n"))


def _convert(html: str, library_part: str, in_zotero: str) -> str:
    # the placeholders' own characters (private use, meaningless in a note) cannot come in
    html = (html or "").replace("\ue000", "").replace("\ue001", "")
    soup = BeautifulSoup(html, "html.parser")
    for element in soup(_DROPPED):  # code and embedded pages: nothing of theirs is text
        element.decompose()
    for level in range(6, 0, -1):
        for heading in soup.find_all(f"h{level}"):
            heading.name = f"h{min(level + 2, 6)}"
    converter = _Converter(library_part, in_zotero)
    markdown = converter.convert_soup(soup)
    markdown = _BLANK_RUNS.sub("\n\n", neutralise.text(markdown).strip("\n"))
    return _TOKEN.sub(lambda m: converter.links[int(m.group(1))], markdown)


_WORDS = {
    "en": ("Open this note in Zotero", "in Zotero"),
    "zh": ("在 Zotero 中打开此笔记", "在 Zotero 中"),
}


def child_notes_markdown(item: Item, language: str = "en") -> str:
    """Every child note of `item`, oldest first, each with a link to it in Zotero."""
    library_part = item.library.uri_part
    open_note, in_zotero = _WORDS.get(language, _WORDS["en"])
    parts = []
    for note in sorted(item.notes, key=_order):
        body = note_markdown(note.html, library_part, in_zotero)
        uri = f"zotero://select/{library_part}/items/{note.key}"
        parts.append(f"{body}\n\n*[{open_note}]({uri})*".lstrip("\n"))
    return "\n\n---\n\n".join(parts)


def _order(note: ChildNote) -> tuple[str, str]:
    return (note.date_added, note.key)
