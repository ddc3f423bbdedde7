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


# libyaml (C) when PyYAML was built with it: 5-10x faster, and YAML dominates a big sync.
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
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)  # fmt: skip
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)  # fmt: skip
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
               r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+.0123456789"),
)  # fmt: skip
_ALIAS = re.compile(r"(?:^|[:\-\[,{]\s*)[&*][^\s,\[\]{}]+", re.MULTILINE)


class _Dumper(_SafeDumper):  # type: ignore[misc, valid-type]
    """Safe YAML; lists in block style (Obsidian reads `- x` at any indentation)."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_representer)


class NoteYAML(YAMLHandler):
    """python-frontmatter's YAML handler with our loader and dumper."""

    def load(self, fm: str, **kwargs: Any) -> Any:
        return yaml.load(fm, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader

    def export(self, metadata: dict[str, Any], **kwargs: Any) -> str:
        if not metadata:
            return ""
        return yaml.dump(
            metadata,
            Dumper=_Dumper,
            sort_keys=False,
            allow_unicode=True,
            default_flow_style=False,
            width=10_000,
        ).rstrip("\n")


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
    except yaml.YAMLError as exc:
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
