"""``--help`` answers without the heavy libraries (issue 25): the parsers are built from light
modules, and the registry-backed choices still come from the registries themselves.

Each help runs in a fresh interpreter (this one has torch loaded already), which then reports
the heavy top-level packages in ``sys.modules``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "optuna", "ray", "pandas", "plotly")

# run a CLI's main() on argv, keep its --help text, then list the heavy packages imported
PROBE = """
import contextlib, io, json, sys
from {module} import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main({argv!r})
    except SystemExit as e:
        code = e.code
heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r}))
print(json.dumps({{"code": code, "heavy": heavy, "help": out.getvalue()}}))
"""

HELPS = [
    ("nas.cli", ["--help"]),
    ("nas.cli", ["search", "--help"]),
    ("nas.cli", ["train", "--help"]),
    ("gridsearch.cli", ["--help"]),
]


def run_help(module: str, argv: list[str]) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module, argv=argv,
                                                               heavy=HEAVY)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def helps() -> dict[tuple[str, str], dict]:
    return {(m, " ".join(a)): run_help(m, a) for m, a in HELPS}


@pytest.mark.parametrize("module,argv", HELPS, ids=[f"{m} {' '.join(a)}" for m, a in HELPS])
def test_help_imports_no_heavy_library(helps, module, argv):
    got = helps[(module, " ".join(argv))]
    assert got["code"] == 0
    assert "usage:" in got["help"]
    assert got["heavy"] == [], f"{module} {' '.join(argv)} imported {got['heavy']}"


def _choices(help_text: str, flag: str) -> list[str]:
    """The {a,b,c} argparse prints after ``flag`` in the options list."""
    start = help_text.index(f"  {flag} {{")
    return help_text[help_text.index("{", start) + 1:help_text.index("}", start)].split(",")


def test_search_help_lists_the_registries(helps):
    from nas.backends import BACKENDS
    from nas.engine import PRUNERS, SAMPLERS
    from nas.train.loop import COMPILE_MODES, OPTIMIZERS, PRECISIONS, SCHEDULES
    from space.objective import CONSTRAINTS

    text = helps[("nas.cli", "search --help")]["help"]
    for flag, registry in (("--sampler", SAMPLERS), ("--pruner", PRUNERS),
                           ("--constraint", CONSTRAINTS), ("--optimizer", OPTIMIZERS),
                           ("--schedule", SCHEDULES), ("--precision", PRECISIONS),
                           ("--compile", COMPILE_MODES), ("--backend", BACKENDS)):
        assert _choices(text, flag) == registry.names(), flag
    # the per-entry help comes from the registry rows too
    assert f"{SAMPLERS.names()[0]}: {SAMPLERS.get(SAMPLERS.names()[0]).help}" in \
        " ".join(text.split())


def test_gridsearch_help_lists_the_registries_and_config_defaults(helps):
    from gridsearch.family import ROUNDINGS
    from gridsearch.grid import CONSTRAINTS
    from gridsearch.search import SELECTORS, GridSearchConfig

    text = helps[("gridsearch.cli", "--help")]["help"]
    assert _choices(text, "--rounding") == ROUNDINGS.names()
    assert _choices(text, "--constraint") == CONSTRAINTS.names()
    assert _choices(text, "--select") == list(SELECTORS)
    flat = " ".join(text.split())
    assert f"(default {GridSearchConfig().compare_seeds};" in flat


def test_space_keeps_its_public_api_and_imports_torch_only_on_use():
    code = ("import sys, space; before = 'torch' in sys.modules; "
            "from space import build, ArchSpec, count_analytic, resolve_spec; "
            "print(before, 'torch' in sys.modules, set(space.__all__) <= set(dir(space)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=120)
    assert done.stdout.split() == ["False", "True", "True"], done.stderr


def test_an_unknown_name_is_an_attribute_error():
    import space

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        space.nope  # noqa: B018
    from space import ArchSpec
    from space.spec import ArchSpec as direct

    assert ArchSpec is direct
