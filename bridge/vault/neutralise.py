"""The one neutraliser every string from Zotero passes before it reaches a note.

Zotero's metadata is third-party text (imported, scraped, shared in groups), and a note is
more than text to Obsidian: its community plugins run some of it (Templater runs `<% … %>` in
a new file, Dataview runs ```` ```dataviewjs ```` blocks and inline `` `$= …` ``), it renders
raw HTML (`<iframe>` loads), and the bridge itself reads structure back out of it (region
markers, fences, properties). What this module guarantees for any input string:

- **It reads the same.** Every transform is visible-but-inert: a zero-width space (U+200B)
  inside a token, a Markdown backslash escape, or an HTML entity, each of which Obsidian's
  reading view shows as the original character. Line breaks in single-line fields become
  spaces; nothing else is dropped but control characters.
- **Nothing runs.** No `<%` (Templater); no unescaped backtick in body text and none without
  a zero-width space after it in a property (so no code fence, hence no `dataview` or
  `dataviewjs` block, and no inline code, hence no Dataview `$=`/`=` query); no `<` that
  starts an HTML tag, comment or autolink (so no `<script>`, `<iframe>`, `<object>`,
  `<embed>`, and no element an `onerror=` could sit on); no `javascript:`, `vbscript:` or
  `data:` (a zero-width space before the colon).
- **No structure breaks.** Single-line output holds no line break of any kind; body text holds
  no `%%` (no Obsidian comment, so no fake region marker), no line that opens a ``` or ~~~
  fence (so no fence can swallow an end marker), no `[[`, `](`, `][` or `]:` (no accidental
  link or embed) and no trailing `^id` (no block id that collides with an annotation's).
- **Property values are never links** the bridge did not mean: no `[[` survives, so a title
  that is exactly `[[X]]` is text to Obsidian. The bridge's own `proposes`/`extends`/`related`
  links are made from sanitised file names and do not pass through here.
- **Stable.** Every function is deterministic, and `text`, `inline`, `prop` and `link_label`
  are idempotent, so rendering the same item twice gives the same note, re-rendering a value
  read back from a note changes nothing, and merges never see drift.

Where each function is used: `prop` for every Zotero-derived property value, `inline` for a
Zotero string on one line of the body (headings, list rows), `text` for multi-line body text
(abstract, annotation text and comment), `link_label` for text inside `[…](…)`, `url_part` for
text inside a link destination the bridge builds, `tags` for Obsidian tags, `mermaid_label` for
a node label inside a Mermaid block, and `view` for the model objects user templates may read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import is_dataclass
from typing import Any
from urllib.parse import quote

ZWSP = "\u200b"

# Python's `str.splitlines` boundaries: what any reader (YAML, CodeMirror, the `quote` filter)
# might take for a new line.
_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAK = re.compile(f"\r\n|[{_BREAKS}]")
_BREAK_RUN = re.compile(f"[ \t]*(?:\r\n|[{_BREAKS}])[{_BREAKS} \t]*|\t")
# C0/C1 controls other than tab and the line breaks above: invisible, they only make trouble.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_UNUSUAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")  # all but tab and LF

# One pass of substitutions for body text; each leaves nothing its own pattern (or another's)
# would match again, so the whole is idempotent (tests/test_injection.py checks it).
_BACKTICK = re.compile(r"(?<!\\)((?:\\\\)*)`")  # a backtick not already escaped
_TILDE_RUN = re.compile(r"~{3,}")  # could open a ~~~ fence (also after `> ` or in a heading)
_PERCENTS = re.compile(r"%(?=%)")  # `%%` opens an Obsidian comment and region markers
_TEMPLATER = re.compile(r"<(?=%)")  # `<%` opens a Templater command
_HTML = re.compile(r"<(?=[A-Za-z/!?])")  # a tag, closing tag, comment, CDATA or autolink
_LINKISH = re.compile(r"\[(?=\[)|\](?=[(\[:])")  # `[[`, `](`, `][`, `]:`
_SCHEME = re.compile(r"(?:javascript|vbscript|data)(?=:)", re.IGNORECASE)
_BLOCK_ID = re.compile(r"(?<!\S)\^(?=[A-Za-z0-9-]+[ \t]*$)", re.MULTILINE)
_NEEDS_BODY_WORK = re.compile(r"[`~%<\[\]^:\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")
_NEEDS_PROP_WORK = re.compile(r"[<`%\[\]:]")
_PROP_BREAK = re.compile(
    r"<(?=[A-Za-z/!?%])|`(?!\u200b)|%(?=%)|\[(?=\[)|\](?=[(\[:])"
    r"|(?:javascript|vbscript|data)(?=:)",
    re.IGNORECASE,
)
_BRACKET = re.compile(r"(?<!\\)((?:\\\\)*)([\[\]])")  # a bracket not already escaped
_URL_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")  # a `%` that is not an escape already

_MERMAID_CODES = (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("`", "#96;"))
_TAG_BAD = re.compile(r"[^\w/\-]")
MULTILINE_FIELDS = frozenset({"abstractNote", "extra", "text", "comment"})


def _lines(value: str) -> str:
    """Every kind of line break as LF, control characters gone."""
    if _UNUSUAL.search(value) is None:
        return value  # LF only, no controls: nearly every abstract, one scan
    return _CONTROL.sub("", _LINE_BREAK.sub("\n", value))


def _one_line(value: str) -> str:
    """Line breaks (with the spaces around them) and tabs as one space (a URL reader drops
    tabs and newlines, so `java<TAB>script:` would be a scheme); other spacing kept."""
    if "\n" not in value and "\t" not in value and _UNUSUAL.search(value) is None:
        return value.strip()
    return _CONTROL.sub("", _BREAK_RUN.sub(" ", value)).strip()


def _inert_markdown(value: str) -> str:
    """The body rules on text whose line breaks are already settled."""
    if _NEEDS_BODY_WORK.search(value) is None:
        return value  # nearly every title and name: one scan, no copy
    value = _BACKTICK.sub(r"\1\\`", value)
    value = _TILDE_RUN.sub(lambda m: "\\~" * len(m.group()), value)
    value = _PERCENTS.sub("%\\\\", value)
    value = _TEMPLATER.sub("<" + ZWSP, value)
    value = _HTML.sub("&lt;", value)
    value = _LINKISH.sub(lambda m: m.group() + ZWSP, value)
    value = _SCHEME.sub(lambda m: m.group() + ZWSP, value)
    return _BLOCK_ID.sub("\\\\^", value)


def text(value: str | None) -> str:
    """Multi-line body text (an abstract, a highlight, a comment): LF line ends, inert."""
    return _inert_markdown(_lines(value or ""))


def inline(value: str | None) -> str:
    """One line of body text (a heading, a list row, an author): whitespace runs become one
    space, so a title cannot start a new block, and the body rules apply."""
    return _inert_markdown(" ".join(_lines(value or "").split()))


def link_label(value: str | None) -> str:
    """Text inside `[…]` of a link the bridge makes (a page label): brackets escaped too."""
    return _BRACKET.sub(r"\1\\\2", inline(value))


def prop(value: str | None) -> str:
    """A property value from Zotero: one line, and a zero-width space after each character
    that would start something (`<%`, a tag, a backtick, `%%`, `[[`, `](`, a dangerous
    scheme) — invisible, since properties are not Markdown and a backslash would show. So a
    value is never a link, and stays inert even where a query renders it as Markdown."""
    value = _one_line(value or "")
    if _NEEDS_PROP_WORK.search(value) is None:
        return value
    return _PROP_BREAK.sub(lambda m: m.group() + ZWSP, value)


def props(values: Iterable[str]) -> list[str]:
    """`prop` for each value of a list property, empty ones dropped, order kept."""
    return [p for p in map(prop, values) if p]


def url_part(value: str | None) -> str:
    """Zotero text placed inside a link destination the bridge builds (`https://doi.org/…`):
    one line, and percent-encoded wherever it could end the link, open a comment or a tag,
    or carry a scheme (`:` too; `%` only when it is not already an escape)."""
    value = _one_line(value or "")
    value = _URL_PERCENT.sub("%25", value)
    return quote(value, safe="%/;=?&#+@!$*',.-_~", errors="replace")


def tags(values: Iterable[Any]) -> list[str]:
    """Zotero tags as Obsidian tags: only letters, digits, `_`, `-` and `/` (so nothing to
    escape), no spaces or `#`, not purely numeric, de-duplicated ignoring case."""
    result: dict[str, str] = {}
    for tag in values:
        clean = _TAG_BAD.sub("", "-".join(str(tag).split())).strip("-/")
        if clean and not clean.isdigit():
            result.setdefault(clean.casefold(), clean)
    return list(result.values())


def mermaid_label(value: str | None) -> str:
    """A node label inside a quoted Mermaid label: one line, and Mermaid's entity codes for
    the characters that could end the label, make it HTML or Markdown, or open `<%` (`#`
    first, so an entity code in the input is shown as typed, never decoded)."""
    value = " ".join(_lines(value or "").split())
    for char, code in _MERMAID_CODES:
        value = value.replace(char, code)
    return value


# --- model objects for user templates --------------------------------------------------------


def view(value: Any, name: str = "") -> Any:
    """What a template sees of a model value: strings neutralised (multi-line fields with
    `text`, everything else with `inline`), containers and model objects wrapped alike."""
    if isinstance(value, str):
        return text(value) if name in MULTILINE_FIELDS else inline(value)
    if isinstance(value, tuple | list):
        return tuple(view(v, name) for v in value)
    if isinstance(value, dict):
        return {k: view(v, k) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return NeutralView(value)
    return value


class NeutralView:
    """A read-only view of an Item, Creator, Attachment or Annotation for templates: every
    string read through it has passed the neutraliser, computed only when a template reads it
    (the bundled templates read none, so a large sync pays nothing)."""

    __slots__ = ("_target",)

    def __init__(self, target: Any) -> None:
        object.__setattr__(self, "_target", target)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return view(getattr(self._target, name), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("read-only")

    def __str__(self) -> str:
        return inline(str(self._target))

    __repr__ = __str__
