"""Reading and writing one note: frontmatter (Obsidian properties) and managed regions.

The body is kept byte-for-byte: python-frontmatter's own `loads` strips whitespace, so we use
its YAML handler only for the YAML itself and split the file ourselves. Everything outside the
managed regions is the user's and is never re-serialised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml
from frontmatter.default_handlers import YAMLHandler

from bridge.errors import NoteError
from bridge.vault import yamlpatch

BOM = "\ufeff"
_FENCE = re.compile(r"^---[ \t]*\r?$", re.MULTILINE)
_MARKER = re.compile(r"^%% zob:(begin|end) ([a-z0-9-]+) %%[ \t]*\r?$", re.MULTILINE)


# libyaml (C) when PyYAML was built with it: much faster, and YAML dominates a big sync.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class DuplicateKeyError(yaml.YAMLError):
    pass


class _Loader(_SafeLoader):  # type: ignore[misc, valid-type]
    """Safe YAML without implicit timestamps: `2024-01-01` stays the text the user typed.

    Duplicate keys are an error, as in Obsidian (js-yaml): which one wins is ambiguous."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        keys = [self.construct_object(k, deep=True) for k, _ in node.value]
        hashable = [k for k in keys if isinstance(k, str | int | float | bool) or k is None]
        if len(set(hashable)) != len(hashable):
            duplicate = next(k for k in hashable if hashable.count(k) > 1)
            raise DuplicateKeyError(f"the key {duplicate!r} appears twice")
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 core schema, as Obsidian (js-yaml) reads properties: no timestamps, `yes`/`no`
# stay text, `010` and `1:30` stay what they look like (YAML 1.1 made them 8 and 90).
_DROPPED_TAGS = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool",
                 "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}  # fmt: skip
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_CORE_RESOLVERS = (
    ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
     list("tTfF")),
    ("tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
     list("-+0123456789")),
    ("tag:yaml.org,2002:float",
     re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
     list("-+.0123456789")),
)  # fmt: skip
for _tag, _regexp, _first in _CORE_RESOLVERS:
    _Loader.add_implicit_resolver(_tag, _regexp, _first)


def _construct_core_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """Integers as YAML 1.2 core (and Obsidian) read them: `010` and `08` are decimal (YAML
    1.1 made `010` eight and could not read `08` at all), `0o17` octal, `0x1F` hex. Other
    explicitly tagged forms (`!!int 0b101`) go to PyYAML's own reading."""
    text = str(loader.construct_scalar(node))
    body = text.lstrip("+-")
    sign = -1 if text.startswith("-") else 1
    if body.isdigit() and body.isascii():
        return sign * int(body, 10)
    if body[:2] in ("0o", "0x") and text[:1] not in "+-":
        return int(body[2:], 8 if body[1] == "o" else 16)
    return int(yaml.SafeLoader.construct_yaml_int(loader, node))


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_core_int)
_ALIAS = re.compile(r"(?:^|[:\-\[,{]\s*)[&*][^\s,\[\]{}]+", re.MULTILINE)


class _Dumper(_SafeDumper):  # type: ignore[misc, valid-type]
    """Safe YAML; lists in block style (Obsidian reads `- x` at any indentation).

    A string is quoted when YAML 1.1 (PyYAML's resolvers) *or* YAML 1.2 core (`_Loader`,
    Obsidian, js-yaml) would read it back as something else: under 1.1 alone `0o17`, `1e3`
    and `089` went out plain and came back as numbers (or, `089`, did not load at all)."""


for _tag, _regexp, _first in _CORE_RESOLVERS:
    _Dumper.add_implicit_resolver(_tag, _regexp, _first)


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)
_DUMP_OPTIONS: dict[str, Any] = {
    "Dumper": _Dumper,
    "sort_keys": False,
    "allow_unicode": True,
    "default_flow_style": False,
    "width": 10_000,
}


def _dump(data: Any) -> str:
    """PyYAML's text for `data`: the authority the fast path below must match byte for byte."""
    return yaml.dump(data, **_DUMP_OPTIONS)


