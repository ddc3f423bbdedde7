"""Terminal renderings (rich) of query results; no logic, only layout."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.tree import Tree


def _paper_label(paper: dict[str, Any]) -> str:
    year = f" ({paper['year']})" if paper.get("year") else ""
    progress = f" · pass {paper['pass']}" if paper.get("pass") not in (None, "") else ""
    note, title = escape(str(paper["note"])), escape(str(paper["title"]))
    return f"[dim]{note}[/dim] {title}{escape(year + progress)}"


def print_lineage(info: dict[str, Any]) -> None:
    console = Console()
    root = Tree(f"[bold]{escape(str(info['method']))}[/bold]")
    proposed = root.add("proposed in")
    for paper in info["proposed_in"] or []:
        proposed.add(_paper_label(paper))
    if not info["proposed_in"]:
        proposed.add("[dim]no paper in the library[/dim]")
    if info["extends"]:
        _add_methods(root.add("extends ↑"), info["extends"])
    if info["extended_by"]:
        papers = root.add("extended by (papers)")
        for paper in info["extended_by"]:
            papers.add(_paper_label(paper))
    if info["descendants"]:
        _add_methods(root.add("descendants ↓"), info["descendants"])
    console.print(root)
    for problem in info.get("problems", []):
        console.print(f"[yellow]note:[/yellow] {escape(str(problem))}")


def _add_methods(branch: Tree, nodes: list[dict[str, Any]]) -> None:
    for node in nodes:
        child = branch.add(f"[bold]{escape(str(node['method']))}[/bold]")
        _add_methods(child, node["children"])
