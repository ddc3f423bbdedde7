"""`zob lineage METHOD --story`: the skeleton of a related-work section.

A chronological outline of the line that leads to METHOD and goes on from it: for each step
the problem, the paper and year, what it changed, and the limit the next step addressed —
taken from the method notes' own sections ("What problem it solves", "Key idea",
"Limitations / open problems") and, where those are empty, from the papers' pass notes
(pass 1 "Problem", pass 2 "Method pipeline", pass 3 "Future work the authors left"). Parts
nobody wrote yet are marked, with the note to read or fill in next.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from bridge.config import Config
from bridge.errors import NoteError
from bridge.lineage import MethodGraph, PaperInfo, short_venue
from bridge.queries import graph_and_notes, known_method
from bridge.vault import neutralise
from bridge.vault.fs import Vault
from bridge.vault.notefile import parse_note

# (part, method note headings, paper note heading or bullet) — English and Chinese templates
PARTS = (
    ("problem", ("What problem it solves", "解决什么问题"), ("**Problem:**", "**问题：**")),
    ("changed", ("Key idea", "核心思想"), ("Method pipeline", "方法流程")),
    (
        "limitation",
        ("Limitations / open problems", "局限 / 开放问题"),
        ("Future work the authors left", "作者留下的未来工作"),
    ),
)
LABELS = {"problem": "Problem", "changed": "What it changed", "limitation": "Its limit"}
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_REGION = re.compile(r"^%% zob:(?:begin|end) [\w-]+ %%$")


@dataclass(frozen=True)
class Part:
    text: str  # "" when nobody wrote it yet
    sources: tuple[str, ...]  # the note it came from (its name), or the notes to fill in
    empty: bool


def story(graph: MethodGraph, vault: Vault, name: str, method_paths: dict[str, str]) -> dict:
    """The outline as data: `steps` in chronological order, each with its method, papers
    and parts. `method_paths`: method key → its note's vault path."""
    method = graph.get(name)
    assert method is not None  # the caller looked it up
    keys = _line(graph, method.key)
    steps = []
    for number, key in enumerate(keys, 1):
        node = graph.methods[key]
        papers = node.proposed_in
        later = [graph.stem(k) for k in sorted(node.children & set(keys), key=graph.order)]
        steps.append({
            "step": number, "method": node.name, "note": graph.stem(key), "year": node.year,
            "papers": [_paper(p) for p in papers], "addressed_by": later,
            "focus": key == method.key,
            "parts": {
                part: _as_dict(_part(vault, method_paths.get(key), graph.stem(key), papers, i))
                for i, part in enumerate(LABELS)
            },
        })  # fmt: skip
    missing = sum(1 for s in steps for p in s["parts"].values() if p["empty"])
    return {"method": method.name, "steps": steps, "empty_parts": missing}


def _as_dict(part: Part) -> dict[str, Any]:
    return {"text": part.text, "sources": list(part.sources), "empty": part.empty}


def _line(graph: MethodGraph, key: str) -> list[str]:
    """Every ancestor, the method, every descendant: chronological, parents first."""
    found = {key}
    for step in ("parents", "children"):
        todo = [key]
        while todo:
            for other in getattr(graph.methods[todo.pop()], step):
                if other not in found:
                    found.add(other)
                    todo.append(other)
    ordered: list[str] = []

    def place(node: str, path: frozenset[str]) -> None:
        for parent in sorted(graph.methods[node].parents & found, key=graph.order):
            if parent not in ordered and parent not in path:
                place(parent, path | {node})
        if node not in ordered:
            ordered.append(node)

    for node in sorted(found, key=graph.order):
        place(node, frozenset())
    return ordered


def _paper(paper: PaperInfo) -> dict[str, Any]:
    return {
        "note": paper.stem, "path": paper.path, "title": paper.title, "year": paper.year,
        "venue": short_venue(paper), "citekey": paper.citekey, "pass": paper.reading_pass,
    }  # fmt: skip