# --- the fast path of `NoteYAML.export` -------------------------------------------------------
# `yaml.dump` of a paper note's properties is slow, mostly PyYAML's per-node Python machinery,
# and the largest single cost of a first sync without this path. Most properties are a flat map of
# short one-line strings, ints and lists of those, whose text the emitter (libyaml's; the pure
# Python one agrees here) fixes completely: a string is written plain unless its characters
# or the dumper's implicit resolvers forbid it, and then single-quoted with `'` doubled. The fast
# path writes exactly that and hands everything else to `_dump`, per entry or for the whole map.
#
# Which strings qualify, from the emitter's scalar analysis (libyaml `yaml_emitter_analyze_scalar`,
# PyYAML `Emitter.analyze_scalar`):
# - only characters the emitter prints as they are (allow_unicode): no control characters,
#   tab, line breaks (incl. U+0085, U+2028, U+2029), BOM, surrogates, U+FFFE/U+FFFF or astral
#   characters (libyaml escapes those in double quotes). Such a string never needs double quotes
#   or a block scalar, so it is either plain or single-quoted;
# - at most `_FAST_MAX` characters, so the line stays far below `width` and is never folded;
# - plain unless it is empty, starts or ends with a space, starts with an indicator
#   (`#,[]{}&*!|>'"%@` and backquote; `-?:` followed by a space or alone; `---` or `...`), holds
#   `: ` or ` #`, ends with `:`, or any implicit resolver of `_Dumper` matches it (checked with
#   the dumper's own `resolve`, so the two can never disagree).
# Keys take the fast path only as identifiers of at most 64 characters (a simple key, written
# plain, when no resolver matches); ints only below 10**18, bools and None as `true`/`null`.
# tests/test_yaml_export.py compares the result with `yaml.dump` on random properties.
_FAST_MAX = 2000
_FAST_TEXT = re.compile(
    rf"[\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd]{{0,{_FAST_MAX}}}"
)
_FAST_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_INDICATORS = frozenset("#,[]{}&*!|>'\"%@` ")
_STR_TAG = "tag:yaml.org,2002:str"
_RESOLVER = _Dumper(None)  # only its `resolve`: the resolver table the real dump uses
_TEXT_CACHE: dict[str, str | None] = {}  # a string → its text as a value, None: no fast text
_KEY_CACHE: dict[str, bool] = {}  # a key → whether it is written plain as a simple key
_CACHE_MAX = 20_000  # per cache; tags, collections, dates and names repeat across notes
_CACHED_LENGTH = 300  # longer strings (abstracts, …) rarely repeat: not worth the memory
_MISSING: Any = object()
_INT_LIMIT = 10**18
_SCALAR_TYPES = frozenset({str, int, bool, float, type(None)})


def _plain(text: str) -> bool:
    """Whether the emitter writes `text` (of `_FAST_TEXT`'s characters) plain, as a value."""
    if not text:
        return False
    first = text[0]
    if first in _INDICATORS or text[-1] in " :" or ": " in text or " #" in text:
        return False
    if first in "-?:" and (len(text) == 1 or text[1] == " "):
        return False
    if text.startswith(("---", "...")):
        return False
    table = _Dumper.yaml_implicit_resolvers
    if first not in table and None not in table:
        return True  # no resolver for this first character: `resolve` would say str
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR_TAG


def _fast_text(text: str) -> str | None:
    """`text` as the emitter writes it as a block value, or None when the fast path can't tell."""
    result = _TEXT_CACHE.get(text, _MISSING)
    if result is not _MISSING:
        return result
    if _FAST_TEXT.fullmatch(text) is None:
        result = None
    elif _plain(text):
        result = text
    else:
        result = "'" + text.replace("'", "''") + "'"
    if len(text) <= _CACHED_LENGTH:
        if len(_TEXT_CACHE) >= _CACHE_MAX:
            _TEXT_CACHE.clear()
        _TEXT_CACHE[text] = result
    return result


def _fast_key(key: str) -> bool:
    """Whether `key` is a simple identifier the emitter writes plain (`null`, `yes` are not)."""
    plain = _KEY_CACHE.get(key)
    if plain is None:
        plain = _FAST_KEY.fullmatch(key) is not None and _plain(key)
        if len(_KEY_CACHE) >= _CACHE_MAX:
            _KEY_CACHE.clear()
        _KEY_CACHE[key] = plain
    return plain


def _fast_scalar(value: Any) -> str | None:
    kind = type(value)
    if kind is str:
        text = _TEXT_CACHE.get(value, _MISSING)
        return _fast_text(value) if text is _MISSING else text
    if kind is int:
        return str(value) if -_INT_LIMIT < value < _INT_LIMIT else None
    if kind is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    return None  # float: `_dump`


