"""Layering: no import cycles among policyd modules (type-only imports included); the engine imports no grpc or YAML."""

from __future__ import annotations

import ast
from pathlib import Path

import policyd

ROOT = Path(policyd.__file__).parent
GENERATED = ("policyd.v1.",)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, name: str) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is (functions, TYPE_CHECKING blocks)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        if name.startswith(GENERATED):
            continue
        targets = set()
        for imported in imports_of(path, name):
            # "from policyd.x import y" names module policyd.x.y when y is a module, else policyd.x
            target = imported if imported in modules else imported.rpartition(".")[0]
            if target in modules and target != name and not target.startswith(GENERATED):
                targets.add(target)
        edges[name] = targets
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
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
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_policyd_modules_import_each_other_without_cycles():
    edges = graph()
    # a package's __init__ re-exporting its submodules is not a cycle of the design
    for name in list(edges):
        edges[name] = {t for t in edges[name] if not name.startswith(t + ".")}
    assert cycles(edges) == []


def test_the_engine_imports_neither_grpc_nor_yaml_nor_the_config_loader():
    offenders = []
    for path in (ROOT / "engine").rglob("*.py"):
        for imported in imports_of(path, module_name(path)):
            if imported.split(".")[0] in ("grpc", "yaml") or imported.startswith("policyd.config.loader"):
                offenders.append(f"{module_name(path)} imports {imported}")
    assert offenders == []
