"""The paper note's header — H1, `authors · year · venue`, the Zotero / PDF / DOI links —
as the bridge's own managed region, rendered from the note's properties.

The header is rendered from the properties *as merged* (Zotero's values, and the user's
where the user changed a property), so it follows a title changed in Zotero, a PDF attached
later, and a `venue:` the user corrected. Notes written before the header was a region have
it as plain text; `adopt_legacy` wraps it in region markers only when it is exactly what the
bridge wrote then (rendered again from the properties the bridge last wrote, or from Zotero's
now), so a header the user edited by hand is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bridge.vault import neutralise
from bridge.vault.notefile import wrap_region

HEADER = "header"
_ZOTERO_URI = re.compile(r"zotero://[A-Za-z0-9/_.\-?=&]+")
_LABELS = {
    "en": ("Open in Zotero", "Open PDF", ", "),
    "zh": ("在 Zotero 中打开", "打开 PDF", "、"),
}


def _plain(value: Any) -> str:
    """A property value (Zotero's, neutralised for properties, or the user's) as body text."""
    if value is None or isinstance(value, list | dict):
        return ""
    return neutralise.inline(str(value).replace(neutralise.ZWSP, ""))


def _texts(value: Any) -> list[str]:
    values: Iterable[Any] = value if isinstance(value, list) else [value]
    return [t for t in map(_plain, values) if t]


def _uri(value: Any) -> str:
    """A `zotero://` link from a property, only when it is one (a user's odd value is not
    put inside a link)."""
    text = str(value) if isinstance(value, str) else ""
    return text if _ZOTERO_URI.fullmatch(text) else ""


def header_context(
    properties: dict[str, Any], fallback_uri: str, fallback_title: Any = None
) -> dict[str, Any]:
    """What `header.md.j2` sees, from the note's properties (`fallback_title`: Zotero's, for
    a note whose `title` property the user deleted — the H1 is never "Untitled" for that)."""
    doi = properties.get("doi")
    return {
        "title": _plain(properties.get("title")) or _plain(fallback_title),
        "authors": _texts(properties.get("authors")),
        "year": _plain(properties.get("year")),
        "venue": _plain(properties.get("venue")),
        "key": _plain(properties.get("zotero_key")),
        "zotero_uri": _uri(properties.get("zotero")) or fallback_uri,
        "pdf_uri": _uri(properties.get("pdf")),
        "doi": neutralise.url_part(str(doi).replace(neutralise.ZWSP, ""))
        if isinstance(doi, str | int | float) and not isinstance(doi, bool)
        else "",
    }


def legacy_header(properties: dict[str, Any], language: str) -> str:
    """The header exactly as the bridge's templates wrote it before it was a region
    (`paper.md.j2` and `zh/paper.md.j2` up to the version that made it one)."""
    c = header_context(properties, "")
    zotero, pdf, sep = _LABELS.get(language, _LABELS["en"])
    byline = sep.join(c["authors"])
    byline += f" · {c['year']}" if c["year"] else ""
    byline += f" · *{c['venue']}*" if c["venue"] else ""
    links = f"[{zotero}]({c['zotero_uri']})"
    links += f" · [{pdf}]({c['pdf_uri']})" if c["pdf_uri"] else ""
    links += f" · [DOI](https://doi.org/{c['doi']})" if c["doi"] else ""
    return f"# {c['title'] or 'Untitled'}\n\n> {byline}\n\n> {links}\n"


@dataclass(frozen=True)
class HeaderRenderer:
    """Renders the header region of one note from properties (`render`), and knows what
    the bridge wrote before the header was a region (`legacy`)."""

    render_template: Callable[[dict[str, Any]], str]
    fallback_uri: str
    fallback_title: str | None = None

    def render(self, properties: dict[str, Any]) -> str:
        context = header_context(properties, self.fallback_uri, self.fallback_title)
        return self.render_template(context).strip("\n")


def adopt_legacy(
    body: str,
    newline: str,
    candidates: Iterable[dict[str, Any]],
    inner: str,
) -> str | None:
    """`body` with its old plain header replaced by the header region holding `inner`, when
    the body starts with a header the bridge wrote (rendered from one of `candidates`, the
    property sets it may have been written from, in either language); else None."""
    for properties in candidates:
        for language in _LABELS:
            old = legacy_header(properties, language).replace("\n", newline)
            if body.startswith(old):
                region = wrap_region(HEADER, inner).replace("\n", newline)
                return region + newline + body[len(old) :]
    return None
