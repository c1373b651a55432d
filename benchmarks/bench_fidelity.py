"""How good is stage 1's evidence? Every rung of the ladder, today's default proxy and the full
procedure (ladder + finalists), scored against a long reference training (issue 13).

The architectures: EfficientNet-B0 and MnasNet-A1 (zoo members, from the efficientnet space: no
zoo network is a member of the mnasnet space), then seeded uniform members of the mnasnet space,
``--archs`` in all. The **reference** trains each on the full training split (``--ref-epochs``,
default 3) with ``--ref-seeds`` seeds (default 0,1,2: at 3 epochs one training's outcome is noisy,
and the scorers are compared with the seeds' mean); the Spearman between two reference seeds is
the issue's ceiling, and one seed against the mean of the others the fairer one. The **ladder**
is one training per architecture at the default proxy task up to the top rung (``--rungs``,
default the search's 1,2), read after every rung;
the race keeps the best 1/``--reduction-factor`` at each rung (default the search's, 2);
**today's default proxy** is the search's 2 epochs x 12,000 images at 24 px (the top rung when
the rungs are the default; ``--train-samples 6000 --proxy-resolution 32`` is the earlier one).
Stage 1's reference trains at 32 px (``--ref-resolution``) whatever the proxy's resolution.
The **full procedure** races the architectures in a seeded order with the engine's own rule
(:meth:`nas.engine.Ladder.promotes`), retrains the top ``--finalists`` with ``--finalist-seeds``
fresh seeds (the engine's finalist seeds) and ranks the finalists by mean, then the others by
the rung they reached and their score there.

Scores, on the reward ACC x (MACs/T)^-0.07 (T = ``--target``): Spearman and Kendall's tau-b with
bootstrap 95% CIs over architectures, top-5 overlap with the reference, and the regret (the
reference reward of the reference's best minus that of each one's choice), also in reference
seed-stds. Beside them, in stage 1, the scorer that trains nothing (:data:`MACS_ALONE`: the
reward's MACs term alone, with the default proxy's paired difference from it) and the rankings
on accuracy alone, which is what an evaluator adds to the reward.

It runs in pieces and can be completed across sittings: every training is cached as one JSON
file under ``--cache`` (keyed by architecture, proxy task and seed), ``--part`` picks what to
train now (``reference``, ``ladder``, ``finalists``, or ``score`` to train nothing), and
``--slice A:B`` trains only architectures A..B-1 of the set. ``score`` uses whatever is cached
and says what is missing. ``--part variants`` trains other ways to spend the proxy's budget
(:data:`VARIANTS`: EcoNAS's images-against-epochs at equal steps, a lower resolution, half and
twice the steps, twice the steps at a lower resolution) and scores each against the same
reference, with its cost (relative to ``--train-samples`` and ``--proxy-resolution``).

    .venv/bin/python benchmarks/bench_fidelity.py --part ladder --threads 1
    .venv/bin/python benchmarks/bench_fidelity.py --part reference --slice 0:4 --threads 1
    .venv/bin/python benchmarks/bench_fidelity.py --part score

**Stage 2** (``--stage 2``): the same questions for gridsearch. The set is ``--archs`` (default
10) grid points at ``--phi`` (default 1) that gridsearch's default grid and measured constraint
keep, on a cheap base (EfficientNet-B0 at width ``--base-width``, default 0.25, as
bench_gridsearch's ``--base-width``), one per distinct network, spread over the grid and drawn
with ``--arch-seed`` (:func:`grid_set`). Each point trains at its own proxy resolution,
round(32 x gamma^phi), as gridsearch trains it, with gridsearch's seeds (drawn from its reuse
key). Today's default proxy is gridsearch's (:func:`gridsearch.search.default_proxy`: 1 epoch,
no race); the ladder is ``--rungs`` (default 1,3), keeping the best 1/``--reduction-factor``
(default gridsearch's, 3). Two full procedures are scored: today's default
(every point 1 epoch, then the top ``--finalists`` by reward x ``--finalist-seeds``, default 4 x
3, as gridsearch's defaults) and the ladder's (race, then the same finalists at its top rung).
Stage 2 chooses by accuracy (``--select accuracy``, its default), so every score, the reference
and the regret are accuracies here; the race and the finalists' pick read the reward with T =
base MACs x 2^phi, as gridsearch's pruner and finalists do. Top-3 overlap is reported beside
top-5 (5 of 10 points is half the set).

    .venv/bin/python benchmarks/bench_fidelity.py --stage 2 --part reference --threads 1

Results go to benchmarks/BENCHMARKS_fidelity.md by hand (with the commands that produced them).
"""
from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from gridsearch.grid import PAPER, Grid, Point, enumerate_grid
from gridsearch.measure import MacsRatio
from gridsearch.search import (GridSearchConfig, PointTask, default_proxy, point_task,
                               reward_objective)
from nas.engine import Ladder, parse_rungs
from nas.engine.fidelity import parse_reduction_factor
from nas.engine.finalists import FinalistPlan, finalist_key, mean_std
from nas.evaluate import (SETTINGS_BEFORE, ProxyConfig, evaluate_proxy, legacy_proxy,
                          trial_seed)
from nas.stage1.config import SearchConfig
from space import ArchSpec, count_analytic, get_model, scale
from space.builder import zero_init_skips
from space.deploy import Deployment, deployment_spec
from space.objective import Objective
from space.resolve import resolve_spec
from space.search_space import load_space

log = logging.getLogger("bench_fidelity")

ZOO = ("efficientnet-b0", "mnasnet-a1")
PARTS = ("reference", "ladder", "finalists", "variants", "score")

# Other ways to spend a proxy's budget, each trained once per architecture with the search's seed
# and scored against the same reference (``--part variants``): EcoNAS's axes, images against
# epochs at an equal number of steps and the input resolution, plus half and twice today's
# steps. Factors of today's default proxy's (epochs, training images, resolution): with the
# defaults, 2 epochs x 6,000 images at 32 px.
VARIANTS: dict[str, tuple[float, float, float]] = {
    "today": (1.0, 1.0, 1.0),
    "same steps, more images": (0.5, 2.0, 1.0),
    "same steps, fewer images": (2.0, 0.5, 1.0),
    "lower resolution": (1.0, 1.0, 0.75),
    "half the steps": (0.5, 1.0, 1.0),
    "twice the steps": (1.0, 2.0, 1.0),
    # the two best against the stable reference, together: about today's pixels (1.12x)
    "twice the steps, lower resolution": (1.0, 2.0, 0.75),
}


