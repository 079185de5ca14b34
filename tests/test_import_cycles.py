"""No import cycle among dlgit's modules, counting every import: top-level, lazy (inside a function)
and type-only (under `if TYPE_CHECKING:`). A cycle hidden by a lazy or type-only import is still
a seam that is not clean."""

from __future__ import annotations

import ast
from pathlib import Path

import dlgit

PACKAGE = Path(dlgit.__file__).parent


def _module_name(path: Path) -> str:
    parts = ["dlgit", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in PACKAGE.rglob("*.py")}


def _imports(name: str, source: str, is_package: bool, known: set[str]) -> set[str]:
    """The dlgit modules `name` imports anywhere in its source (a package's own name when a name
    imported from it is no module of its own)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
    return {module for module in found if module in known and module != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path.read_text(encoding="utf-8"), path.name == "__init__.py", set(modules))
            for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module: each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

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
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_lazy_and_type_only_imports() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from dlgit.config import Settings\n" \
             "def f():\n    from dlgit.flows import runner\n"
    assert _imports("dlgit.probe", source, False, set(_modules())) == {"dlgit.config", "dlgit.flows.runner"}


def test_no_import_cycle_in_dlgit() -> None:
    cycles = _cycles(_graph())
    assert cycles == [], "import cycles (lazy and type-only imports included): " + "; ".join(" <-> ".join(c) for c in cycles)
