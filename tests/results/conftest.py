"""Hand-made run folders of both stages, written through Optuna itself (no training), and stage 1
run folders written by the search itself with a fake evaluator (latency runs among them)."""
from __future__ import annotations

import functools

import datetime
import json
import random
from pathlib import Path

import optuna
import pandas as pd
import pytest

from nas.evaluate import ProxyConfig
from space.objective import make_objective
from nas.search import SearchConfig
from results.rundir import open_storage, storage_url
from space.deploy import Deployment, deployment_spec
from space.search_space import load_space

TARGET = 400_000_000


T0 = datetime.datetime(2026, 1, 1, 12, 0, 0)


class _Pick:
    """Stands in for an Optuna trial while sampling: seeded random choices."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def suggest_categorical(self, name, choices):
        return self.rng.choice(list(choices))


def make_stage1(run_dir: Path, points, *, pruned=(), running=0, failed=0, sampler="tpe",
                constraint="soft", storage: str | None = None) -> Path:
    """A stage 1 run folder: one COMPLETE trial per (accuracy, macs) in ``points``, then PRUNED
    trials at (accuracy, macs) in ``pruned``, FAIL and RUNNING trials. Params are real members
    of the mnasnet space, MACs are the given ones; trial i starts at T0 + 10 i s and takes 5 s."""
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg = SearchConfig(target_macs=TARGET, sampler=sampler, constraint=constraint,
                       proxy=ProxyConfig(dataset="synthetic"), deploy=Deployment())
    (run_dir / "config.json").write_text(json.dumps({**cfg.to_dict(), "storage": storage}))
    space = load_space("mnasnet")
    objective = make_objective(TARGET, constraint=constraint)
    multi = sampler == "nsga2"
    study = optuna.create_study(storage=open_storage(storage_url(run_dir, storage)),
                                study_name="stage1",
                                directions=["maximize", "minimize"] if multi else ["maximize"])
    State = optuna.trial.TrialState
    todo = ([(State.COMPLETE, acc, macs) for acc, macs in points] +
            [(State.PRUNED, acc, macs) for acc, macs in pruned] +
            [(State.FAIL, None, 300e6)] * failed + [(State.RUNNING, None, 250e6)] * running)
    for n, (state, acc, macs) in enumerate(todo):
        params = space.sample(_Pick(n))
        spec = deployment_spec(space, params, cfg.deploy, "t")
        attrs = {"macs": int(macs), "params": 1_000_000 + n, "arch_hash": spec.arch_hash(),
                 "node": "node-a"}
        values = None
        if acc is not None:
            attrs["accuracy"] = acc
        if state == State.COMPLETE:
            attrs["reward"] = objective.reward(acc, int(macs))
            values = [acc, float(macs)] if multi else [attrs["reward"]]
        if state == State.FAIL:
            attrs["fail_reason"] = "RuntimeError: simulated"
        start = T0 + datetime.timedelta(seconds=10 * n)
        study.add_trial(optuna.trial.FrozenTrial(
            number=n, state=state, value=None, values=values, datetime_start=start,
            datetime_complete=None if state == State.RUNNING else
            start + datetime.timedelta(seconds=5),
            params=params, distributions=space.distributions(), user_attrs=attrs,
            system_attrs={}, intermediate_values={}, trial_id=n))
    return run_dir


BASE_MACS = 100_000_000
# (alpha, beta, gamma, accuracy) of the compound grid points
COMPOUND = [(1.2, 1.1, 1.15, 0.90), (1.0, 1.2, 1.15, 0.88), (1.4, 1.1, 1.0, 0.86),
            (1.1, 1.15, 1.1, 0.87), (1.3, 1.05, 1.1, 0.85)]
SINGLE = [("depth", 2.0, 1.0, 1.0, 0.84), ("width", 1.0, 1.41, 1.0, 0.86),
          ("resolution", 1.0, 1.0, 1.41, 0.85)]
PAPER = [("B0", 5.3e6, 0.39e9), ("B1", 7.8e6, 0.70e9), ("B2", 9.2e6, 1.0e9), ("B3", 12e6, 1.8e9)]


def grid_rows(*, running: int = 0):
    rows = []
    for i, (a, b, g, acc) in enumerate(COMPOUND):
        prod = a * b * b * g * g
        rows.append(dict(number=i, state="COMPLETE", kind="compound", alpha=a, beta=b, gamma=g,
                         phi=1.0, product=prod, depth=a, width=b, resolution=round(224 * g),
                         proxy_resolution=round(16 * g), accuracy=acc,
                         macs=int(BASE_MACS * prod * 1.02), params=2_000_000 + i,
                         macs_ratio=prod * 1.02, formula_ratio=prod, reward=acc,
                         duration_s=1.0 + i, node="node-a", fail_reason=None,
                         arch_hash=f"{i:012x}"))
    for j, (kind, d, w, r, acc) in enumerate(SINGLE, start=len(rows)):
        rows.append(dict(number=j, state="COMPLETE", kind=kind, alpha=d, beta=w, gamma=r, phi=1.0,
                         product=d * w * w * r * r, depth=d, width=w, resolution=round(224 * r),
                         proxy_resolution=round(16 * r), accuracy=acc,
                         macs=int(BASE_MACS * 2.0), params=3_000_000, macs_ratio=2.0,
                         formula_ratio=2.0, reward=acc, duration_s=2.0, node="node-b",
                         fail_reason=None, arch_hash=f"{j:012x}"))
    for k in range(running):
        rows.append(dict(number=len(rows), state="RUNNING", kind="compound", alpha=1.5, beta=1.0,
                         gamma=1.15, phi=1.0, product=1.98, duration_s=None))
    return rows


def coefficients(*, compare_single: bool = True):
    a, b, g, acc = COMPOUND[0]
    prod = a * b * b * g * g
    return {
        "alpha": a, "beta": b, "gamma": g, "phi": 1.0, "product": prod, "tolerance": 0.1,
        "grid": {"alpha_range": [1.0, 1.4], "beta_range": [1.0, 1.2], "gamma_range": [1.0, 1.2],
                 "step": 0.05, "points_total": 125, "points_kept": len(COMPOUND)},
        "macs_ratio": prod * 1.02, "formula_ratio": prod, "selected_by": "accuracy",
        "accuracy": acc,
        "base": {"name": "nas-b0", "macs": BASE_MACS, "params": 2_000_000, "resolution": 224},
        "compare_single": ([{"kind": k, "depth": d, "width": w, "resolution": r, "accuracy": x,
                             "macs": BASE_MACS * 2.0, "params": 3_000_000}
                            for k, d, w, r, x in SINGLE] if compare_single else None),
    }


def family_rows():
    a, b, g, _ = COMPOUND[0]
    rows = []
    for phi, (pname, pparams, pmacs) in enumerate(PAPER):
        rows.append(dict(phi=phi, name=f"nas-b{phi}", depth=a ** phi, width=b ** phi,
                         resolution=round(224 * g ** phi), params=int(2e6 * 1.5 ** phi),
                         macs=int(BASE_MACS * 2.1 ** phi), paper_name=pname,
                         paper_params=pparams, paper_macs=pmacs, paper_width=1.0 + 0.1 * phi,
                         paper_depth=1.0 + 0.2 * phi, paper_resolution=224 + 20 * phi))
    return rows


def make_stage2(run_dir: Path, *, study: bool = True, running: int = 0, family: bool = True,
                coef: bool = True, compare_single: bool = True, stage_in_config: bool = True,
                target: float = 2.0) -> Path:
    """A stage 2 run folder in the formats the grid search writes (config.json, grid.csv,
    coefficients.json, family.csv) and, with ``study``, the Optuna study "stage2" holding the
    same points (grid values as user attributes, the point's key as its one param)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {"base": "nas-b0", "phi": 1.0, "storage": None,
              "grid": {"alpha_range": [1.0, 1.4], "beta_range": [1.0, 1.2],
                       "gamma_range": [1.0, 1.2], "step": 0.05, "tolerance": 0.1,
                       "target": target}}
    if stage_in_config:
        config["stage"] = 2
    (run_dir / "config.json").write_text(json.dumps(config))
    rows = grid_rows(running=running)
    pd.DataFrame(rows).to_csv(run_dir / "grid.csv", index=False)
    if coef:
        (run_dir / "coefficients.json").write_text(
            json.dumps(coefficients(compare_single=compare_single)))
    if family:
        pd.DataFrame(family_rows()).to_csv(run_dir / "family.csv", index=False)
    if study:
        st = optuna.create_study(storage=open_storage(storage_url(run_dir, None)),
                                 study_name="stage2", direction="maximize")
        for n, row in enumerate(rows):
            done = row["state"] == "COMPLETE"
            start = T0 + datetime.timedelta(seconds=10 * n)
            attrs = {k: v for k, v in row.items()
                     if k not in ("number", "state", "duration_s") and v is not None}
            key = f"{row['kind']} {row['alpha']!r},{row['beta']!r},{row['gamma']!r}"
            st.add_trial(optuna.trial.FrozenTrial(
                number=n, state=getattr(optuna.trial.TrialState, row["state"]),
                value=row["reward"] if done else None, datetime_start=start,
                datetime_complete=start + datetime.timedelta(seconds=row["duration_s"])
                if done else None, params={"point": key},
                distributions={"point": optuna.distributions.CategoricalDistribution([key])},
                user_attrs=attrs, system_attrs={}, intermediate_values={}, trial_id=n))
    return run_dir


