"""The planner reads no file, no clock and no database: not itself, not through any module.

`bridge.planner` decides from the facts it is given; `bridge.plan` gathers them. This walks
the planner's import tree — every bridge module it imports, and every bridge module those
import, at run time (`if TYPE_CHECKING:` blocks are only read by type checkers) — and checks
each module's own imports against a short list of modules that compute without touching the
world. `os` is let in only where every use of it is in `PURE_OS` (`os.strerror`: the text for
an error number).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PLANNER = "bridge.planner"

# standard modules that read no file, clock, process or network state
PURE_STDLIB = frozenset({
    "__future__", "collections", "collections.abc", "dataclasses", "enum", "errno",
    "functools", "hashlib", "itertools", "json", "math", "re", "string", "typing",
    "unicodedata", "urllib.parse", "zlib",
})  # fmt: skip
# third-party parsers: text in, data out
PURE_LIBRARIES = frozenset({"yaml", "frontmatter"})
PURE_OS = frozenset({"strerror"})


def _file_of(module: str) -> Path | None:
    base = ROOT.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def _imported(node: ast.Import | ast.ImportFrom) -> list[tuple[str, str]]:
    """(module, name it is bound to) for each module an import statement brings in; for
    `from M import x`, the module `M.x` when that is a bridge module, else `M` (bound to "")."""
    if isinstance(node, ast.Import):
        return [(alias.name, alias.asname or alias.name.split(".")[0]) for alias in node.names]
    assert node.level == 0, "the bridge uses absolute imports"
    module = node.module or ""
    if module == "os":  # `from os import strerror`: only pure names
        return [("os" if alias.name in PURE_OS else f"os.{alias.name}", "") for alias in node.names]
    return [
        (f"{module}.{alias.name}" if _file_of(f"{module}.{alias.name}") else module, "")
        for alias in node.names
    ]


def _os_uses_are_pure(tree: ast.Module, bound: str) -> bool:
    """Every use of the name `bound` (the `os` module) is `os.<something in PURE_OS>`."""
    attributes = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute)]
    pure = {id(a.value) for a in attributes if a.attr in PURE_OS}
    names = [n for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == bound]
    return all(id(n) in pure for n in names)


def _pure(imported: str, bound: str, tree: ast.Module) -> bool:
    if imported in PURE_STDLIB or imported.split(".")[0] in PURE_LIBRARIES:
        return True
    return imported == "os" and (not bound or _os_uses_are_pure(tree, bound))


def impure_imports(start: str) -> tuple[set[str], list[str]]:
    """The bridge modules `start` imports (itself included), and every import among them
    that may touch the disk, the clock or the rest of the world ("module: what")."""
    seen: set[str] = set()
    todo = [start]
    problems: list[str] = []
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        path = _file_of(module)
        assert path is not None, f"no source for {module}"
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = module.split(".")[:-1]
        todo.extend(".".join(parents[: i + 1]) for i in range(len(parents)))  # packages
        for node in _runtime_imports(tree):
            for imported, bound in _imported(node):
                if imported == "bridge" or imported.startswith("bridge."):
                    todo.append(imported)
                elif not _pure(imported, bound, tree):
                    problems.append(f"{module}: {imported}")
    return seen, problems


def test_the_planner_imports_nothing_that_reads_the_disk_or_the_clock() -> None:
    modules, problems = impure_imports(PLANNER)
    assert not problems, f"the planner's import tree reaches the world: {problems}"
    # the walk went where the decisions are made (else it proves nothing)
    for needed in ("bridge.vault.merge", "bridge.vault.settle", "bridge.vault.etag",
                   "bridge.notestate", "bridge.vault.notefile", "bridge.errors"):  # fmt: skip
        assert needed in modules, f"{needed} not reached from {PLANNER}: {sorted(modules)}"
    for io_module in ("bridge.vault.fs", "bridge.statefolder", "bridge.state", "bridge.plan"):
        assert io_module not in modules


@pytest.mark.parametrize(
    ("module", "impure"),
    [
        ("bridge.plan", "bridge.plan: time"),  # the driver reads the clock
        ("bridge.vault.fs", "bridge.vault.fs: os"),
        ("bridge.state", "bridge.statefolder: os"),
        ("bridge.stamps", "bridge.stamps: datetime"),  # `iso()` reads the clock
        ("bridge.vault.render", "bridge.vault.render: pathlib"),  # loads templates
    ],
)
def test_the_check_finds_the_disk_and_the_clock_where_they_are(module: str, impure: str) -> None:
    assert impure in impure_imports(module)[1]


def test_the_state_db_hands_over_the_planner_s_note_state() -> None:
    """One `NoteState` class: the one the planner builds is the one the state DB reads."""
    from bridge import notestate, state

    assert state.NoteState is notestate.NoteState
    assert state.compress_text is notestate.compress_text
