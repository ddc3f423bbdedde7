"""Method lineage: which paper proposes which method, and which methods extend which.

Edges come from Zotero (tags `proposes:X` / `extends:Y`, Extra lines `proposes: X` /
`extends: Y; Z`) and from the user's own `proposes` / `extends` properties in paper notes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bridge.model import Item
from bridge.vault import neutralise

_SPLIT = re.compile(r"[;,]")


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
        )  # fmt: skip


@dataclass
class Method:
    name: str
    proposed_in: list[PaperInfo] = field(default_factory=list)
    extended_by: list[PaperInfo] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)  # casefolded names this method extends
    children: set[str] = field(default_factory=set)


@dataclass
class MethodGraph:
    methods: dict[str, Method] = field(default_factory=dict)  # casefolded name → Method
    problems: list[str] = field(default_factory=list)

    def get(self, name: str) -> Method | None:
        return self.methods.get(name.casefold())

    def _method(self, name: str) -> Method:
        return self.methods.setdefault(name.casefold(), Method(name))

    @classmethod
    def build(cls, papers: list[PaperInfo]) -> MethodGraph:
        graph = cls()
        for paper in sorted(papers, key=_paper_order):
            for name in paper.proposes:
                graph._method(name).proposed_in.append(paper)
            for name in paper.extends:
                graph._method(name).extended_by.append(paper)
            for child in paper.proposes:
                for parent in paper.extends:
                    graph._edge(child, parent, paper)
        graph._report_unproposed()
        graph._report_cycles()
        return graph

    def _edge(self, child: str, parent: str, paper: PaperInfo) -> None:
        if child.casefold() == parent.casefold():
            self.problems.append(f"self-loop: {paper.path} says {child} extends itself")
            return
        self._method(child).parents.add(parent.casefold())
        self._method(parent).children.add(child.casefold())

    def _report_unproposed(self) -> None:
        for method in self.methods.values():
            if not method.proposed_in:
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

    def ancestors(self, name: str, depth: int) -> list[tuple[str, str]]:
        """(child, parent) edges up to `depth` generations above `name`."""
        return self._walk(name, depth, lambda m: m.parents, upward=True)

    def descendants(self, name: str, depth: int) -> list[tuple[str, str]]:
        return self._walk(name, depth, lambda m: m.children, upward=False)

    def _walk(self, name: str, depth: int, step, upward: bool) -> list[tuple[str, str]]:
        edges: list[tuple[str, str]] = []
        frontier, seen = [name.casefold()], {name.casefold()}
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


def _paper_order(paper: PaperInfo) -> tuple:
    return (paper.year or 9999, paper.title.casefold(), paper.path)


def mermaid(graph: MethodGraph, name: str, depth: int) -> str:
    """A Mermaid `flowchart LR` of the method's ancestors and descendants (parent --> child)."""
    key = name.casefold()
    edges = graph.ancestors(name, depth) + graph.descendants(name, depth)
    nodes = [key] + sorted({n for edge in edges for n in edge} - {key})
    ids = {node: f"m{i}" for i, node in enumerate(nodes)}
    lines = ["```mermaid", "flowchart LR"]
    for node in nodes:
        label = neutralise.mermaid_label(graph.methods[node].name)
        lines.append(f'    {ids[node]}["{label}"]')
    for child, parent in sorted(set(edges), key=lambda e: (ids[e[1]], ids[e[0]])):
        lines.append(f"    {ids[parent]} --> {ids[child]}")
    lines.append(f"    style {ids[key]} stroke-width:3px")
    lines.append("```")
    return "\n".join(lines)