@pytest.fixture
def stage1_points():
    """Hand-made (accuracy, macs): the front is trials 0 (cheapest), 1, 3 and its duplicate 5;
    2 is dominated by 1 (same MACs, less accurate), 4 by 3 (same accuracy, costlier)."""
    return [(0.70, 100e6), (0.80, 200e6), (0.75, 200e6), (0.90, 380e6), (0.90, 450e6),
            (0.90, 380e6)]


@pytest.fixture
def stage1_dir(tmp_path, stage1_points):
    return make_stage1(tmp_path / "s1", stage1_points, pruned=[(0.5, 150e6)], running=1,
                       failed=1)


@pytest.fixture
def stage2_dir(tmp_path):
    return make_stage2(tmp_path / "s2")


@pytest.fixture
def stage1_factory():
    """make_stage1, for tests that need another kind of stage 1 run folder."""
    return make_stage1


@pytest.fixture
def stage2_factory():
    """make_stage2, for tests that need another kind of stage 2 run folder."""
    return make_stage2


def fake_evaluate(spec, proxy, *, seed, on_epoch=None, **kw):
    """Stands in for nas.evaluate.evaluate_proxy: an accuracy from the architecture plus a
    seed-dependent wobble (so a finalist's seeds differ), no training."""
    from nas.evaluate import EvalResult
    from nas.train import EpochResult

    acc = 0.4 + (int(spec.arch_hash(), 16) % 500) / 1000 + random.Random(seed).uniform(-.05, .05)
    epochs = [EpochResult(epoch=e, train_loss=1.0, val_accuracy=acc, lr=0.1, seconds=0.0,
                          images_per_sec=0.0) for e in range(1, proxy.train.epochs + 1)]
    for r in epochs:
        if on_epoch:
            on_epoch(r)
    return EvalResult(accuracy=acc, epochs=epochs, seconds=0.0, images_per_sec=0.0, seed=seed)


