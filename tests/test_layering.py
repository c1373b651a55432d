"""The house's layering, read from the source: every import statement, those inside functions
included (``if TYPE_CHECKING:`` blocks are not imports at run time and are skipped).

- ``space/`` is the ground floor: it imports none of the other three packages;
- ``results/`` (run folder, Pareto, dashboards) imports only ``space/``;
- ``nas/`` (the engine) imports ``space/`` and ``results/``, never ``gridsearch/``;
- no module imports itself through others (no import cycle between modules).

A module's import of ``a.b.c`` is an edge to the module ``a.b.c`` it names (a package's
``__init__`` when the name is a package); ``from a.b import c`` is an edge to ``a.b.c`` when that
is a module, else to ``a.b``.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("space", "results", "nas", "gridsearch")
# package -> the project packages it may import (itself always)
ALLOWED = {
    "space": set(),
    "results": {"space"},
    "nas": {"space", "results"},
    "gridsearch": {"space", "results", "nas"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or \
        (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import/ImportFrom, at any depth, outside ``if TYPE_CHECKING:`` blocks."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    base = package.split(".")
    if node.level > 1:
        base = base[:len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _target(name: str) -> str | None:
    """The project module ``name`` refers to (the longest prefix that is one)."""
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in MODULES:
            return candidate
    return None


def imports_of(module: str) -> set[str]:
    path = MODULES[module]
    tree = ast.parse(path.read_text(), filename=str(path))
    out: set[str] = set()
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = _resolve(module, path, node)
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base
                     for a in node.names]
        for name in names:
            t = _target(name)
            if t is not None and t != module:
                out.add(t)
    return out


GRAPH = {m: imports_of(m) for m in MODULES}


def test_the_walker_sees_imports_inside_functions_and_relative_ones():
    # nas.backends.base opens a backend module by name; nas.search imports the engine at the
    # top; results.stage1_dashboard imports space.deploy inside a method.
    assert "space.deploy" in GRAPH["results.stage1_dashboard"]
    assert "nas.engine" in GRAPH["nas.search"]
    assert "results.store" in GRAPH["results.rundir"] or "space.io" in GRAPH["results.rundir"]


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_floors_below_it(package):
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items()
                 if m.split(".")[0] == package
                 for t in targets
                 if t.split(".")[0] not in ALLOWED[package] | {package})
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_between_modules(package):
    """Tarjan's strongly connected components over the whole graph; a component of more than
    one module (or a module importing itself) that touches ``package`` is a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    mine = [c for c in cycles if any(m.split(".")[0] == package for m in c)]
    assert not mine, "import cycles: " + "; ".join(" <-> ".join(c) for c in mine)


def test_a_cycle_would_be_caught(tmp_path):
    """The cycle finder on a made-up graph: a -> b -> c -> a is one component."""
    global GRAPH
    saved = GRAPH
    try:
        GRAPH = {"space.a": {"space.b"}, "space.b": {"space.c"}, "space.c": {"space.a"},
                 "space.d": set()}
        with pytest.raises(AssertionError, match="space.a <-> space.b <-> space.c"):
            test_no_import_cycle_between_modules("space")
    finally:
        GRAPH = saved
