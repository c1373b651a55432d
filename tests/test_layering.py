"""The house's layering, read from the source: every import statement, those inside functions
and under ``if TYPE_CHECKING:`` included (a cycle a type checker walks is still two modules
that need each other), and the imports made by name:

- a module that imports ``importlib`` and holds a string naming a project module by its dotted
  path (``nas.cli``'s command table) imports that module;
- a lazy package face (:func:`space.lazy.lazy_exports`) imports each module its
  ``exports("module", ...)`` rows name.

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
    """Every Import/ImportFrom, at any depth, ``if TYPE_CHECKING:`` blocks included."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node


def _by_name(module: str, tree: ast.AST) -> set[str]:
    """The modules ``module`` imports by name: the project modules its strings name when it
    imports importlib, and the rows of a lazy package face's ``exports(...)`` table."""
    uses_importlib = any(
        isinstance(n, ast.Import) and any(a.name.split(".")[0] == "importlib" for a in n.names)
        or isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "importlib"
        for n in ast.walk(tree))
    out: set[str] = set()
    for n in ast.walk(tree):
        if uses_importlib and isinstance(n, ast.Constant) and isinstance(n.value, str) \
                and "." in n.value and n.value in MODULES:  # a module, not a package's name
            out.add(n.value)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "exports" \
                and n.args and isinstance(n.args[0], ast.Constant):
            out.add(f"{module}.{n.args[0].value}")
    return out


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
    return out | {t for t in _by_name(module, tree) if t != module}


GRAPH = {m: imports_of(m) for m in MODULES}

# Cycles known and owned by an open issue, each with the reason; nothing else may cycle, and an
# entry that no longer cycles fails test_known_cycles_still_exist (so it is removed when fixed).
KNOWN_CYCLES: dict[frozenset[str], str] = {}


def test_the_walker_sees_imports_inside_functions_and_relative_ones():
    # nas.search imports the engine at the top; results.stage1.specs imports space.deploy
    # inside a method.
    assert "space.deploy" in GRAPH["results.stage1.specs"]
    assert "nas.engine" in GRAPH["nas.search"]
    assert "results.store" in GRAPH["results.rundir"] or "space.io" in GRAPH["results.rundir"]


def test_the_walker_sees_type_checking_and_imports_by_name():
    # gridsearch.plan imports its config only for the type checker; nas.cli imports its
    # commands by name through importlib; the space package's face imports space.builder lazily
    assert "gridsearch.config" in GRAPH["gridsearch.plan"]
    assert "nas.commands.search" in GRAPH["nas.cli"]
    assert "space.builder" in GRAPH["space"]


def test_the_engine_names_no_backend():
    """The backends import the engine (its Executor protocol, BackendConfig and backend table)
    and register into it; no engine module imports a backend, directly or by name."""
    assert "nas.engine.executor" in GRAPH["nas.backends.local"]
    assert "nas.engine.executor" in GRAPH["nas.backends"]
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items()
                 if m.startswith("nas.engine") for t in targets if t.startswith("nas.backends"))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_floors_below_it(package):
    bad = sorted(f"{m} imports {t}" for m, targets in GRAPH.items()
                 if m.split(".")[0] == package
                 for t in targets
                 if t.split(".")[0] not in ALLOWED[package] | {package})
    assert not bad, "\n".join(bad)


def cycles_of(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components over ``graph``: each component of more than one
    module, sorted."""
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
        for w in sorted(graph[v]):
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle_between_modules(package):
    """A cycle that touches ``package`` (and is not a known one) fails."""
    mine = [c for c in cycles_of(GRAPH) if any(m.split(".")[0] == package for m in c)
            and frozenset(c) not in KNOWN_CYCLES]
    assert not mine, "import cycles: " + "; ".join(" <-> ".join(c) for c in mine)


def test_known_cycles_still_exist():
    found = {frozenset(c) for c in cycles_of(GRAPH)}
    stale = [sorted(c) for c in KNOWN_CYCLES if c not in found]
    assert not stale, f"no longer a cycle, drop it from KNOWN_CYCLES: {stale}"


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