def _fast_export(metadata: dict[str, Any]) -> str | None:
    """`_dump(metadata)`, built entry by entry; None when only a whole `_dump` is exact.

    An entry the fast path can't write is dumped alone: a top-level entry's text does not depend
    on its neighbours as long as no anchor (a list object used twice) or open end (`...` after a
    `|+` block) ties them, and the value holds only scalars."""
    if type(metadata) is not dict:
        return None
    parts: list[str] = []
    lists: set[int] = set()
    for key, value in metadata.items():
        if type(key) is not str:
            return None
        kind = type(value)
        text: str | None = None
        if kind is list:
            if id(value) in lists:
                return None  # the same list twice: PyYAML writes an anchor and an alias
            lists.add(id(value))
            items = [_fast_scalar(item) for item in value]
            if None in items and any(type(item) not in _SCALAR_TYPES for item in value):
                return None  # nested values: whole document
            if not _fast_key(key) or None in items:
                pass
            elif items:
                text = "\n- ".join([f"{key}:", *items])  # type: ignore[list-item]
            else:
                text = f"{key}: []"
        elif kind not in _SCALAR_TYPES:
            return None
        elif _fast_key(key):
            scalar = _fast_scalar(value)
            if scalar is not None:
                text = f"{key}: {scalar}"
        if text is not None:
            parts.append(text + "\n")
            continue
        try:
            alone = _dump({key: value})
        except Exception:  # noqa: BLE001 - the whole dump raises the authoritative error
            return None
        if alone.endswith("...\n"):
            return None  # open-ended: the document's end depends on the entries after it
        parts.append(alone)  # as is: its last line may end in U+2028 and no newline
    return "".join(parts)


class NoteYAML(YAMLHandler):
    """python-frontmatter's YAML handler with our loader and dumper."""

    def load(self, fm: str, **kwargs: Any) -> Any:
        return yaml.load(fm, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader

    def export(self, metadata: dict[str, Any], **kwargs: Any) -> str:
        """`metadata` as YAML, exactly as `yaml.dump` with `_Dumper` writes it (less the last
        newlines); flat maps of simple values take a fast path (above)."""
        if not metadata:
            return ""
        text = _fast_export(metadata)
        if text is None:
            text = _dump(metadata)
        return text.rstrip("\n")


HANDLER = NoteYAML()


@dataclass
class Note:
    """A parsed note. `frontmatter_text` is the raw YAML (None when the note has none)."""

    path: str
    bom: str
    frontmatter_text: str | None
    properties: dict[str, Any]
    body: str
    newline: str

    def render_changed(self, properties: dict[str, Any]) -> str:
        """The note with new `properties`, changing only the YAML of the keys that changed.

        The user's comments, quoting and key order survive; if the YAML cannot be cut safely
        the whole frontmatter is re-serialised (see `yamlpatch`)."""
        if self.frontmatter_text is None:
            return self.render(properties)
        changes: dict[str, Any] = {
            k: v for k, v in properties.items()
            if k not in self.properties or self.properties[k] != v
            or type(self.properties[k]) is not type(v)
        }  # fmt: skip
        changes.update({k: yamlpatch.DELETE for k in self.properties if k not in properties})
        if not changes:
            return self.render()
        patched = yamlpatch.patch(
            self.frontmatter_text, changes, HANDLER.load, HANDLER.export, self.newline
        )
        try:
            safe = patched is not None and (HANDLER.load(patched) or {}) == properties
        except yaml.YAMLError:
            safe = False
        if not safe:
            return self.render(properties)
        assert patched is not None
        nl = self.newline
        head = f"---{nl}{patched}---{nl}" if patched.strip() else ""
        return f"{self.bom}{head}{self.body}"

    def render(self, properties: dict[str, Any] | None = None) -> str:
        """The note's text; re-serialises the YAML only when new `properties` are given."""
        nl = self.newline
        if properties is None and self.frontmatter_text is not None:
            head = f"---{nl}{self.frontmatter_text}---{nl}"
        elif properties is None and self.frontmatter_text is None:
            head = ""
        else:
            yaml_text = HANDLER.export(properties or {})
            yaml_text = yaml_text.replace("\n", nl)
            head = f"---{nl}{yaml_text}{nl}---{nl}" if yaml_text else ""
        return f"{self.bom}{head}{self.body}"


def parse_note(path: str, text: str) -> Note:
    """Split a note into frontmatter and body; raise NoteError when the YAML is unusable."""
    bom = BOM if text.startswith(BOM) else ""
    text = text[len(bom) :]
    newline = "\r\n" if "\r\n" in text.split("\n", 1)[0] + "\n" else "\n"
    if not _FENCE.match(text):
        return Note(path, bom, None, {}, text, newline)
    first = _FENCE.match(text)
    assert first is not None
    closing = _FENCE.search(text, first.end())
    if closing is None:
        raise NoteError(path, "frontmatter has no closing '---'", "add the closing line")
    yaml_start = first.end() + 1
    yaml_text = text[yaml_start : closing.start()]
    body_start = closing.end() + 1 if closing.end() < len(text) else closing.end()
    if _ALIAS.search(yaml_text):
        raise NoteError(
            path,
            "properties use YAML anchors or aliases (& or *), which Obsidian does not support",
            "write the values out in full; the note was left untouched",
        )
    try:
        loaded = HANDLER.load(yaml_text)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        # ValueError & co.: a value the YAML grammar accepts but its type cannot take
        # (`!!int 12x`, `!!float nope`): the note is as unusable as with a syntax error
        raise NoteError(
            path,
            f"properties are not valid YAML ({_first_line(exc)})",
            "fix the YAML in Obsidian's source mode; the note was left untouched",
        ) from exc
    if loaded is None:
        loaded = {}
    if not isinstance(loaded, dict):
        raise NoteError(
            path,
            "properties are not a key: value map",
            "fix the YAML in Obsidian's source mode; the note was left untouched",
        )
    properties = {str(k): v for k, v in loaded.items()}
    return Note(path, bom, yaml_text, properties, text[body_start:], newline)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


# --- managed regions -------------------------------------------------------------------------


def begin_marker(name: str) -> str:
    return f"%% zob:begin {name} %%"


def end_marker(name: str) -> str:
    return f"%% zob:end {name} %%"


def wrap_region(name: str, inner: str) -> str:
    """A whole region, markers included. `inner` is normalised to end with one newline."""
    inner = inner.strip("\n")
    middle = f"{inner}\n" if inner else ""
    return f"{begin_marker(name)}\n{middle}{end_marker(name)}"


@dataclass(frozen=True)
class Region:
    name: str
    start: int  # offset of the first character inside (after the begin line)
    end: int  # offset of the end marker line


def find_regions(path: str, body: str) -> dict[str, Region]:
    """Locate managed regions; raise NoteError for duplicated, nested or unbalanced markers."""
    regions: dict[str, Region] = {}
    open_name: str | None = None
    open_start = 0
    fenced = _fenced_ranges(body)
    for match in _MARKER.finditer(body):
        if any(start <= match.start() < end for start, end in fenced):
            continue  # a marker shown in a code block is text, not a marker
        kind, name = match.group(1), match.group(2)
        if kind == "begin":
            if open_name is not None:
                raise _marker_error(path, f"region '{name}' begins inside region '{open_name}'")
            if name in regions:
                raise _marker_error(path, f"region '{name}' appears twice")
            open_name = name
            open_start = _line_end(body, match.end())
        else:
            if open_name != name:
                raise _marker_error(path, f"'zob:end {name}' without a matching begin")
            regions[name] = Region(name, open_start, match.start())
            open_name = None
    if open_name is not None:
        raise _marker_error(path, f"region '{open_name}' has no end marker")
    return regions


_FENCE_LINE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})", re.MULTILINE)


