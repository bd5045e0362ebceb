"""No run-time import cycle among the project's modules.

Why: two modules that import each other at run time work only in one import order (the other order meets a
half-initialised module), and they are one unit a reader cannot take apart. Each pair gets a direction, or
the shared part moves down into a third module.

The graph is read from the source (``ast``), not from ``sys.modules``: every ``import`` and ``from ... import``
of a project module counts, at module level or inside a function (both run), except those under
``if TYPE_CHECKING:`` (never run). ``from package import name`` is an edge to ``package.name`` where that is a
module, else to ``package``; the implicit import of a module's parent packages is not an edge (Python runs a
package's ``__init__`` before its submodules whatever the graph). The cycle search is the standard library's
``graphlib.TopologicalSorter``, which names one cycle when there is any.
"""
from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {".venv", "venv", "site", "build", "dist", "node_modules", "__pycache__", "mutants"}


def project_modules(root: Path) -> dict[str, Path]:
    """{dotted module name: file} of every Python file under ``root`` (hidden and build folders left out)."""
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root).parts
        if any(part.startswith(".") or part in SKIP_DIRS for part in parts[:-1]):
            continue
        names = list(parts[:-1]) + ([] if path.name == "__init__.py" else [path.stem])
        if names and all(name.isidentifier() for name in names):
            modules[".".join(names)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _run_time_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in ``tree`` except those in the body of an ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """{module: project modules it imports at run time} for the project under ``root``."""
    modules = project_modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _run_time_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)] if package else []
                    base = ".".join([*anchor, *([base] if base else [])])
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (its modules, the first repeated at the end), or None where there is none."""
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        return list(err.args[1])
    return None


def test_the_project_has_no_run_time_import_cycle():
    graph = import_graph(ROOT)
    assert len(graph) > 100, f"only {len(graph)} modules found under {ROOT}: the scan is not reading the project"
    assert "interp.simulation.fastsim.road" in graph["interp.simulation.fastsim"]  # the scan sees package imports
    cycle = find_cycle(graph)
    assert cycle is None, f"run-time import cycle: {' -> '.join(cycle)}"


def _plant(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.mark.parametrize("a_imports_b", [
    "from pkg import b\n",
    "import pkg.b\n",
    "from . import b\n",
    "from .b import thing\n",
    "def late():\n    from pkg.b import thing\n    return thing\n",  # a function-level import runs too
])
def test_a_planted_cycle_is_found(tmp_path, a_imports_b):
    root = _plant(tmp_path, {"pkg/__init__.py": "", "pkg/a.py": a_imports_b,
                             "pkg/b.py": "from pkg.a import late\nthing = 1\n", "pkg/c.py": "import pkg.a\n"})
    cycle = find_cycle(import_graph(root))
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.b"}


def test_a_type_checking_import_and_a_one_way_pair_are_no_cycle(tmp_path):
    """The control: the same pair with one direction under ``if TYPE_CHECKING:`` (or ``typing.TYPE_CHECKING``),
    or with the shared part moved down into a third module, passes."""
    root = _plant(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.b import thing\nx = 1\n",
        "pkg/b.py": "from pkg.a import x\nthing = 1\n",
        "pkg/c.py": "import typing\nif typing.TYPE_CHECKING:\n    import pkg.d\nelse:\n    import pkg.shared\n",
        "pkg/d.py": "import pkg.c\nimport pkg.shared\n",
        "pkg/shared.py": "y = 2\n",
    })
    graph = import_graph(root)
    assert graph["pkg.b"] == {"pkg.a"} and graph["pkg.c"] == {"pkg.shared"}  # the else branch does run
    assert find_cycle(graph) is None
