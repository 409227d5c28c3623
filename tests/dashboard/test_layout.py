"""The dashboard's modules import one another one way only, and each stays readable in one go."""

from __future__ import annotations

import ast
from pathlib import Path

import dashboard

ROOT = Path(dashboard.__file__).parent


def _imports(path: Path) -> set[str]:
    """The dashboard modules ``path`` imports, TYPE_CHECKING blocks included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "dashboard":
                found |= {f"dashboard.{alias.name}" for alias in node.names}
            elif node.module.startswith("dashboard."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("dashboard.")}
    return found


def test_dashboard_modules_import_each_other_without_a_cycle():
    graph = {f"dashboard.{p.stem}": _imports(p) for p in ROOT.glob("*.py")}

    def visit(module: str, path: tuple[str, ...]) -> None:
        assert module not in path, " -> ".join((*path, module))
        for imported in graph.get(module, ()):
            visit(imported, (*path, module))

    for module in graph:
        visit(module, ())


def test_every_dashboard_module_is_under_600_lines():
    for path in ROOT.rglob("*.py"):
        assert len(path.read_text().splitlines()) < 600, path
