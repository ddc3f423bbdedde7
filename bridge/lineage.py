"""Method lineage: which paper proposes which method, and which methods extend which.

Edges come from Zotero (tags `proposes:X` / `extends:Y`, Extra lines `proposes: X` /
`extends: Y; Z`) and from the user's own `proposes` / `extends` properties in paper notes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bridge.model import Item
from bridge.vault import neutralise
from bridge.vault.names import method_stem

_SPLIT = re.compile(r"[;,]")
# `zob demo`'s `[lineage.aliases]`: shows aliases at work (`zob lineage bn`)
DEMO_ALIASES = {
    "BN": "Batch Normalization",
    "IN": "Instance Normalization",
    "GN": "Group Normalization",
}


@dataclass(frozen=True)
class ItemEdges:
    proposes: tuple[str, ...] = ()
    extends: tuple[str, ...] = ()


def _names(text: str) -> list[str]:
    return [n.strip() for n in _SPLIT.split(text) if n.strip()]


def _dedupe(names: list[str]) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for name in names:
        seen.setdefault(name.casefold(), name)
    return tuple(seen.values())


def item_edges(
    item: Item, proposes_prefix: str = "proposes:", extends_prefix: str = "extends:"
) -> ItemEdges:
    """The methods an item proposes and extends, from its tags and Extra field."""
    proposes: list[str] = []
    extends: list[str] = []
    for tag in item.tags:
        lowered = tag.lower()
        if lowered.startswith(proposes_prefix.lower()):
            proposes.extend(_names(tag[len(proposes_prefix) :]))
        elif lowered.startswith(extends_prefix.lower()):
            extends.extend(_names(tag[len(extends_prefix) :]))
    for line in item.fields.get("extra", "").splitlines():
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "proposes":
            proposes.extend(_names(value))
        elif key == "extends":
            extends.extend(_names(value))
    return ItemEdges(_dedupe(proposes), _dedupe(extends))


def is_lineage_tag(
    tag: str, proposes_prefix: str = "proposes:", extends_prefix: str = "extends:"
) -> bool:
    lowered = tag.lower()
    return lowered.startswith(proposes_prefix.lower()) or lowered.startswith(extends_prefix.lower())


# --- the method graph, from the paper notes' properties ----------------------------------------

_WIKILINK = re.compile(r"^\s*\[\[([^\]|#]+)(?:#[^\]|]*)?(?:\|[^\]]*)?\]\]\s*$")


def method_name_from_value(value: object) -> str | None:
    """`"[[Soft-NMS]]"` or `"[[Methods/Soft-NMS|alias]]"` or plain `Soft-NMS` → `Soft-NMS`."""
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return None
    text = str(value).strip()
    match = _WIKILINK.match(text)
    if match:
        text = match.group(1).strip().rsplit("/", 1)[-1]
        if text.lower().endswith(".md"):
            text = text[:-3]
    return text or None


def method_names(value: object) -> list[str]:
    values = value if isinstance(value, list) else [value] if value is not None else []
    return [name for name in map(method_name_from_value, values) if name]


@dataclass(frozen=True)
class PaperInfo:
    """What a method note shows about a paper, read from the paper note's properties."""

    note_id: str
    path: str
    title: str
    year: int | None
    venue: str
    reading_pass: str
    status: str
    proposes: tuple[str, ...]
    extends: tuple[str, ...]
    venue_short: str = ""  # the note's own `venue_short` property, when it has one
    citekey: str = ""

    @property
    def stem(self) -> str:
        return self.path.rsplit("/", 1)[-1].removesuffix(".md")

    @classmethod
    def from_properties(cls, note_id: str, path: str, props: dict) -> PaperInfo:
        year = props.get("year")
        return cls(
            note_id=note_id, path=path, title=str(props.get("title") or ""),
            year=year if isinstance(year, int) and not isinstance(year, bool) else None,
            venue=str(props.get("venue_short") or props.get("venue") or ""),  # lists: short
            reading_pass=str(props.get("pass", "")),
            status=str(props.get("status") or ""),
            proposes=tuple(method_names(props.get("proposes"))),
            extends=tuple(method_names(props.get("extends"))),
            venue_short=_text(props.get("venue_short")), citekey=_text(props.get("citekey")),
        )  # fmt: skip


