"""The shape of ``reference_runtime``: its modules import each other without a
cycle, and none imports another module's private name.

An import inside a function counts as an edge too: such an import only hides a
cycle until the day it moves to the top of its module. ``from . import x``
inside a function is followed like any other import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "reference_runtime"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(modules: dict[str, Path]) -> dict[str, list[tuple[str, str | None, int]]]:
    """module -> [(imported module, imported name or None, line)] within the package."""
    graph: dict[str, list[tuple[str, str | None, int]]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, [])
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(PACKAGE):
                        edges.append((alias.name, None, node.lineno))
            elif isinstance(node, ast.ImportFrom):
                target = _resolve(name, path.name == "__init__.py", node)
                if not target.startswith(PACKAGE):
                    continue
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:  # `from . import runtime`: an edge to the module itself
                        edges.append((sub, None, node.lineno))
                    else:
                        edges.append((target, alias.name, node.lineno))
    return graph


def _owner(target: str, modules: dict[str, Path]) -> str:
    """The module an import lands in (a package import lands in its __init__)."""
    while target and target not in modules:
        target = target.rpartition(".")[0]
    return target


def find_cycles(graph: dict[str, list[tuple[str, str | None, int]]], modules: dict[str, Path]) -> list[list[str]]:
    """Every strongly connected component of more than one module (or a module importing itself)."""
    adjacency = {m: sorted({_owner(t, modules) for t, _, _ in edges} - {""}) for m, edges in graph.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:  # Tarjan's algorithm; the package is small enough to recurse
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in adjacency.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in adjacency.get(v, ()):
                components.append(sorted(component))

    for v in sorted(adjacency):
        if v not in index:
            visit(v)
    return components


def _package_parents(module: str) -> set[str]:
    parts = module.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_no_import_cycle():
    modules = _modules()
    graph = _imports(modules)
    # A package's __init__ is imported before each of its modules: it is not part of a cycle
    # its module closes by importing the package (Python resolves `from . import x` then).
    for name in graph:
        graph[name] = [e for e in graph[name] if _owner(e[0], modules) not in _package_parents(name)]
    cycles = find_cycles(graph, modules)
    assert not cycles, "import cycles in reference_runtime (function-level imports count):\n" + "\n".join(
        " <-> ".join(c) for c in cycles)


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _private_attribute_uses(name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """``volumes._valid_name(...)`` where ``volumes`` is another module of the package."""
    tree = ast.parse(path.read_text(), str(path))
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = _resolve(name, path.name == "__init__.py", node)
            for alias in node.names:
                if f"{target}.{alias.name}" in modules:
                    bound[alias.asname or alias.name] = f"{target}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in modules and alias.asname:
                    bound[alias.asname] = alias.name
    return [f"{path.relative_to(ROOT.parent)}:{node.lineno}: {node.value.id}.{node.attr} ({bound[node.value.id]})"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound
            and _private(node.attr) and bound[node.value.id] != name]


def test_no_private_name_imported_from_another_module():
    modules = _modules()
    offences = []
    for name, edges in _imports(modules).items():
        for target, imported, line in edges:
            if imported and _private(imported):
                offences.append(f"{modules[name].relative_to(ROOT.parent)}:{line}: {imported} from {target}")
        offences += _private_attribute_uses(name, modules[name], modules)
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)


@pytest.mark.parametrize("source, expected", [
    ({"a": ["b"], "b": ["a"], "c": ["a"]}, [["a", "b"]]),
    ({"a": ["b"], "b": ["c"], "c": []}, []),
    ({"a": ["a"]}, [["a"]]),
])
def test_find_cycles_finds_what_it_should(source, expected):
    modules = {m: Path(m) for m in source}
    graph = {m: [(t, None, 1) for t in targets] for m, targets in source.items()}
    assert find_cycles(graph, modules) == expected