LATENCY_RESOLUTION = 32
TARGET_MS = 3.0  # the tiny networks' predicted latencies on hand_table's entries: ~1-6 ms


def search_run(root: Path, space_text: str, name: str, *, make_table=None, **config) -> Path:
    """A stage 1 run folder written by nas.search.run_search on the tiny space (6 trials, no
    pruning) with :func:`fake_evaluate`. A search with a latency target or objective predicts
    from ``make_table``'s table (the ``hand_table`` fixture: made-up entries, so predictions
    are exact), and B0 and the finalists are timed for real at the end (tiny networks at
    32 px: milliseconds)."""
    from nas.search import run_search
    from nas.train import TrainConfig
    from space.latency import save_table

    space_file = root / "tiny.yaml"
    space_file.write_text(space_text)
    if "target_latency_ms" in config or "latency" in config.get("objectives", ()):
        table = root / f"{name}-table.json"
        save_table(make_table(str(space_file), resolution=LATENCY_RESOLUTION), table)
        config["latency_table"] = str(table)
    proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=60, val_samples=30,
                        train=TrainConfig(epochs=1, threads=1))
    cfg = SearchConfig(space=str(space_file), trials=6, timeout=None, proxy=proxy,
                       pruner="none", deploy=Deployment(resolution=LATENCY_RESOLUTION),
                       **config)
    run_search(cfg, out=root / name, evaluate=fake_evaluate)
    return root / name


@pytest.fixture(scope="session")
def latency_run(tmp_path_factory, tiny_space_text, hand_table):
    """`nas search --target-latency 3ms --sampler random --finalists 2 --finalist-seeds 3`."""
    return search_run(tmp_path_factory.mktemp("lat"), tiny_space_text, "latency",
                      make_table=hand_table,
                      target_latency_ms=TARGET_MS, sampler="random", finalists=2,
                      finalist_seeds=3)


@pytest.fixture(scope="session")
def nsga2_latency_run(tmp_path_factory, tiny_space_text, hand_table):
    """`nas search --target-flops 2M --sampler nsga2 --objectives accuracy,latency`, no
    finalists: T is in MACs, the Pareto front over latency."""
    return search_run(tmp_path_factory.mktemp("nsga2"), tiny_space_text, "nsga2",
                      make_table=hand_table,
                      target_macs=2_000_000, sampler="nsga2",
                      objectives=("accuracy", "latency"), finalists=0)


@pytest.fixture(scope="session")
def search_factory(hand_table):
    """search_run, for tests that need another stage 1 run folder written by the search."""
    return functools.partial(search_run, make_table=hand_table)