def _text(value: object) -> str:
    plain = isinstance(value, str | int | float) and not isinstance(value, bool)
    return str(value) if plain else ""


# Well-known venues, longest first where one name contains another.
_VENUES = (
    ("north american chapter of the association for computational linguistics", "NAACL"),
    ("association for computational linguistics", "ACL"),
    ("neural information processing systems", "NeurIPS"),
    ("computer vision and pattern recognition", "CVPR"),
    ("international conference on computer vision", "ICCV"),
    ("european conference on computer vision", "ECCV"),
    ("international conference on machine learning", "ICML"),
    ("international conference on learning representations", "ICLR"),
    ("journal of machine learning research", "JMLR"),
    ("pattern analysis and machine intelligence", "TPAMI"),
    ("international conference on pattern recognition", "ICPR"),
)
_ACRONYM = re.compile(r"\(([A-Z][A-Za-z]{1,9})(?:['’]\d\d)?\)|\b([A-Z]{3,8})\s+(?:19|20)\d\d\b")
_MAX_VENUE = 24


def short_venue(paper: PaperInfo) -> str:
    """The paper's venue as a method note shows it (beside the year): its `venue_short`
    property when it has one, without a year that repeats the paper's ("ICLR 2015" → "ICLR"),
    else a known acronym (`2017 IEEE International Conference on Computer Vision (ICCV)`
    → `ICCV`), else the venue cut short."""
    if paper.venue_short:
        if paper.year is not None:
            return paper.venue_short.removesuffix(f" {paper.year}")
        return paper.venue_short
    return abbreviate_venue(paper.venue)


def known_venue(venue: str) -> str | None:
    """The acronym of a well-known venue named in full ("… Conference on Pattern
    Recognition" → "ICPR"), or None."""
    lowered = venue.casefold()
    return next((acronym for words, acronym in _VENUES if words in lowered), None)


def abbreviate_venue(venue: str) -> str:
    match = _ACRONYM.search(venue)
    if match:
        return match.group(1) or match.group(2)
    lowered = venue.casefold()
    for words, acronym in _VENUES:
        if words in lowered:
            return acronym
    if len(venue) <= _MAX_VENUE:
        return venue
    return venue[: _MAX_VENUE - 1].rstrip(" ,.;:–-") + "…"


@dataclass(frozen=True)
class MethodNoteInfo:
    """What a method note itself says: its stable id, where it is, the methods the user
    declared it extends (`extends:` the bridge did not write) and its `aliases`."""

    note_id: str  # `method:<name casefolded>`, kept in the note's `method_id` property
    path: str
    declared: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    etag: str | None = field(default=None, compare=False)  # when its facts were read

    @property
    def stem(self) -> str:
        return self.path.rsplit("/", 1)[-1].removesuffix(".md")

    @property
    def key(self) -> str:
        return self.note_id.removeprefix("method:")


@dataclass
class Method:
    name: str
    proposed_in: list[PaperInfo] = field(default_factory=list)
    extended_by: list[PaperInfo] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)  # casefolded names this method extends
    children: set[str] = field(default_factory=set)
    # parent key → the papers that made the step (propose this method, extend the parent);
    # an empty list: the step is declared in this method's own note
    steps: dict[str, list[PaperInfo]] = field(default_factory=dict)
    aliases: set[str] = field(default_factory=set)
    stem: str = ""  # its note's name (`Soft-NMS`, or `X (method)` beside a paper note X)
    path: str = ""  # where its note is, when it has one (moved, or made by hand in a subfolder)
    declared: set[str] = field(default_factory=set)  # parent keys from its own note

    @property
    def key(self) -> str:
        return self.name.casefold()

    @property
    def year(self) -> int | None:
        """When it was proposed: the earliest year of a paper proposing it."""
        years = [p.year for p in self.proposed_in if p.year]
        return min(years) if years else None