def _fenced_ranges(body: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks (``` or ~~~), where Obsidian shows `%%` as text."""
    ranges: list[tuple[int, int]] = []
    opening: re.Match[str] | None = None
    for match in _FENCE_LINE.finditer(body):
        fence = match.group(1)
        if opening is None:
            opening = match
        elif fence[0] == opening.group(1)[0] and len(fence) >= len(opening.group(1)):
            ranges.append((opening.start(), match.end()))
            opening = None
    if opening is not None:
        ranges.append((opening.start(), len(body)))
    return ranges


def _line_end(text: str, pos: int) -> int:
    newline = text.find("\n", pos)
    return len(text) if newline == -1 else newline + 1


def _marker_error(path: str, message: str) -> NoteError:
    return NoteError(
        path,
        f"managed-region markers are broken: {message}",
        "restore the '%% zob:begin/end NAME %%' lines (or delete both);"
        " the note was left untouched",
    )


def region_texts(path: str, body: str) -> dict[str, str]:
    """Region name → its inner text, normalised (no leading/trailing blank lines, LF)."""
    return {
        name: normalise_region(body[r.start : r.end])
        for name, r in find_regions(path, body).items()
    }


def normalise_region(inner: str) -> str:
    return inner.replace("\r\n", "\n").strip("\n")


def replace_regions(path: str, body: str, new_inner: dict[str, str], newline: str) -> str:
    """Replace the inner text of the named regions, keeping everything else byte-for-byte."""
    regions = find_regions(path, body)
    pieces: list[str] = []
    cursor = 0
    for region in sorted(regions.values(), key=lambda r: r.start):
        if region.name not in new_inner:
            continue
        inner = new_inner[region.name].strip("\n")
        inner = f"{inner}\n" if inner else ""
        pieces.append(body[cursor : region.start])
        pieces.append(inner.replace("\n", newline))
        cursor = region.end
    pieces.append(body[cursor:])
    return "".join(pieces)


def insert_after_region(path: str, body: str, name: str, text: str, newline: str) -> str:
    """Insert `text` on the lines right after region `name`'s end marker (conflict callouts)."""
    region = find_regions(path, body)[name]
    after = _line_end(body, region.end)
    block = text.strip("\n").replace("\n", newline) + newline
    if after == len(body) and not body.endswith(("\n", "\r")):
        block = newline + block
    return body[:after] + block + body[after:]