# ----------------------------------------------------------------------------- statistics
def ranks(xs: Sequence[float]) -> list[float]:
    """Ranks from 0, ties averaged."""
    order = sorted(range(len(xs)), key=lambda i: xs[i])
    out = [0.0] * len(xs)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and xs[order[j + 1]] == xs[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2
        i = j + 1
    return out


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    n = len(a)
    ma, mb = sum(a) / n, sum(b) / n
    cov = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    va = math.sqrt(sum((x - ma) ** 2 for x in a))
    vb = math.sqrt(sum((y - mb) ** 2 for y in b))
    return cov / (va * vb) if va and vb else float("nan")


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    return pearson(ranks(a), ranks(b))


def kendall(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b (ties in either list handled)."""
    conc = disc = ta = tb = 0
    n = len(a)
    for i in range(n):
        for j in range(i + 1, n):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ta += 1
            elif db == 0:
                tb += 1
            elif (da > 0) == (db > 0):
                conc += 1
            else:
                disc += 1
    denom = math.sqrt((conc + disc + ta) * (conc + disc + tb))
    return (conc - disc) / denom if denom else float("nan")


def bootstrap_ci(a: Sequence[float], b: Sequence[float], stat: Callable[..., float], *,
                 n: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of ``stat`` over architectures resampled with replacement
    (resamples where it is undefined, e.g. all ties, are dropped)."""
    rng = random.Random(seed)
    m = len(a)
    got = []
    for _ in range(n):
        idx = [rng.randrange(m) for _ in range(m)]
        v = stat([a[i] for i in idx], [b[i] for i in idx])
        if math.isfinite(v):
            got.append(v)
    if not got:
        return float("nan"), float("nan")
    got.sort()
    return got[int(0.025 * (len(got) - 1))], got[int(math.ceil(0.975 * (len(got) - 1)))]


def paired_diff_ci(a: Sequence[float], c: Sequence[float], ref: Sequence[float],
                   stat: Callable[..., float], *, n: int = 1000,
                   seed: int = 0) -> tuple[float, float]:
    """The 95% percentile interval of stat(a, ref) - stat(c, ref), both on the same
    architectures resampled with replacement: whether scorer ``a`` ranks better than ``c``
    beyond the luck of which architectures were drawn."""
    return bootstrap_ci(list(zip(a, c)), ref, lambda ac, r: stat([x for x, _ in ac], r)
                        - stat([y for _, y in ac], r), n=n, seed=seed)


def top_overlap(score: Sequence[float], ref: Sequence[float], k: int = 5) -> int:
    def top(xs: Sequence[float]) -> set[int]:
        return set(sorted(range(len(xs)), key=lambda i: (-xs[i], i))[:k])

    return len(top(score) & top(ref))


def regret(score: Sequence[float], ref: Sequence[float]) -> float:
    """The reference reward lost by choosing the best by ``score`` instead of by ``ref``."""
    pick = max(range(len(score)), key=lambda i: (score[i], -i))
    return max(ref) - ref[pick]


# ------------------------------------------------------------------------- the procedure
@dataclass(frozen=True)
class RaceResult:
    reached: list[int]  # per architecture: the highest rung (epochs) it trained to
    at_reached: list[float]  # its reward there
    epochs: int  # epochs the race trained


def race(curves: Sequence[Sequence[float]], ladder: Ladder, order: Sequence[int]) -> RaceResult:
    """Successive halving over cached per-epoch rewards, one trial at a time in ``order``, with
    the engine's promotion rule (the local backend's sequential ASHA)."""
    at: dict[int, list[float]] = {r: [] for r in ladder.compared}
    reached = [0] * len(curves)
    value = [float("nan")] * len(curves)
    epochs = 0
    for i in order:
        stop = ladder.top
        for r in ladder.compared:
            v = curves[i][r - 1]
            go_on = ladder.promotes(v, at[r])
            at[r].append(v)
            if not go_on:
                stop = r
                break
        reached[i], value[i] = stop, curves[i][stop - 1]
        epochs += stop
    return RaceResult(reached=reached, at_reached=value, epochs=epochs)


def procedure_ranking(result: RaceResult, finalist_means: dict[int, float], *,
                      at: Sequence[float] | None = None) -> list[float]:
    """A score per architecture that orders it as the procedure does: finalists by their mean,
    above everyone else; the rest by the rung reached, then their score there (``at``, default
    the race's own reward at the rung reached)."""
    big = 10.0 ** 6
    at = result.at_reached if at is None else at
    out = []
    for i, (r, v) in enumerate(zip(result.reached, at)):
        if i in finalist_means:
            out.append(3 * big + finalist_means[i])
        else:
            out.append(r * 10.0 + (v if math.isfinite(v) else -1.0))
    return out


def top_finalists(result: RaceResult, ladder: Ladder, k: int) -> list[int]:
    """The top ``k`` architectures that reached the top rung, by their reward there."""
    done = [i for i, r in enumerate(result.reached) if r == ladder.top]
    return sorted(done, key=lambda i: (-result.at_reached[i], i))[:k]


# ------------------------------------------------------------------------------- training
def arch_set(n: int, *, seed: int = 0, space: str = "mnasnet",
             deploy: Deployment | None = None,
             zoo: Sequence[str] | None = None) -> list[ArchSpec]:
    """The zoo members (default :data:`ZOO`), then seeded uniform members of ``space``: ``n``
    specs at deployment."""
    deploy = deploy or Deployment()
    zoo = ZOO if zoo is None else zoo
    sp = load_space(space)
    rng = random.Random(seed)

    class Pick:
        def suggest_categorical(self, name: str, choices: Any) -> Any:
            return rng.choice(list(choices))

    out = [resolve_spec(z).replace(name=z) for z in zoo][:n]
    while len(out) < n:
        out.append(deployment_spec(sp, sp.sample(Pick()), deploy, f"{space}-{len(out)}"))
    return out


@dataclass(frozen=True)
class GridPoint:
    """A stage-2 point of the set: its coefficients, what it trains
    (:func:`gridsearch.search.point_task`), its measured MACs ratio to the base, and the kept
    points whose networks train identically (itself among them: gridsearch trains them once)."""

    point: Point
    task: PointTask
    ratio: float
    shares: tuple[Point, ...]


def grid_set(n: int, *, base: ArchSpec, phi: float, proxy: ProxyConfig, seed: int = 0,
             grid: Grid | None = None) -> list[GridPoint]:
    """``n`` distinct networks among the points gridsearch's grid keeps at ``phi`` (default grid,
    measured constraint and tolerance), spread over them: the kept points, in grid order, are
    grouped by what they train, the groups cut into ``n`` runs of consecutive groups, and one
    group drawn per run with ``seed``. The paper's (1.2, 1.1, 1.15) replaces its run's draw and
    stands for its group when the constraint keeps it; any other group by its first point."""
    measure = MacsRatio(base, phi)
    enum = enumerate_grid(grid or Grid(), measure=measure, phi=phi)
    groups: dict[str, list[Point]] = {}
    for p in enum.points:
        groups.setdefault(point_task(base, p, phi, proxy).key, []).append(p)
    keys = list(groups)
    if not 1 <= n <= len(keys):
        raise ValueError(f"`1 <= --archs <= {len(keys)}` must hold in stage 2 (the distinct "
                         f"networks the grid keeps at phi {phi:g}), but got --archs {n}; pass "
                         f"e.g. --archs {min(len(keys), 10)}")
    rng = random.Random(seed)
    bounds = [round(j * len(keys) / n) for j in range(n + 1)]
    out = []
    for lo, hi in zip(bounds, bounds[1:]):
        key = rng.choice(keys[lo:hi])  # drawn even where the paper's point replaces it
        key = next((k for k in keys[lo:hi] if PAPER in groups[k]), key)
        p = PAPER if PAPER in groups[key] else groups[key][0]
        task = point_task(base, p, phi, proxy,
                          name=f"{base.name}-a{p.alpha:g}-b{p.beta:g}-g{p.gamma:g}")
        out.append(GridPoint(point=p, task=task, ratio=measure(p), shares=tuple(groups[key])))
    return out


@functools.lru_cache(maxsize=None)
def _zero_init_skips(spec: ArchSpec) -> int:
    return zero_init_skips(spec)


class Cache:
    """One JSON file per finished training: a sitting that stops loses nothing finished."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(spec: ArchSpec | str, proxy: ProxyConfig | dict[str, Any], seed: int, *,
            zero_init_skips: int | None = None) -> str:
        """What the training computes: the network, the proxy task and the seed. Torch
        threads say how it runs, not what, so they are left out: a later sitting may use
        other ``--threads`` and still find it. A zero-initialised training of a network with
        residual blocks that end activated (``space.builder.zero_init_skips``: they were zeroed,
        and dead, before the builder's fix) keys on their count, so what was cached before the
        fix is never read as today's; other trainings keep their keys."""
        task = proxy.to_dict() if isinstance(proxy, ProxyConfig) else json.loads(
            json.dumps(proxy))
        task["train"]["threads"] = None
        # A setting at the value trainings had before it existed stays out of the key, so
        # what was cached then keeps its key (nas.evaluate.SETTINGS_BEFORE).
        for name, before in SETTINGS_BEFORE.items():
            if task.get(name, before) == before:
                task.pop(name, None)
        arch = spec if isinstance(spec, str) else spec.arch_hash()
        record: dict[str, Any] = {"arch": arch, "proxy": task, "seed": seed}
        if task.get("zero_init_last"):  # only then is a network built to count its skips
            if zero_init_skips is None:
                zero_init_skips = 0 if isinstance(spec, str) else _zero_init_skips(spec)
            if zero_init_skips:
                record["zero_init_skips"] = zero_init_skips
        blob = json.dumps(record, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def rekey(self) -> int:
        """Rename every cached file to its current key (files written by an older key); the
        number renamed."""
        n = 0
        for p in sorted(self.folder.glob("*.json")):
            rec = json.loads(p.read_text())
            want = self.folder / (self.key(rec["arch_hash"], rec["proxy"], rec["seed"],
                                           zero_init_skips=rec.get("zero_init_skips", 0))
                                  + ".json")
            if want != p:
                p.replace(want)
                n += 1
        return n

    def get(self, spec: ArchSpec, proxy: ProxyConfig, seed: int) -> dict[str, Any] | None:
        p = self.folder / f"{self.key(spec, proxy, seed)}.json"
        return json.loads(p.read_text()) if p.exists() else None

    def train(self, spec: ArchSpec, proxy: ProxyConfig, seed: int, *, what: str,
              evaluate: Callable[..., Any] = evaluate_proxy) -> dict[str, Any]:
        got = self.get(spec, proxy, seed)
        if got is not None:
            return got
        res = evaluate(spec, proxy, seed=seed)
        skips = _zero_init_skips(spec) if proxy.zero_init_last else 0
        rec = {"arch": spec.name, "arch_hash": spec.arch_hash(), "what": what, "seed": seed,
               "proxy": proxy.to_dict(), **({"zero_init_skips": skips} if skips else {}),
               "curve": [float(e.val_accuracy) for e in res.epochs],
               "accuracy": float(res.accuracy), "seconds": float(res.seconds),
               "train_loss": [float(e.train_loss) for e in res.epochs],
               "val_loss": [float(e.val_loss) for e in res.epochs],
               **{k: float(v) for k, v in getattr(res, "scores", {}).items()}}
        p = self.folder / f"{self.key(spec, proxy, seed)}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(p)  # atomic: a killed sitting leaves no half file
        log.info("%s %s seed %d: acc %.4f in %.0f s", what, spec.name, seed, rec["accuracy"],
                 rec["seconds"])
        return rec


@dataclass(frozen=True)
class Procedure:
    """How the tool chooses: a race on ``ladder`` over one training of ``task`` per architecture
    (its top rung's epochs), then the top finalists retrained on ``task`` (for
    ``finalist_epochs`` epochs when given: ``--finalist-epochs``) with the engine's finalist
    seeds, the best mean chosen. ``label`` names its row in the table."""

    label: str
    ladder: Ladder
    task: ProxyConfig
    finalist_epochs: int | None = None

    @property
    def finalist_task(self) -> ProxyConfig:
        """What a finalist trains on: the engine's rule (``FinalistPlan.task``)."""
        return FinalistPlan(1, 1, self.finalist_epochs).task(self.task)

    @property
    def finalist_top(self) -> int:
        """Epochs per finalist run."""
        return self.finalist_task.train.epochs


# What a stage scores and chooses by, from a training's accuracy: stage 1 the reward, stage 2
# (gridsearch --select accuracy, its default) the accuracy. The race and the finalists' pick read
# the reward in both (the engine's pruner and top_distinct read the reward).
VALUES: dict[str, Callable[["Plan", int, float], float]] = {
    "reward": lambda plan, i, acc: plan.reward(i, acc),
    "accuracy": lambda plan, i, acc: acc,
}


@dataclass(frozen=True)
class Plan:
    archs: list[ArchSpec]
    procedures: tuple[Procedure, ...]
    default: ProxyConfig  # today's default proxy
    default_label: str
    reference: ProxyConfig
    ref_seeds: tuple[int, ...]
    finalists: int
    finalist_seeds: int
    order_seed: int
    objective: Objective  # the reward the race and the finalists' pick read
    keys: tuple[str, ...]  # per architecture, the engine's reuse key: its seeds are drawn from it
    # per architecture, the proxy resolution (stage 2: round(32 x gamma^phi)); None: the tasks'
    resolutions: tuple[int, ...] | None = None
    select: str = "reward"  # a key of VALUES
    top_ks: tuple[int, ...] = (5,)
    variants: tuple[str, ...] = ()  # keys of VARIANTS that --part variants trains

    def task(self, proxy: ProxyConfig, i: int) -> ProxyConfig:
        """``proxy`` as architecture ``i`` trains it."""
        if self.resolutions is None:
            return proxy
        return replace(proxy, resolution=self.resolutions[i])

    def search_seed(self, i: int) -> int:
        return trial_seed(0, self.keys[i])

    def finalist_seed(self, i: int, s: int) -> int:
        return trial_seed(0, finalist_key(self.keys[i], s))

    def order(self) -> list[int]:
        order = list(range(len(self.archs)))
        random.Random(self.order_seed).shuffle(order)
        return order

    def reward(self, i: int, accuracy: float) -> float:
        return self.objective.reward(accuracy, count_analytic(self.archs[i]).macs)

    def value(self, i: int, accuracy: float) -> float:
        return VALUES[self.select](self, i, accuracy)

    def screening(self) -> list[tuple[ProxyConfig, str]]:
        """The one-per-architecture trainings: each procedure's task, then the default proxy
        (the same task trains once: the cache holds it)."""
        return [*((p.task, "ladder" if len(p.ladder.rungs) > 1 else "default proxy")
                  for p in self.procedures), (self.default, "default proxy")]

    def variant(self, name: str) -> ProxyConfig:
        """The proxy task of :data:`VARIANTS`' ``name``: today's default with its epochs,
        training images and resolution scaled."""
        e, n, r = VARIANTS[name]
        d = self.default
        return replace(d, train_samples=round(d.train_samples * n),
                       resolution=round(d.resolution * r),
                       train=replace(d.train, epochs=max(1, round(d.train.epochs * e))))


def run_part(plan: Plan, cache: Cache, part: str, *, only: range,
             evaluate: Callable[..., Any] = evaluate_proxy) -> int:
    """Train what ``part`` needs for the architectures in ``only``; the trainings done."""
    n = 0

    def train(i: int, proxy: ProxyConfig, seed: int, what: str) -> None:
        nonlocal n
        spec, task = plan.archs[i], plan.task(proxy, i)
        n += cache.get(spec, task, seed) is None
        cache.train(spec, task, seed, what=what, evaluate=evaluate)

    for i in only:
        if part == "reference":
            for s in plan.ref_seeds:
                train(i, plan.reference, s, "reference")
        elif part == "variants":
            for name in plan.variants:
                train(i, plan.variant(name), plan.search_seed(i), f"variant ({name})")
        elif part == "ladder":
            for proxy, what in plan.screening():
                train(i, proxy, plan.search_seed(i), what)
    if part == "finalists":
        for proc in plan.procedures:
            curves = _curves(plan, cache, proc.task)
            if any(c is None for c in curves):
                raise SystemExit("the finalists need the ladder part of every architecture "
                                 "first: run --part ladder")
            result = race(_rewards(plan, curves), proc.ladder, plan.order())
            for i in top_finalists(result, proc.ladder, plan.finalists):
                for s in range(plan.finalist_seeds):
                    train(i, proc.finalist_task, plan.finalist_seed(i, s), "finalist")
    return n


def _curves(plan: Plan, cache: Cache, proxy: ProxyConfig) -> list[list[float] | None]:
    """Per architecture, the accuracy after every epoch of its ``proxy`` training (None: not
    trained yet)."""
    recs = [cache.get(a, plan.task(proxy, i), plan.search_seed(i))
            for i, a in enumerate(plan.archs)]
    return [None if r is None else list(r["curve"]) for r in recs]


def _rewards(plan: Plan, curves: Sequence[Sequence[float]]) -> list[list[float]]:
    return [[plan.reward(i, a) for a in c] for i, c in enumerate(curves)]


# -------------------------------------------------------------------------------- scoring
def score(plan: Plan, cache: Cache, *, n_boot: int = 1000) -> dict[str, Any]:
    """The tables from the cache (nothing trained); ``missing`` says what is not there yet."""
    archs = plan.archs
    ref = reference_records(plan, cache)
    have = [i for i in range(len(archs)) if all(ref[s][i] is not None for s in ref)]
    missing = {"reference": [archs[i].name for i in range(len(archs)) if i not in have]}
    curves = {p.label: _curves(plan, cache, p.task) for p in plan.procedures}
    defaults = default_records(plan, cache)
    missing["ladder"] = [a.name for i, a in enumerate(archs) if defaults[i] is None
                         or any(c[i] is None for c in curves.values())]
    out: dict[str, Any] = {"archs": [a.name for a in archs], "missing": missing, "rows": [],
                           "n": len(have), "select": plan.select, "top_ks": list(plan.top_ks),
                           "races": [], "per_arch": _per_arch(plan, ref, defaults, curves)}
    if len(have) < 3:
        return out
    ref_v, mean_ref, seed_std = reference_values(plan, ref, have)
    out.update(n=len(have), ref_mean=mean_ref, ref_seed_std=seed_std)
    metrics = partial(_metrics, top_ks=plan.top_ks, n_boot=n_boot)
    out["variants"] = _variants(plan, cache, have, mean_ref, metrics, n_boot=n_boot)
    missing["variants"] = [archs[i].name for i in have if any(
        cache.get(archs[i], plan.task(plan.variant(v), i), plan.search_seed(i)) is None
        for v in plan.variants)]
    seeds = list(ref)
    if len(seeds) >= 2:
        out["ceiling"] = metrics("reference seed vs seed", ref_v[seeds[0]], ref_v[seeds[1]])
    if len(seeds) >= 3:  # what a scorer faces: one training against a mean of several
        rest = [sum(ref_v[s][j] for s in seeds[1:]) / (len(seeds) - 1) for j in range(len(have))]
        out["ceiling_vs_mean"] = metrics(f"reference seed vs the mean of the other "
                                         f"{len(seeds) - 1}", ref_v[seeds[0]], rest)
    if plan.select == "reward":  # what the reward's MACs term ranks with no training at all
        one = statistics.fmean(r["accuracy"] for s in ref for r in ref[s] if r is not None)
        macs_alone = [plan.value(i, one) for i in have]
        out["macs_alone"] = metrics(MACS_ALONE, macs_alone, mean_ref)
        out["on_accuracy"] = _on_accuracy(plan, ref, have, defaults, metrics)
    if missing["ladder"]:
        return out
    rows = out["rows"]
    for proc in plan.procedures:
        ladder, c = proc.ladder, curves[proc.label]
        for r in ladder.rungs if len(ladder.rungs) > 1 else ():
            rows.append(metrics(f"rung {r} (epoch {r} of {ladder.top}, "
                                f"{proc.task.train_samples} images)",
                                [plan.value(i, c[i][r - 1]) for i in have], mean_ref))
    dvals = [plan.value(i, defaults[i]["accuracy"]) for i in have]
    rows.append(metrics(plan.default_label, dvals, mean_ref))
    if "macs_alone" in out:  # does training rank better than the MACs term alone?
        rows[-1]["minus_macs_alone"] = (rows[-1]["spearman"] - out["macs_alone"]["spearman"])
        rows[-1]["minus_macs_alone_ci"] = paired_diff_ci(dvals, macs_alone, mean_ref, spearman,
                                                         n=n_boot)
    for proc in plan.procedures:
        row = _procedure_row(plan, cache, proc, curves[proc.label], have, mean_ref, out,
                             metrics)
        if row is not None:
            rows.append(row)
            if row["b0"] in have:
                j = have.index(row["b0"])
                row["b0_vs_zoo"] = {archs[i].name: {
                    "b0_wins_seeds": sum(ref_v[s][j] > ref_v[s][have.index(i)] for s in ref),
                    "seeds": len(ref)} for i in have if archs[i].name in ZOO and i != row["b0"]}
            row["b0"] = archs[row["b0"]].name
    extra = [out["macs_alone"]] if "macs_alone" in out else []
    for r in rows + extra + [z for row in rows for z in row.get("sizes", ())]:
        r["regret_in_seed_std"] = (r["regret"] / seed_std if seed_std and math.isfinite(seed_std)
                                   else float("nan"))
    return out


def reference_records(plan: Plan, cache: Cache) -> dict[int, list[dict[str, Any] | None]]:
    """Per reference seed, every architecture's cached reference training (None: not yet)."""
    return {s: [cache.get(a, plan.task(plan.reference, i), s) for i, a in enumerate(plan.archs)]
            for s in plan.ref_seeds}


def default_records(plan: Plan, cache: Cache) -> list[dict[str, Any] | None]:
    """Every architecture's one cached training of today's default proxy (None: not yet)."""
    return [cache.get(a, plan.task(plan.default, i), plan.search_seed(i))
            for i, a in enumerate(plan.archs)]


def reference_values(plan: Plan, ref: dict[int, list[dict[str, Any] | None]],
                     have: Sequence[int]) -> tuple[dict[int, list[float]], list[float], float]:
    """Over the architectures ``have`` (every seed cached), per reference seed each one's value
    (the stage's ``select``), their mean over the seeds, and the **reference seed-std** that
    regrets are counted in: the mean over architectures of each one's sample std across the
    seeds (NaN with one seed)."""
    ref_v = {s: [plan.value(i, ref[s][i]["accuracy"]) for i in have] for s in ref}
    mean_ref = [sum(ref_v[s][j] for s in ref) / len(ref) for j in range(len(have))]
    stds = [mean_std([ref_v[s][j] for s in ref])[1] for j in range(len(have))]
    seed_std = sum(stds) / len(stds) if all(math.isfinite(x) for x in stds) else float("nan")
    return ref_v, mean_ref, seed_std


# The scorer that trains nothing: every network at one accuracy, so that the reward ranks by the
# MACs term alone (the smallest first). Where it ranks as well as a trained scorer, the reward's
# ranking says little about the evaluator (stage 1; stage 2 chooses by accuracy).
MACS_ALONE = "MACs alone (no training: one accuracy for every network)"


def _on_accuracy(plan: Plan, ref: dict[int, list[dict[str, Any] | None]], have: list[int],
                 defaults: list[dict[str, Any] | None],
                 metrics: Callable[..., dict[str, Any]]) -> list[dict[str, Any]]:
    """The rankings on accuracy alone, which is what an evaluator contributes to the reward:
    the reference against itself, and the default proxy's one training against the reference's
    mean accuracy (while every network's is cached)."""
    acc = {s: [ref[s][i]["accuracy"] for i in have] for s in ref}
    seeds = list(acc)
    mean = [statistics.fmean(acc[s][j] for s in seeds) for j in range(len(have))]
    rows = []
    if len(seeds) >= 2:
        rows.append(metrics("reference seed vs seed", acc[seeds[0]], acc[seeds[1]]))
    if len(seeds) >= 3:
        rest = [statistics.fmean(acc[s][j] for s in seeds[1:]) for j in range(len(have))]
        rows.append(metrics(f"reference seed vs the mean of the other {len(seeds) - 1}",
                            acc[seeds[0]], rest))
    if all(defaults[i] is not None for i in have):
        rows.append(metrics(plan.default_label, [defaults[i]["accuracy"] for i in have], mean))
    return rows


def _variants(plan: Plan, cache: Cache, have: list[int], mean_ref: list[float],
              metrics: Callable[..., dict[str, Any]], *, n_boot: int) -> list[dict[str, Any]]:
    """One row per :data:`VARIANTS` proxy whose trainings are all cached: its ranking against
    the reference, its Spearman minus today's with a paired bootstrap 95% CI, and its cost in
    pixels trained (epochs x images x resolution^2) relative to today's proxy. The measured
    seconds are kept too (``relative_seconds``), but they are only comparable between
    trainings that ran under the same load."""
    rows, scores = [], []
    today = None
    for name in plan.variants:
        p = plan.variant(name)
        recs = [cache.get(plan.archs[i], plan.task(p, i), plan.search_seed(i)) for i in have]
        if any(r is None for r in recs):
            continue
        row = metrics(f"{name}: {p.train.epochs} ep x {p.train_samples:,} at {p.resolution} px",
                      [plan.value(i, r["accuracy"]) for i, r in zip(have, recs)], mean_ref)
        # pixels trained on, relative to today's (training cost grows about with them)
        row["images"] = p.train.epochs * p.train_samples * p.resolution ** 2
        row["seconds"] = sum(r["seconds"] for r in recs)
        today = today or (row if name == "today" else None)
        rows.append(row)
        scores.append([plan.value(i, r["accuracy"]) for i, r in zip(have, recs)])
    base = scores[rows.index(today)] if today else None
    for row, sc in zip(rows, scores):
        row["spearman_vs_today"] = (spearman(sc, mean_ref) - spearman(base, mean_ref)
                                    if base else float("nan"))
        row["spearman_vs_today_ci"] = (paired_diff_ci(sc, base, mean_ref, spearman, n=n_boot)
                                       if base else (float("nan"), float("nan")))
        row["relative_images"] = row["images"] / today["images"] if today else float("nan")
        row["relative_seconds"] = row["seconds"] / today["seconds"] if today else float("nan")
    return rows


def _procedure_row(plan: Plan, cache: Cache, proc: Procedure, curves: list[list[float]],
                   have: list[int], mean_ref: list[float], out: dict[str, Any],
                   metrics: Callable[..., dict[str, Any]]) -> dict[str, Any] | None:
    """The procedure's row (None while a finalist seed is missing); its race in ``out``."""
    archs = plan.archs
    result = race(_rewards(plan, curves), proc.ladder, plan.order())
    fins = top_finalists(result, proc.ladder, plan.finalists)
    seeds = {}  # per finalist whose seeds are all cached, the value of each seed
    for i in fins:
        got = [cache.get(archs[i], plan.task(proc.finalist_task, i), plan.finalist_seed(i, s))
               for s in range(plan.finalist_seeds)]
        if all(g is not None for g in got):
            seeds[i] = [plan.value(i, g["accuracy"]) for g in got]
    means = {i: mean_std(v)[0] for i, v in seeds.items()}
    epochs = result.epochs + len(fins) * plan.finalist_seeds * proc.finalist_top
    out["races"].append({"procedure": proc.label, "race_epochs": result.epochs,
                         "epochs": epochs, "finalists": [archs[i].name for i in fins],
                         "reached": result.reached,
                         "finalist_means": {archs[i].name: m for i, m in means.items()}})
    if len(means) < len(fins):
        out["missing"].setdefault("finalists", []).extend(
            archs[i].name for i in fins if i not in means)
        return None
    at = [plan.value(i, curves[i][r - 1]) for i, r in enumerate(result.reached)]
    proc_score = procedure_ranking(result, means, at=at)
    row = metrics(proc.label, [proc_score[i] for i in have], mean_ref)
    row["b0"] = max(range(len(archs)), key=lambda i: (proc_score[i], -i))
    row["epochs"] = epochs
    row["sizes"] = _sizes(plan, proc, result, fins, seeds, have, mean_ref)
    return row


def _sizes(plan: Plan, proc: Procedure, result: RaceResult, fins: list[int],
           seeds: dict[int, list[float]], have: list[int],
           mean_ref: list[float]) -> list[dict[str, Any]]:
    """What fewer finalists or seeds would have chosen, from the same runs (``seeds``: each
    finalist's value per seed): for every k <= ``finalists`` and s <= ``finalist_seeds``, the
    pick = the best mean over the first s seeds of the top k, its regret against the reference,
    and the epochs trained; k = 0 is the race's own best at the top rung (no finalists)."""
    def row(k: int, s: int, b0: int) -> dict[str, Any]:
        regret = (max(mean_ref) - mean_ref[have.index(b0)]) if b0 in have else float("nan")
        return {"finalists": k, "seeds": s, "b0": plan.archs[b0].name, "regret": regret,
                "epochs": result.epochs + k * s * proc.finalist_top}

    rows = [row(0, 0, fins[0])] if fins else []
    for k in range(1, len(fins) + 1):
        for s in range(1, plan.finalist_seeds + 1):
            means = {i: mean_std(seeds[i][:s])[0] for i in fins[:k]}
            rows.append(row(k, s, max(means, key=lambda i: (means[i], -i))))
    return rows


def _per_arch(plan: Plan, ref: dict[int, list[dict[str, Any] | None]],
              defaults: list[dict[str, Any] | None],
              curves: dict[str, list[list[float] | None]]) -> list[dict[str, Any]]:
    """Per architecture, what the cache holds for it (accuracies)."""
    out = []
    for i, a in enumerate(plan.archs):
        d = defaults[i]
        out.append({"arch": a.name, "macs": count_analytic(a).macs,
                    "proxy_resolution": plan.task(plan.default, i).resolution,
                    "reference": [None if ref[s][i] is None else ref[s][i]["accuracy"]
                                  for s in ref],
                    "default": None if d is None else d["accuracy"],
                    "curves": {k: c[i] for k, c in curves.items()}})
    return out


def _metrics(name: str, s: Sequence[float], ref: Sequence[float], *, top_ks: Sequence[int],
             n_boot: int) -> dict[str, Any]:
    return {"scorer": name, "spearman": spearman(s, ref),
            "spearman_ci": bootstrap_ci(s, ref, spearman, n=n_boot),
            "kendall": kendall(s, ref), "kendall_ci": bootstrap_ci(s, ref, kendall, n=n_boot),
            **{f"top{k}": top_overlap(s, ref, k) for k in top_ks}, "regret": regret(s, ref)}


def table(res: dict[str, Any]) -> str:
    gaps = "; ".join(f"{k}: {len(v)}" for k, v in res["missing"].items() if v) or "none"
    lines = [f"{res.get('n', 0)} architectures with a complete reference "
             f"(of {len(res['archs'])}); missing: {gaps}"]
    ks = res["top_ks"]
    head = ("| Spearman [95% CI] | Kendall [95% CI] | "
            + " | ".join(f"top-{k} overlap" for k in ks) + f" | regret ({res['select']}) |")
    rule = "|---|---|---|" + "---:|" * (len(ks) + 2)

    def cells(r: dict[str, Any]) -> str:
        (lo, hi), (klo, khi) = r["spearman_ci"], r["kendall_ci"]
        tops = " | ".join(f"{r[f'top{k}']}/{k}" for k in ks)
        return (f"| {r['scorer']} | {r['spearman']:.2f} [{lo:.2f}, {hi:.2f}] | "
                f"{r['kendall']:.2f} [{klo:.2f}, {khi:.2f}] | {tops} | {r['regret']:.4f} |")

    rows = [res[k] for k in ("ceiling", "ceiling_vs_mean", "macs_alone") if k in res]
    rows += res["rows"]
    if rows:
        lines += ["", "| scored against the reference mean " + head + " regret / ref seed-std |",
                  rule]
        lines += [f"{cells(r)} {r.get('regret_in_seed_std', float('nan')):.2f} |" for r in rows]
    for r in res["rows"]:
        if "minus_macs_alone" in r:
            lo, hi = r["minus_macs_alone_ci"]
            lines += ["", f"{r['scorer']} minus {MACS_ALONE.split(' (')[0]}: Spearman "
                          f"{r['minus_macs_alone']:+.2f} [paired 95% CI {lo:+.2f}, {hi:+.2f}]"]
    if res.get("on_accuracy"):
        lines += ["", "| on accuracy alone, against the reference's mean accuracy "
                  + head.replace(f"({res['select']})", "(accuracy)"), rule[:-len("---:|")]]
        lines += [cells(r) for r in res["on_accuracy"]]
    for r in res["races"]:
        fin = ", ".join(f"{a} {m:.4f}" for a, m in r["finalist_means"].items()) or "not trained"
        lines += ["", f"{r['procedure']}: the race trains {r['race_epochs']} epochs "
                      f"({r['epochs']} with the finalists); finalists (mean {res['select']}): "
                      f"{fin}"]
    for r in res["rows"]:
        if r.get("b0_vs_zoo"):
            wins = "; ".join(f"beats {z} in {w['b0_wins_seeds']} of {w['seeds']} reference seeds"
                             for z, w in r["b0_vs_zoo"].items())
            lines += ["", f"{r['scorer']}: its pick {r['b0']} {wins}"]
        if r.get("sizes"):
            lines += ["", f"{r['scorer']}: what fewer finalists or seeds would have chosen", "",
                      "| finalists x seeds | pick | regret | regret / ref seed-std | "
                      "epochs trained |", "|---|---|---:|---:|---:|"]
            lines += [f"| {_size_label(z)} | {z['b0']} | {z['regret']:.4f} | "
                      f"{z['regret_in_seed_std']:.2f} | {z['epochs']} |" for z in r["sizes"]]
    lines += ["", *per_arch_table(res["per_arch"])]
    if res.get("variants"):
        # seconds stay in the JSON: the variants trained under another load than today's
        lines += ["", "| proxy variant " + head + " Spearman minus today's [paired 95% CI] | "
                      "pixels trained vs today |", rule + "---:|"]
        lines += [f"{cells(r)} {r['spearman_vs_today']:+.2f} "
                  f"[{r['spearman_vs_today_ci'][0]:+.2f}, {r['spearman_vs_today_ci'][1]:+.2f}] | "
                  f"{r['relative_images']:.2f}x |" for r in res["variants"]]
    return "\n".join(lines)


def _size_label(z: dict[str, Any]) -> str:
    return ("none (the race's best)" if not z["finalists"]
            else f"{z['finalists']} x {z['seeds']}")


def per_arch_table(per_arch: list[dict[str, Any]]) -> list[str]:
    """What the cache holds per network: its MACs, proxy resolution and accuracies."""
    def acc(x: float | None) -> str:
        return "-" if x is None else f"{x:.4f}"

    procs = list(per_arch[0]["curves"]) if per_arch else []
    lines = ["| network | MMACs | proxy px | reference (accuracy per seed) | one proxy "
             "training | " + " | ".join(f"{p.split(' (')[0]}: per epoch" for p in procs) + " |",
             "|---|---:|---:|---|---:|" + "---|" * len(procs)]
    for a in per_arch:
        curves = " | ".join("-" if c is None else ", ".join(acc(x) for x in c)
                            for c in a["curves"].values())
        lines.append(f"| {a['arch']} | {a['macs'] / 1e6:.1f} | {a['proxy_resolution']} | "
                     f"{', '.join(acc(x) for x in a['reference'])} | {acc(a['default'])} | "
                     f"{curves} |")
    return lines


# ---------------------------------------------------------------------------------- main
# Stage 1's reference resolution when --ref-resolution is not given: the stable reference's.
REF_RESOLUTION = 32
# Stage 1's proxy task before bca5810 (6,000 images at 32 px), as flags: what bench_recipe's
# recipes and bench_supernet's stable-proxy means were trained on, and are keyed by in the cache.
EARLIER_TASK = ("--train-samples", "6000", "--proxy-resolution", "32")


def _task(args: argparse.Namespace, default: ProxyConfig) -> ProxyConfig:
    """The stage's proxy task: its ``default`` with the flags given (``--train-samples`` and
    ``--proxy-resolution`` default to the stage's own)."""
    return replace(default, dataset=args.dataset, data_dir=args.data_dir,
                   val_samples=args.val_samples,
                   train_samples=(default.train_samples if args.train_samples is None
                                  else args.train_samples),
                   resolution=(default.resolution if args.proxy_resolution is None
                               else args.proxy_resolution))


def _reference(args: argparse.Namespace, task: ProxyConfig) -> ProxyConfig:
    """The reference training: the proxy ``task`` (today's defaults, no recipe applied yet) on
    ``--ref-train-samples`` images for ``--ref-epochs``, with ``--ref-recipe`` (default:
    :data:`DEFAULT_REF_RECIPE` of ``--recipe``: stable-v1 for stable, else the same)."""
    base = RECIPES[args.ref_recipe or DEFAULT_REF_RECIPE[args.recipe]](task)
    return replace(base, train_samples=args.ref_train_samples,
                   train=replace(base.train, threads=args.threads, epochs=args.ref_epochs))


def stage1_plan(args: argparse.Namespace) -> Plan:
    """Stage 1: ``--archs`` networks of ``--space`` and the zoo, ranked by the reward."""
    task = _task(args, ProxyConfig())
    base = RECIPES[args.recipe](task)
    train = replace(base.train, threads=args.threads)
    # the search's own ladder: its rungs for 2 epochs and its keep fraction, unless given
    keep = args.reduction_factor or SearchConfig.reduction_factor
    # the search's default: no race (one rung, 2 epochs) unless its pruner races
    rungs = args.rungs or (None if SearchConfig.pruner != "none" else "2")
    ladder = (Ladder(parse_rungs(rungs), keep) if rungs
              else Ladder.of_epochs(2, reduction_factor=keep))
    race = (f"no race: all to epoch {ladder.top}" if len(ladder.rungs) == 1 else
            f"race on rungs {','.join(map(str, ladder.rungs))} keeping 1/{keep}")
    search = replace(base, train=replace(train, epochs=ladder.top))
    default = replace(base, train=replace(train, epochs=2))
    # the reference at its own resolution: a proxy at another resolution is scored against the
    # same (cached) reference
    reference = _reference(args, replace(task, resolution=args.ref_resolution or REF_RESOLUTION))
    archs = arch_set(args.archs or 24, seed=args.arch_seed, space=args.space)
    k = 4 if args.finalists is None else args.finalists
    s = args.finalist_seeds or 3
    fe = args.finalist_epochs
    each = "" if fe is None else f" of {fe} epochs"
    return Plan(archs=archs,
                procedures=(Procedure(f"full procedure ({race} + {k} finalists x {s} "
                                      f"seeds{each})", ladder, search, fe),),
                default=default,
                default_label=f"one 2-epoch proxy training ({task.train_samples:,} images, "
                              f"{task.resolution} px)",
                reference=reference, ref_seeds=args.ref_seeds,
                finalists=k, finalist_seeds=s, order_seed=args.order_seed,
                objective=Objective(int(float(args.target))),
                keys=tuple(a.arch_hash() for a in archs), variants=tuple(VARIANTS))


def stage2_plan(args: argparse.Namespace) -> Plan:
    """Stage 2: ``--archs`` grid points at ``--phi`` (default 1) kept by the measured constraint
    on EfficientNet-B0 at width ``--base-width``, each training at round(32 x gamma^phi) px,
    ranked by accuracy (gridsearch's default ``--select``)."""
    defaults = GridSearchConfig()
    task = _task(args, default_proxy())
    base = RECIPES[args.recipe](task)
    train = replace(base.train, threads=args.threads)
    default = replace(base, train=train)
    keep = args.reduction_factor or defaults.reduction_factor
    ladder = Ladder(parse_rungs(args.rungs or "1,3"), keep)
    search = replace(base, train=replace(train, epochs=ladder.top))
    reference = _reference(args, task)
    cheap = scale(get_model("efficientnet-b0"), width=args.base_width,
                  name=f"efficientnet-b0-w{args.base_width:g}")
    points = grid_set(args.archs or 10, base=cheap, phi=args.phi, proxy=default,
                      seed=args.arch_seed)
    k = defaults.finalists if args.finalists is None else args.finalists
    s = args.finalist_seeds or defaults.finalist_seeds
    top = default.train.epochs
    fe = args.finalist_epochs
    each = "" if fe is None else f" of {fe} epochs"
    return Plan(archs=[p.task.spec for p in points],
                procedures=(Procedure(f"full procedure, today's default ({top} epoch, no race; "
                                      f"{k} finalists x {s} seeds{each})", Ladder((top,)),
                                      default, fe),
                            Procedure(f"full procedure, ladder {ladder.to_text()} (keeping "
                                      f"1/{keep}; {k} finalists x {s} seeds{each})", ladder,
                                      search, fe)),
                default=default,
                default_label=f"today's default proxy ({top} epoch x "
                              f"{default.train_samples:,} images, 32 px x gamma)",
                reference=reference, ref_seeds=args.ref_seeds,
                finalists=k, finalist_seeds=s, order_seed=args.order_seed,
                objective=reward_objective(count_analytic(cheap).macs, args.phi),
                keys=tuple(p.task.key for p in points),
                resolutions=tuple(p.task.proxy.resolution for p in points),
                select=defaults.select, top_ks=(3, 5))


STAGES: dict[str, Callable[[argparse.Namespace], Plan]] = {"1": stage1_plan, "2": stage2_plan}
# --recipe: the proxy recipe every training of the benchmark uses: today's default (the stable
# recipe, nas.evaluate.stable_train, with zero_init_head), the stable recipe as first settled
# (without zero_init_head: what the stable reference trains with), or 0.2's, which the issue-13
# tables were measured with.
RECIPES: dict[str, Callable[[ProxyConfig], ProxyConfig]] = {
    "stable": lambda proxy: proxy,
    "stable-v1": lambda proxy: replace(proxy, zero_init_head=False),
    "legacy": legacy_proxy,
}
# The reference's recipe when --ref-recipe is not given. The stable reference (3 epochs on the
# whole training split) was begun with the stable recipe before zero_init_head and keeps it: a
# reference has to agree with itself, and its ~2,800 steps leave a start's cost small, where a
# 2-epoch proxy's ~190 do not.
DEFAULT_REF_RECIPE: dict[str, str] = {"stable": "stable-v1", "stable-v1": "stable-v1",
                                      "legacy": "legacy"}


def int_list(text: str, *, least: int, distinct: bool, what: str,
             example: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2): integers >= ``least`` (and ``distinct`` when asked), or a clean
    argparse error naming ``what`` was expected and the ``example`` to pass."""
    try:
        values = tuple(int(x) for x in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < least or (distinct and len(set(values)) != len(values)):
        raise argparse.ArgumentTypeError(f"expected {what} separated by commas, got {text!r}; "
                                         f"pass e.g. {example}")
    return values


def seed_list(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2): distinct non-negative seeds (a clean argparse error otherwise)."""
    return int_list(text, least=0, distinct=True, what="distinct non-negative integers",
                    example="--ref-seeds 0,1,2")


def _finalist_epochs(text: str) -> int:
    """--finalist-epochs: a whole number >= 1, checked by the engine's own rule."""
    try:
        epochs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of epochs >= 1, got "
                                         f"{text!r}; pass e.g. --finalist-epochs 8") from None
    try:
        FinalistPlan(1, 1, epochs)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return epochs


def _reduction_factor(text: str) -> int:
    try:
        return parse_reduction_factor(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stage", choices=tuple(STAGES), default="1",
                    help="1: networks of a space (nas search); 2: grid points (gridsearch)")
    ap.add_argument("--part", choices=PARTS, default="score")
    ap.add_argument("--recipe", choices=tuple(RECIPES), default="stable",
                    help="the proxy recipe of every training: stable (today's default), "
                         "stable-v1 (without zero_init_head) or legacy (0.2's, which the "
                         "issue-13 tables were measured with)")
    ap.add_argument("--ref-recipe", choices=tuple(RECIPES), default=None,
                    help="the reference's recipe (default: stable-v1 for --recipe stable, "
                         "else --recipe's); --recipe stable --ref-recipe legacy scores today's "
                         "proxy against 0.2's reference")
    ap.add_argument("--archs", type=int, default=None,
                    help="size of the set (default 24 networks in stage 1, 10 points in stage 2)")
    ap.add_argument("--slice", default=None, help="train only architectures A:B of the set")
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--order-seed", type=int, default=0, help="the race's trial order")
    ap.add_argument("--space", default="mnasnet", help="stage 1's search space")
    ap.add_argument("--phi", type=float, default=1.0, help="stage 2's phi")
    ap.add_argument("--base-width", type=float, default=0.25,
                    help="stage 2's base: EfficientNet-B0 at this width (as bench_gridsearch)")
    ap.add_argument("--rungs", default=None,
                    help="the ladder (default 1,2 in stage 1: the search's; 1,3 in stage 2: the "
                         "README's gridsearch --rungs example)")
    ap.add_argument("--reduction-factor", type=_reduction_factor, default=None, metavar="N",
                    help="the race keeps the best 1/N at each rung (default: the stage's own, "
                         "2 in stage 1, 3 in stage 2)")
    ap.add_argument("--finalists", type=int, default=None, help="default 4 (both stages)")
    ap.add_argument("--finalist-seeds", type=int, default=None, help="default 3 (both stages)")
    ap.add_argument("--finalist-epochs", type=_finalist_epochs, default=None, metavar="E",
                    help="epochs per finalist run (default: the search's, as nas search "
                         "--finalist-epochs)")
    ap.add_argument("--ref-epochs", type=int, default=3)
    ap.add_argument("--ref-seeds", type=seed_list, default=seed_list("0,1,2"),
                    help="reference seeds, comma-separated (default 0,1,2)")
    ap.add_argument("--ref-train-samples", type=int, default=None,
                    help="reference training images (default: the whole training split)")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--train-samples", type=int, default=None,
                    help="the proxy's training images (default: the stage's own, 12000 in "
                         "stage 1 as nas search, 6000 in stage 2 as gridsearch)")
    ap.add_argument("--val-samples", type=int, default=2000)
    ap.add_argument("--proxy-resolution", type=int, default=None,
                    help="the proxy's resolution (default: the stage's own, 24 in stage 1, 32 "
                         "x gamma in stage 2)")
    ap.add_argument("--ref-resolution", type=int, default=None,
                    help=f"stage 1's reference resolution (default {REF_RESOLUTION}, the stable "
                         f"reference's, whatever --proxy-resolution is)")
    ap.add_argument("--target", default="4e8", help="stage 1's T for the reward, in MACs")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--cache", default="benchmarks/fidelity-cache",
                    help="one small JSON file per finished training (results, committed, so a "
                         "later sitting finishes or re-scores without retraining)")
    ap.add_argument("--json", default=None, help="also write the scores here")
    return ap


def main(argv: Sequence[str] | None = None,
         evaluate: Callable[..., Any] = evaluate_proxy) -> dict[str, Any]:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    plan = STAGES[args.stage](args)
    cache = Cache(Path(args.cache))
    if cache.rekey():
        log.info("cache: files renamed to the current key")
    if args.part != "score":
        a, _, b = (args.slice or f"0:{len(plan.archs)}").partition(":")
        only = range(int(a or 0), min(int(b or len(plan.archs)), len(plan.archs)))
        t0 = time.perf_counter()
        n = run_part(plan, cache, args.part, only=only, evaluate=evaluate)
        log.info("part %s: %d training(s) in %.0f s", args.part, n, time.perf_counter() - t0)
    res = score(plan, cache, n_boot=args.bootstrap)
    print(table(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1, default=float))
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