def _part(vault: Vault, path: str | None, stem: str, papers: list[PaperInfo], index: int) -> Part:
    _, method_heads, paper_heads = PARTS[index]
    text = _section(_body(vault, path), method_heads) if path else ""
    if text:
        return Part(text, (stem,), False)
    for paper in papers:
        body = _body(vault, paper.path)
        found = _bullet(body, paper_heads) if index == 0 else _section(body, paper_heads)
        if found:
            return Part(found, (paper.stem,), False)
    return Part("", (stem, *(p.stem for p in papers)), True)


def _body(vault: Vault, path: str | None) -> str:
    if not path:
        return ""
    try:
        return parse_note(path, vault.read(path)).body
    except NoteError:
        return ""


def _section(body: str, headings: tuple[str, ...]) -> str:
    """The text under the first of `headings` (any level), to the next heading of the same
    or a higher level; regions, comments and template hints left out."""
    lines = body.splitlines()
    for i, line in enumerate(lines):
        match = _HEADING.match(line)
        if not match or match.group(2) not in headings:
            continue
        level, kept = len(match.group(1)), []
        for other in lines[i + 1 :]:
            head = _HEADING.match(other)
            if head and len(head.group(1)) <= level:
                break
            kept.append(other)
        return _clean(kept)
    return ""


def _bullet(body: str, labels: tuple[str, ...]) -> str:
    """The text after a `- **Problem:**` bullet (pass 1)."""
    for line in body.splitlines():
        stripped = line.strip().removeprefix("- ").strip()
        for label in labels:
            if stripped.startswith(label):
                return stripped[len(label) :].strip()
    return ""


def _clean(lines: list[str]) -> str:
    kept = [
        line
        for line in lines
        if not _REGION.match(line.strip())
        and not (line.startswith("*") and line.endswith("*") and not line.startswith("**"))
        and not (line.startswith("%%") and line.endswith("%%"))
    ]
    return "\n".join(kept).strip()


def print_story(config: Config, name: str, as_json: bool) -> None:
    """`zob lineage NAME --story [--json]`."""
    import click  # noqa: PLC0415 - the CLI's own dependency

    graph, paths, vault = graph_and_notes(config)
    known_method(graph, name)
    outline = story(graph, vault, name, paths)
    if as_json:
        click.echo(json.dumps(outline, ensure_ascii=False, indent=2))
    else:
        click.echo(story_markdown(outline), nl=False)


def story_markdown(outline: dict) -> str:
    """The outline as Markdown for a draft: `[[links]]` to the notes, citekeys as `[@key]`."""
    lines = [
        f"# Related work: {neutralise.inline(outline['method'])}",
        "",
        "*A chronological outline from your method notes and pass notes. Parts marked"
        " ✎ are still empty: write them in the notes named there.*",
    ]
    for step in outline["steps"]:
        lines += ["", _step_heading(step)]
        for part, label in LABELS.items():
            lines.append(_part_line(step, part, label))
    return "\n".join(lines) + "\n"


def _step_heading(step: dict) -> str:
    year = f" ({step['year']})" if step["year"] else ""
    cites = [
        f"[[{p['note']}]]" + (f" [@{p['citekey']}]" if p["citekey"] else "")
        + (f", {p['venue']}" if p["venue"] else "")
        for p in step["papers"]
    ]  # fmt: skip
    papers = f" — {'; '.join(cites)}" if cites else " — *no paper in the library proposes it*"
    mark = " ◀" if step["focus"] else ""
    return f"## {step['step']}. [[{step['note']}]]{year}{papers}{mark}"


def _part_line(step: dict, part: str, label: str) -> str:
    found = step["parts"][part]
    if part == "limitation" and step["addressed_by"]:
        label += " (addressed by " + ", ".join(f"[[{n}]]" for n in step["addressed_by"]) + ")"
    if found["empty"]:
        notes = " or ".join(f"[[{n}]]" for n in found["sources"])
        return f"- **{label}:** ✎ *empty — write it in {notes}*"
    text = found["text"].replace("\n", "\n  ")
    return f"- **{label}:** {text} *(from [[{found['sources'][0]}]])*"
