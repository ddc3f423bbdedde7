"""bridge/ has no import cycle — counting the imports inside functions (made lazily to dodge
one) and under `TYPE_CHECKING` too: basic types at the bottom, no module importing upward."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import bridge

ROOT = Path(bridge.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The bridge modules `path` imports anywhere in its body (a package's own submodules
    imported by its `__init__` aside: Python imports a package before its submodules)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not target.startswith(name + "."):
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {_module_name(path): path for path in ROOT.rglob("*.py")}
    known = set(paths)
    graph = {name: _imports(path, name, known) for name, path in paths.items()}
    # `from bridge.x import y` names a module or a name in it: keep the module, not both
    for name, targets in graph.items():
        graph[name] = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
    return graph


def test_the_graph_sees_lazy_imports() -> None:
    """The check below would be hollow if imports inside functions were missed."""
    graph = import_graph()
    assert "bridge.sync" in graph["bridge.daemon.loop"]  # imported inside `Daemon._sync`
    assert "bridge.reading" in graph["bridge.state.papers"]  # inside `_derived`


def test_bridge_has_no_import_cycle() -> None:
    graph = import_graph()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        cycle = " → ".join(reversed(exc.args[1]))  # graphlib lists each module's importer next
        raise AssertionError(f"import cycle: {cycle} (→: imports)") from None
