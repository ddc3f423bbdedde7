"""Terminal renderings (rich) of query results; no logic, only layout."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


ProgressFactory = Callable[..., Callable[[int], None]]


@contextmanager
def progress_bars(enabled: bool = True) -> Iterator[ProgressFactory | None]:
    """Rich progress bars on stderr, only when a person watches a terminal (else None):
    `bars(total, what, min_total=0)` starts one and gives its advance function; a bar of
    `min_total` steps or fewer stays hidden (a short sync shows none)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:

        def start(total: int, what: str, min_total: int = 0) -> Callable[[int], None]:
            task = bar.add_task(what, total=total, visible=total > min_total)
            return lambda n: bar.advance(task, n)

        yield start
