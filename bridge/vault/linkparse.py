"""What Obsidian counts as a link in one file (`bridge.vault.links` resolves them).

* `parse_links`: wikilinks and embeds, markdown links to local files, and wikilinks that are
  the whole value of a frontmatter property; not in fenced or indented code, inline code or
  HTML comments; yes inside `%% %%` comments.
* `parse_canvas_links`: markdown links in a canvas's text cards, and each file card's file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import yaml

__all__ = ["NOTE_EXTENSIONS", "Link", "parse_canvas_links", "parse_links", "split_subpath"]

# Files Obsidian parses for links; every other file is only a possible link target.
NOTE_EXTENSIONS = frozenset({"md", "canvas"})

# --- block level -------------------------------------------------------------------------------

_BLOCKQUOTE = re.compile(r" {0,3}>[ \t]?")
_FENCE = re.compile(r"(`{3,}|~{3,})(.*)")
_LIST_ITEM = re.compile(r"([-+*]|\d{1,9}[.)])([ \t]+|$)")
_THEMATIC_BREAK = re.compile(r"([-*_])[ \t]*(?:\1[ \t]*){2,}$")
_HEADING = re.compile(r"#{1,6}(?:[ \t]|$)")
_FRONTMATTER_CLOSE = re.compile(r"---[ \t]*$")

# --- inline level ------------------------------------------------------------------------------

_INLINE = re.compile(r"`+|<!--|\[")
_URL_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
_BACKSLASH_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")
_TITLE_CLOSE = {'"': '"', "'": "'", "(": ")"}
_CODE_SPAN_CLOSERS: dict[str, re.Pattern[str]] = {}  # backtick run -> its closer, compiled once


@dataclass(frozen=True)
class Link:
    """One link as written in a file.

    `target` is the link path (`Methods/NMS`, `NMS.md`, `` for `[[#Heading]]`), already
    percent-decoded for markdown links; `subpath` keeps `#heading` / `#^block`.
    """

    target: str
    display: str | None
    subpath: str
    embed: bool
    kind: str  # "wiki" | "markdown" | "property" | "canvas" (a canvas file card)
    line: int  # 0-based line in the file (frontmatter lines count)


# ===============================================================================================
# Parsing
# ===============================================================================================


def parse_links(text: str) -> list[Link]:
    """All links of one markdown note, frontmatter properties first, then the body in order."""
    lines = text.split("\n")
    if lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    close = _frontmatter_close(lines)
    links: list[Link] = []
    body_start = 0
    if close is not None:
        links.extend(_property_links(lines[1:close], first_line=1))
        body_start = close + 1
    links.extend(_body_links(lines, body_start))
    return links


def parse_canvas_links(text: str) -> list[Link]:
    """Links of a `.canvas` file: markdown links in text cards, and the file of each file card.

    Obsidian indexes canvases like notes (a canvas is a key of `resolvedLinks`). Broken JSON has
    no links, as in Obsidian, rather than failing the whole index.
    """
    try:
        data = json.loads(text)
    except ValueError:
        return []
    nodes = data.get("nodes") if isinstance(data, dict) else None
    links: list[Link] = []
    for node in nodes if isinstance(nodes, list) else []:
        if isinstance(node, dict):
            links.extend(_canvas_node_links(node, _canvas_node_line(text, node)))
    return links


def _canvas_node_line(text: str, node: dict[str, Any]) -> int:
    """Line of a node in the raw JSON, found by its id, so a canvas link has a usable line."""
    node_id = node.get("id")
    at = text.find(f'"{node_id}"') if isinstance(node_id, str) else -1
    return text.count("\n", 0, at) if at >= 0 else 0


def _canvas_node_links(node: dict[str, Any], line: int) -> list[Link]:
    kind = node.get("type")
    if kind == "text" and isinstance(node.get("text"), str):
        lines = node["text"].split("\n")
        return [_at_line(link, line) for link in _body_links(lines, 0)]
    if kind == "file" and isinstance(node.get("file"), str) and node["file"]:
        subpath = node.get("subpath") if isinstance(node.get("subpath"), str) else ""
        return [Link(node["file"], None, subpath or "", True, "canvas", line)]
    return []


def _at_line(link: Link, line: int) -> Link:
    return Link(link.target, link.display, link.subpath, link.embed, link.kind, line)


# --- frontmatter -------------------------------------------------------------------------------


def _frontmatter_close(lines: list[str]) -> int | None:
    """Index of the closing `---` when the file opens with a frontmatter block, else None."""
    if not lines or not _FRONTMATTER_CLOSE.match(lines[0]):
        return None
    for index in range(1, len(lines)):
        if _FRONTMATTER_CLOSE.match(lines[index]):
            return index
    return None


_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class _StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe YAML that rejects duplicate keys, like the js-yaml parser Obsidian uses."""