class Aliases:
    """Method names as written (an alias, any case) → the method's own name."""

    def __init__(self, pairs: Mapping[str, str] | None = None) -> None:
        self._names: dict[str, str] = {}
        self._written: dict[str, str] = {}  # casefolded alias → as first written
        for alias, name in (pairs or {}).items():
            self.add(alias, name)

    def add(self, alias: str, name: str) -> None:
        alias, name = " ".join(alias.split()), " ".join(name.split())
        if alias and name and alias.casefold() != name.casefold():
            self._names.setdefault(alias.casefold(), self.resolve(name))
            self._written.setdefault(alias.casefold(), alias)

    def resolve(self, name: str) -> str:
        seen: set[str] = set()
        while name.casefold() in self._names and name.casefold() not in seen:
            seen.add(name.casefold())
            name = self._names[name.casefold()]
        return name

    def of(self, name: str) -> list[str]:
        """Every alias that resolves to `name`, as written."""
        key = name.casefold()
        return [self._written[a] for a in self._names if self.resolve(a).casefold() == key]

    def items(self) -> list[tuple[str, str]]:
        return sorted(self._names.items())


@dataclass
class MethodGraph:
    methods: dict[str, Method] = field(default_factory=dict)  # casefolded name → Method
    problems: list[str] = field(default_factory=list)
    aliases: Aliases = field(default_factory=Aliases)

    def get(self, name: str) -> Method | None:
        return self.methods.get(self.aliases.resolve(name).casefold())

    def _method(self, name: str) -> Method:
        name = self.aliases.resolve(name)
        return self.methods.setdefault(name.casefold(), Method(name))

    @classmethod
    def build(
        cls,
        papers: list[PaperInfo],
        notes: Iterable[MethodNoteInfo] = (),
        aliases: Mapping[str, str] | None = None,
    ) -> MethodGraph:
        """Edges from the papers (a paper proposing X and extending Y: X extends Y) and from
        the method notes (`extends:` the user declared there); names through `aliases`
        (`[lineage.aliases]` and the notes' own `aliases`), ignoring case."""
        notes = list(notes)
        proposed = {name.casefold() for paper in papers for name in paper.proposes}
        graph = cls(aliases=_all_aliases(notes, aliases, proposed))
        for paper in sorted(papers, key=_paper_order):
            for name in paper.proposes:
                graph._method(name).proposed_in.append(paper)
            for name in paper.extends:
                graph._method(name).extended_by.append(paper)
            for child in paper.proposes:
                for parent in paper.extends:
                    graph._edge(child, parent, paper, paper.path)
        for note in sorted(notes, key=lambda n: n.note_id):
            child = graph.methods.get(note.key) or graph._method(_note_name(note, exact=True))
            for parent in note.declared:
                graph._edge(child.name, parent, None, note.path)
                graph._method(child.name).declared.add(graph.aliases.resolve(parent).casefold())
        for method in graph.methods.values():
            method.aliases = {a for a in graph.aliases.of(method.name)}
        graph._report_unproposed()
        graph._report_cycles()
        return graph

    def _edge(self, child: str, parent: str, paper: PaperInfo | None, where: str) -> None:
        node, other = self._method(child), self._method(parent)
        if node.key == other.key:
            self.problems.append(f"self-loop: {where} says {node.name} extends itself")
            return
        node.parents.add(other.key)
        other.children.add(node.key)
        papers = node.steps.setdefault(other.key, [])
        if paper is not None and paper not in papers:
            papers.append(paper)

    def _report_unproposed(self) -> None:
        for method in self.methods.values():
            if not method.proposed_in and not method.declared:
                self.problems.append(
                    f"unknown method: no paper in the library proposes {method.name!r}"
                    " (its note lists what extends it)"
                )

    def _report_cycles(self) -> None:
        """Each cycle once, as `A → B → A` (a lineage should be a DAG)."""
        seen_cycles: set[frozenset[str]] = set()
        state: dict[str, int] = {}
        stack: list[str] = []

        def visit(node: str) -> None:
            state[node] = 1
            stack.append(node)
            for parent in sorted(self.methods[node].parents):
                if state.get(parent) == 1:
                    cycle = stack[stack.index(parent) :] + [parent]
                    if frozenset(cycle) not in seen_cycles:
                        seen_cycles.add(frozenset(cycle))
                        names = " → ".join(self.methods[n].name for n in cycle)
                        self.problems.append(f"cycle in lineage: {names} (each extends the next)")
                elif parent not in state:
                    visit(parent)
            stack.pop()
            state[node] = 2

        for node in sorted(self.methods):
            if node not in state:
                visit(node)

    def stem(self, key: str) -> str:
        """The note name of the method `key` (casefolded name)."""
        method = self.methods[key]
        return method.stem or method_stem(method.name)

    def ancestors(self, name: str, depth: int) -> list[tuple[str, str]]:
        """(child, parent) edges up to `depth` generations above `name`."""
        return self._walk(name, depth, lambda m: m.parents, upward=True)

    def descendants(self, name: str, depth: int) -> list[tuple[str, str]]:
        return self._walk(name, depth, lambda m: m.children, upward=False)

    def _walk(self, name: str, depth: int, step, upward: bool) -> list[tuple[str, str]]:
        edges: list[tuple[str, str]] = []
        start = self.aliases.resolve(name).casefold()
        frontier, seen = [start], {start}
        for _ in range(depth):
            nxt = []
            for node in frontier:
                for other in sorted(step(self.methods[node])):
                    edge = (node, other) if upward else (other, node)
                    if edge not in edges:
                        edges.append(edge)
                    if other not in seen:
                        seen.add(other)
                        nxt.append(other)
            frontier = nxt
        return edges

    def component(self, key: str) -> list[str]:
        """Every method joined to `key` by extends edges either way (its whole lineage)."""
        seen, todo = {key}, [key]
        while todo:
            method = self.methods[todo.pop()]
            for other in sorted(method.parents | method.children):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        return sorted(seen, key=lambda k: self.order(k))

    def order(self, key: str) -> tuple:
        """Chronological: the year it was proposed, then its name."""
        method = self.methods[key]
        return (method.year or 9999, method.name.casefold())


