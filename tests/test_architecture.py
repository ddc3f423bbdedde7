"""The shape DEVELOPERS.md asks of `bridge/`, checked on the source itself (with `ast`).

- No import cycle among bridge's modules, counting imports inside functions as well as at the
  top: a cycle hidden in a function still ties the modules together (and only works by the
  order things happen to be imported in). Imports under `if TYPE_CHECKING:` never run and are
  not counted.
- No module over `MAX_MODULE_LINES` lines, no function over `MAX_FUNCTION_LINES` lines.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

BRIDGE = Path(__file__).resolve().parent.parent / "bridge"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 60


def module_name(path: Path, root: Path = BRIDGE) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = BRIDGE) -> dict[str, Path]:
    """Module name → file of every module in the package `root`."""
    return {module_name(path, root): path for path in sorted(root.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def _base(name: str, path: Path, node: ast.ImportFrom) -> str:
    """The module an `ImportFrom` names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join(package + ([node.module] if node.module else []))


def import_graph(root: Path = BRIDGE) -> dict[str, set[str]]:
    """bridge module → the bridge modules it imports. `from package import submodule` points
    at the submodule; `from module import name` at the module."""
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _base(name, path, node)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            graph[name].update(t for t in targets if t in known and t != name)
    return graph


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm): the
    modules of each import each other, through one cycle or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle path (first module repeated at the end) per tangle."""
    return [_cycle_path(graph, component) for component in tangles(graph)]


def _cycle_path(graph: dict[str, set[str]], component: set[str]) -> list[str]:
    """A shortest path from the component's first module back to itself (breadth-first)."""
    start = min(component)
    came_from: dict[str, str] = {}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for target in sorted(graph[node] & component):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if target not in came_from:
                came_from[target] = node
                todo.append(target)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def functions(tree: ast.AST, prefix: str) -> Iterator[tuple[str, ast.AST]]:
    """(qualified name, node) of every function and method, nested ones included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}.{node.name}"
            if not isinstance(node, ast.ClassDef):
                yield name, node
            yield from functions(node, name)
        else:
            yield from functions(node, prefix)


def test_no_import_cycles_in_bridge() -> None:
    graph = import_graph()
    found = [frozenset(component) for component in tangles(graph)]
    new = [_cycle_path(graph, set(c)) for c in found]
    assert not new, "import cycles in bridge/:\n" + "\n".join(" → ".join(p) for p in new)


def test_the_cycle_finder_finds_cycles_and_names_their_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_graph_sees_function_level_and_relative_imports(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "a.py": "import os\n\ndef late():\n    from pkg.sub import b\n",
        "sub/__init__.py": "from . import b\n",
        "sub/b.py": "from ..c import thing\nfrom pkg import a as _a\n",
        "c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n",
    }
    for name, text in files.items():
        (package / name).write_text(text, encoding="utf-8")
    graph = import_graph(package)
    assert graph == {
        "pkg": set(),
        "pkg.a": {"pkg.sub.b"},  # inside a function
        "pkg.sub": {"pkg.sub.b"},  # `from package import submodule`
        "pkg.sub.b": {"pkg.c", "pkg.a"},  # relative, and `from pkg import module`
        "pkg.c": set(),  # under TYPE_CHECKING: never runs
    }
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.a"]]
    # and in bridge itself: the sqlite package's modules import each other as
    # `from bridge.sources.sqlite import queries`; doctor imports the API source in a function
    bridge = import_graph()
    assert "bridge.sources.sqlite.queries" in bridge["bridge.sources.sqlite.stream"]
    assert "bridge.sources.api" in bridge["bridge.doctor"]


def test_no_module_is_over_the_limit() -> None:
    over = {}
    for path in sorted(BRIDGE.rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        relative = path.relative_to(BRIDGE.parent).as_posix()
        if lines > MAX_MODULE_LINES:
            over[relative] = lines
    assert not over, f"modules over {MAX_MODULE_LINES} lines (split them): {over}"


def test_no_function_is_over_the_limit() -> None:
    over = {}
    for name, path in modules().items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for qualified, node in functions(tree, name):
            lines = node.end_lineno - node.lineno + 1  # type: ignore[attr-defined]
            if lines > MAX_FUNCTION_LINES:
                over[qualified] = lines
    assert not over, f"functions over {MAX_FUNCTION_LINES} lines (split them): {over}"