def _construct_mapping(loader: Any, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_frontmatter(source: str) -> Any:
    """Parsed YAML, or None when it is broken: broken YAML gives no property links, nothing more."""
    try:
        return yaml.load(source, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except (yaml.YAMLError, ValueError, TypeError, RecursionError):
        return None


def _property_links(fm_lines: list[str], first_line: int) -> list[Link]:
    """Wikilinks that are the whole value of a property (or of a list item), at any depth."""
    source = "\n".join(fm_lines)
    if "[[" not in source:  # nearly every note: skip the YAML parser
        return []
    data = _load_frontmatter(source)
    if not isinstance(data, dict):
        return []
    locator = _LineLocator(fm_lines, first_line)
    links: list[Link] = []
    for value in _string_values(data):
        inner = _whole_wikilink(value)
        if inner is not None:
            target, display, subpath = _split_wikilink(inner)
            line = locator.find(value.strip())
            links.append(Link(target, display, subpath, False, "property", line))
    return links


def _string_values(value: Any) -> Iterator[str]:
    """Every string in a YAML value, walking lists and mappings in document order."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _string_values(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _string_values(item)


def _whole_wikilink(value: str) -> str | None:
    """The inside of `[[...]]` when the string is exactly one wikilink; Obsidian needs that."""
    value = value.strip()
    if not (value.startswith("[[") and value.endswith("]]")) or "\n" in value:
        return None
    inner = value[2:-2]
    return inner if inner and "]]" not in inner else None


class _LineLocator:
    """Finds the line of each property link, in order, so repeated links get successive lines."""

    def __init__(self, lines: list[str], first_line: int) -> None:
        self._lines = lines
        self._first = first_line
        self._cursor: dict[str, int] = {}

    def find(self, original: str) -> int:
        start = self._cursor.get(original, 0)
        for index in range(start, len(self._lines)):
            if original in self._lines[index]:
                self._cursor[original] = index + 1
                return self._first + index
        return self._first


# --- body: block structure ---------------------------------------------------------------------


def _body_links(lines: list[str], start: int) -> list[Link]:
    if not any("[" in line for line in lines[start:]):  # no link can start: skip the scan
        return []
    links: list[Link] = []
    for first_line, chunk in _inline_chunks(lines, start):
        if "[" in chunk:
            links.extend(_inline_links(chunk, first_line))
    return links


@dataclass
class _Fence:
    char: str
    length: int
    quote_depth: int
    container_indent: int  # content offset of the list item holding the fence, 0 outside lists


class _BlockScanner:
    """A small CommonMark-like block scanner: just enough structure to know which lines are code.

    Obsidian skips fenced code, indented code and HTML comment blocks; everything else is inline
    text, grouped into paragraphs ("chunks") because code spans and comments may span lines.
    """

    def __init__(self) -> None:
        self.chunks: list[tuple[int, list[str]]] = []
        self._chunk: list[str] | None = None
        self._chunk_start = 0
        self._fence: _Fence | None = None
        self._in_comment = False
        self._lists: list[int] = []  # content offsets of the open list items
        self._quote_depth = 0
        self._prev_blank = True
        self._in_paragraph = False

    def feed(self, index: int, raw: str) -> None:
        depth, rest = _strip_blockquotes(raw)
        if self._fence is not None and self._fence_swallows(depth, rest):
            return
        if self._in_comment:
            self._in_comment = "-->" not in raw
            return
        if depth != self._quote_depth:
            self._flush()
            self._lists.clear()
            self._quote_depth = depth
        self._line(index, rest)

    def finish(self) -> list[tuple[int, list[str]]]:
        self._flush()
        return self.chunks

    def _fence_swallows(self, depth: int, rest: str) -> bool:
        """True when the line belongs to the open fence (content or closing line)."""
        fence = self._fence
        assert fence is not None
        stripped = rest.lstrip(" \t")
        left_container = depth < fence.quote_depth or (
            fence.container_indent > 0 and bool(stripped) and _indent(rest) < fence.container_indent
        )
        if left_container:
            self._fence = None
            return False
        closing = stripped.startswith(fence.char * fence.length)
        if closing and not stripped.lstrip(fence.char).strip():
            self._fence = None
        return True

    def _line(self, index: int, rest: str) -> None:
        stripped = rest.lstrip(" \t")
        if not stripped:
            self._flush()
            self._prev_blank, self._in_paragraph = True, False
            return
        indent = _indent(rest)
        item = None if _THEMATIC_BREAK.match(stripped) else _LIST_ITEM.match(stripped)
        starts_block = bool(item) or _starts_block(stripped)
        if self._prev_blank or not self._in_paragraph or starts_block:
            while self._lists and indent < self._lists[-1]:
                self._lists.pop()
        relative = indent - (self._lists[-1] if self._lists else 0)
        self._prev_blank = False
        if relative >= 4 and not self._in_paragraph:
            self._flush()  # an indented code line
        elif self._opens_fence(stripped):
            self._flush()
            self._in_paragraph = False
        elif stripped.startswith("<!--"):
            self._flush()
            self._in_comment = stripped.find("-->", 2) < 0
            self._in_paragraph = False
        elif item is not None:
            self._open_list_item(indent, item)
            self._flush()
            self._append(index, rest)
        elif _HEADING.match(stripped):
            self._flush()
            self._append(index, rest)
            self._flush()
            self._in_paragraph = False
        else:
            self._append(index, rest)

    def _opens_fence(self, stripped: str) -> bool:
        match = _FENCE.match(stripped)
        if match is None or (match.group(1)[0] == "`" and "`" in match.group(2)):
            return False
        marker = match.group(1)
        container = self._lists[-1] if self._lists else 0
        self._fence = _Fence(marker[0], len(marker), self._quote_depth, container)
        return True

    def _open_list_item(self, indent: int, item: re.Match[str]) -> None:
        spaces = len(item.group(2).expandtabs(4))
        if spaces == 0 or spaces > 4:
            spaces = 1
        self._lists.append(indent + len(item.group(1)) + spaces)

    def _append(self, index: int, text: str) -> None:
        if self._chunk is None:
            self._chunk, self._chunk_start = [], index
        self._chunk.append(text)
        self._in_paragraph = True

    def _flush(self) -> None:
        if self._chunk:
            self.chunks.append((self._chunk_start, self._chunk))
        self._chunk = None


def _inline_chunks(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    """(first line, text) of each run of inline text in the body, code and comments left out."""
    scanner = _BlockScanner()
    for index in range(start, len(lines)):
        scanner.feed(index, lines[index])
    for first_line, chunk in scanner.finish():
        yield first_line, "\n".join(chunk)


def _strip_blockquotes(line: str) -> tuple[int, str]:
    depth = 0
    while True:
        match = _BLOCKQUOTE.match(line)
        if match is None:
            return depth, line
        depth += 1
        line = line[match.end() :]


def _indent(line: str) -> int:
    stripped = line.lstrip(" \t")
    return len(line[: len(line) - len(stripped)].expandtabs(4))


def _starts_block(stripped: str) -> bool:
    """Lines that interrupt a paragraph (so they are not lazy continuation lines)."""
    return (
        stripped.startswith(("```", "~~~", "<!--", ">"))
        or bool(_HEADING.match(stripped))
        or bool(_THEMATIC_BREAK.match(stripped))
    )


# --- body: inline links ------------------------------------------------------------------------


def _inline_links(text: str, first_line: int) -> list[Link]:
    """Wikilinks and markdown links in one paragraph, skipping code spans and HTML comments."""
    links: list[Link] = []
    pos = 0
    counted_to, line = 0, first_line  # lines counted incrementally: one pass per chunk
    while True:
        match = _INLINE.search(text, pos)
        if match is None:
            return links
        token, begin = match.group(), match.start()
        if token.startswith("`"):
            pos = _skip_code_span(text, match)
        elif token == "<!--":
            close = text.find("-->", begin + 2)
            pos = close + 3 if close >= 0 else match.end()
        else:
            line += text.count("\n", counted_to, begin)
            counted_to = begin
            pos = _link_at(text, begin, line, links)


def _skip_code_span(text: str, match: re.Match[str]) -> int:
    """End of the code span opened by this backtick run, or just past the run if unclosed."""
    run = match.group()
    closer = _CODE_SPAN_CLOSERS.get(run)
    if closer is None:
        closer = _CODE_SPAN_CLOSERS[run] = re.compile(rf"(?<!`){run}(?!`)")
    found = closer.search(text, match.end())
    return found.end() if found else match.end()


def _link_at(text: str, begin: int, line: int, links: list[Link]) -> int:
    """Parse a link starting at `[`; append it; return where scanning goes on."""
    embed = begin > 0 and text[begin - 1] == "!"
    if text.startswith("[[", begin):
        end = _wikilink_at(text, begin, embed, line, links)
        if end is not None:
            return end
    parsed = _markdown_link_at(text, begin)
    if parsed is None:
        return begin + 1
    end, display, destination = parsed
    target = _local_target(destination)
    if target is not None:
        path, subpath = split_subpath(target)
        links.append(Link(path, display, subpath, embed, "markdown", line))
    return end


def _wikilink_at(text: str, begin: int, embed: bool, line: int, links: list[Link]) -> int | None:
    close = text.find("]]", begin + 2)
    if close < 0:
        return None
    inner = text[begin + 2 : close]
    if "\n" in inner:
        return None
    nested = inner.rfind("[[")
    if nested >= 0:  # `[[a [[b]]`: the link is the innermost one
        return begin + 2 + nested
    if inner:  # `[[]]` is not a link at all
        target, display, subpath = _split_wikilink(inner)
        links.append(Link(target, display, subpath, embed, "wiki", line))
    return close + 2


def _split_wikilink(inner: str) -> tuple[str, str | None, str]:
    """(path, alias, subpath) of a wikilink body.

    Obsidian splits the alias at the first `|` only when something precedes it: `[[|x]]` is a
    link to a note called `|x`. `\\|` (the escaped pipe used inside tables) also splits.
    """
    bar = inner.find("|")
    display = None
    if bar > 0:
        inner, display = inner[:bar], inner[bar + 1 :]
        if inner.endswith("\\"):
            inner = inner[:-1]
    path, subpath = split_subpath(inner)
    return path, display, subpath


def split_subpath(link: str) -> tuple[str, str]:
    """Obsidian's parseLinktext: the path ends at the first `#`."""
    hash_at = link.find("#")
    return (link, "") if hash_at < 0 else (link[:hash_at], link[hash_at:])


def _markdown_link_at(text: str, begin: int) -> tuple[int, str, str] | None:
    """(end, link text, destination) of `[text](destination "title")` at `begin`, else None."""
    close = _closing_bracket(text, begin)
    if close is None or not text.startswith("(", close + 1):
        return None
    parsed = _destination(text, close + 2)
    if parsed is None:
        return None
    end, destination = parsed
    return end, text[begin + 1 : close], destination


def _closing_bracket(text: str, begin: int) -> int | None:
    depth, index, size = 0, begin, len(text)
    while index < size:
        char = text[index]
        if char == "\\":
            index += 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return index
        index += 1
    return None


def _destination(text: str, start: int) -> tuple[int, str] | None:
    """Destination and end of the `(...)` part of a markdown link, CommonMark style."""
    index = _skip_space(text, start)
    if text.startswith("<", index):
        close = text.find(">", index + 1)
        destination = text[index + 1 : close] if close >= 0 else "\n"
        if "\n" in destination or "<" in destination:
            return None
        index = close + 1
    else:
        index, destination = _bare_destination(text, index)
    after = _skip_space(text, index)
    if after < len(text) and text[after] in _TITLE_CLOSE and after > index:
        title_end = text.find(_TITLE_CLOSE[text[after]], after + 1)
        if title_end < 0:
            return None
        after = _skip_space(text, title_end + 1)
    if not text.startswith(")", after):
        return None
    return after + 1, destination


def _bare_destination(text: str, index: int) -> tuple[int, str]:
    start, depth, size = index, 0, len(text)
    while index < size:
        char = text[index]
        if char == "\\" and index + 1 < size:
            index += 2
            continue
        if char in " \t\n" or ord(char) < 0x20:
            break
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                break
            depth -= 1
        index += 1
    return index, text[start:index]


def _skip_space(text: str, index: int) -> int:
    newline_seen = False
    while index < len(text) and text[index] in " \t\n":
        if text[index] == "\n":
            if newline_seen:
                break
            newline_seen = True
        index += 1
    return index


def _local_target(destination: str) -> str | None:
    """The decoded vault link of a markdown destination; None for empty or external ones."""
    if not destination or _URL_SCHEME.match(destination):
        return None
    destination = _BACKSLASH_ESCAPE.sub(r"\1", destination)
    if "%" not in destination or _BAD_PERCENT.search(destination):
        return destination
    try:
        return unquote(destination, errors="strict")
    except UnicodeDecodeError:  # like JS decodeURI failing: keep the text as written
        return destination