def _note_name(note: MethodNoteInfo, *, exact: bool = False) -> str:
    """The method name a note's file name says; `exact`: the name of its method (the file
    name unless the note was renamed, then its stable id)."""
    name = note.stem.removesuffix(METHOD_SUFFIX)
    return note.key if exact and name.casefold() != note.key else name


def _all_aliases(
    notes: list[MethodNoteInfo], config: Mapping[str, str] | None, proposed: set[str]
) -> Aliases:
    """`[lineage.aliases]` first, then each method note's own `aliases` and its file name
    (a renamed note: links to its new name mean the same method). A name a paper proposes
    (`proposed`, casefolded) is never taken as another method's alias from a note: an
    `aliases: [NMS]` in Soft-NMS's note must not fold NMS into Soft-NMS."""
    aliases = Aliases(config)
    for note in notes:
        name = aliases.resolve(note.key)
        for alias in (*note.aliases, _note_name(note)):
            if alias.casefold() not in proposed or alias.casefold() == note.key:
                aliases.add(alias, name)
    return aliases


def _paper_order(paper: PaperInfo) -> tuple:
    return (paper.year or 9999, paper.title.casefold(), paper.path)


METHOD_SUFFIX = " (method)"  # a method note's name beside a paper note of the same name


def mermaid(graph: MethodGraph, name: str, depth: int) -> str:
    """A Mermaid `flowchart LR` of the method's ancestors and descendants (parent --> child).

    Each node's label is its note's name and the node has the `internal-link` class, so in
    Obsidian a click opens the note."""
    key = graph.aliases.resolve(name).casefold()
    edges = graph.ancestors(name, depth) + graph.descendants(name, depth)
    nodes = [key] + sorted({n for edge in edges for n in edge} - {key}, key=graph.order)
    ids = {node: f"m{i}" for i, node in enumerate(nodes)}
    lines = ["```mermaid", "flowchart LR"]
    for node in nodes:
        label = neutralise.mermaid_label(graph.stem(node))
        lines.append(f'    {ids[node]}["{label}"]')
    for child, parent in sorted(set(edges), key=lambda e: (ids[e[1]], ids[e[0]])):
        lines.append(f"    {ids[parent]} --> {ids[child]}")
    lines.append(f"    class {','.join(ids[n] for n in nodes)} internal-link")
    lines.append(f"    style {ids[key]} stroke-width:3px")
    lines.append("```")
    return "\n".join(lines)
