"""How good is stage 1's evidence? Every rung of the ladder, today's default proxy and the full
procedure (ladder + finalists), scored against a long reference training (issue 13).

The architectures: EfficientNet-B0 and MnasNet-A1 (zoo members, from the efficientnet space: no
zoo network is a member of the mnasnet space), then seeded uniform members of the mnasnet space,
``--archs`` in all. The **reference** trains each on the full training split (``--ref-epochs``,
default 3) with ``--ref-seeds`` seeds (default 0,1); the Spearman between two reference seeds is
the ceiling no proxy can beat. The **ladder** is one training per architecture at the default
proxy task up to the top rung (``--rungs``, default the search's 1,2), read after every rung;
**today's default proxy** is the search's 2 epochs x 6,000 images at 32 px (the top rung when
the rungs are the default). The **full procedure** races the architectures in a seeded order
with the engine's own rule (:meth:`nas.engine.Ladder.promotes`), retrains the top
``--finalists`` with ``--finalist-seeds`` fresh seeds (the engine's finalist seeds) and ranks
the finalists by mean, then the others by the rung they reached and their score there.

Scores, on the reward ACC x (MACs/T)^-0.07 (T = ``--target``): Spearman and Kendall's tau-b with
bootstrap 95% CIs over architectures, top-5 overlap with the reference, and the regret (the
reference reward of the reference's best minus that of each one's choice), also in reference
seed-stds.

It runs in pieces and can be completed across sittings: every training is cached as one JSON
file under ``--cache`` (keyed by architecture, proxy task and seed), ``--part`` picks what to
train now (``reference``, ``ladder``, ``finalists``, or ``score`` to train nothing), and
``--slice A:B`` trains only architectures A..B-1 of the set. ``score`` uses whatever is cached
and says what is missing. ``--part variants`` trains other ways to spend the proxy's budget
(:data:`VARIANTS`: EcoNAS's images-against-epochs at equal steps, a lower resolution, half and
twice the steps) and scores each against the same reference, with its cost.

    .venv/bin/python benchmarks/bench_fidelity.py --part ladder --threads 1
    .venv/bin/python benchmarks/bench_fidelity.py --part reference --slice 0:4 --threads 1
    .venv/bin/python benchmarks/bench_fidelity.py --part score

Results go to benchmarks/BENCHMARKS_fidelity.md by hand (with the commands that produced them).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from nas.engine import Ladder, parse_rungs
from nas.engine.finalists import finalist_key, mean_std
from nas.evaluate import ProxyConfig, evaluate_proxy, trial_seed
from space import ArchSpec, count_analytic
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


def procedure_ranking(result: RaceResult, finalist_means: dict[int, float]) -> list[float]:
    """A score per architecture that orders it as the procedure does: finalists by their mean
    reward, above everyone else; the rest by the rung reached, then the reward there."""
    big = 10.0 ** 6
    out = []
    for i, (r, v) in enumerate(zip(result.reached, result.at_reached)):
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


class Cache:
    """One JSON file per finished training: a sitting that stops loses nothing finished."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def key(spec: ArchSpec | str, proxy: ProxyConfig | dict[str, Any], seed: int) -> str:
        """What the training computes: the network, the proxy task and the seed. Torch
        threads say how it runs, not what, so they are left out: a later sitting may use
        other ``--threads`` and still find it."""
        task = proxy.to_dict() if isinstance(proxy, ProxyConfig) else json.loads(
            json.dumps(proxy))
        task["train"]["threads"] = None
        arch = spec if isinstance(spec, str) else spec.arch_hash()
        blob = json.dumps({"arch": arch, "proxy": task, "seed": seed}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def rekey(self) -> int:
        """Rename every cached file to its current key (files written by an older key); the
        number renamed."""
        n = 0
        for p in sorted(self.folder.glob("*.json")):
            rec = json.loads(p.read_text())
            want = self.folder / f"{self.key(rec['arch_hash'], rec['proxy'], rec['seed'])}.json"
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
        rec = {"arch": spec.name, "arch_hash": spec.arch_hash(), "what": what, "seed": seed,
               "proxy": proxy.to_dict(), "curve": [float(e.val_accuracy) for e in res.epochs],
               "accuracy": float(res.accuracy), "seconds": float(res.seconds)}
        p = self.folder / f"{self.key(spec, proxy, seed)}.json"
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec))
        tmp.replace(p)  # atomic: a killed sitting leaves no half file
        log.info("%s %s seed %d: acc %.4f in %.0f s", what, spec.name, seed, rec["accuracy"],
                 rec["seconds"])
        return rec


@dataclass(frozen=True)
class Plan:
    archs: list[ArchSpec]
    ladder: Ladder
    search: ProxyConfig  # the ladder's training (top rung epochs)
    default: ProxyConfig  # today's default proxy
    reference: ProxyConfig
    ref_seeds: tuple[int, ...]
    finalists: int
    finalist_seeds: int
    order_seed: int
    objective: Objective

    def search_seed(self, spec: ArchSpec) -> int:
        return trial_seed(0, spec.arch_hash())

    def finalist_seed(self, spec: ArchSpec, i: int) -> int:
        return trial_seed(0, finalist_key(spec.arch_hash(), i))

    def order(self) -> list[int]:
        order = list(range(len(self.archs)))
        random.Random(self.order_seed).shuffle(order)
        return order

    def reward(self, spec: ArchSpec, accuracy: float) -> float:
        return self.objective.reward(accuracy, count_analytic(spec).macs)

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
    for i in only:
        spec = plan.archs[i]
        if part == "reference":
            for s in plan.ref_seeds:
                n += cache.get(spec, plan.reference, s) is None
                cache.train(spec, plan.reference, s, what="reference", evaluate=evaluate)
        elif part == "variants":
            for name in VARIANTS:
                proxy = plan.variant(name)
                n += cache.get(spec, proxy, plan.search_seed(spec)) is None
                cache.train(spec, proxy, plan.search_seed(spec), what=f"variant ({name})",
                            evaluate=evaluate)
        elif part == "ladder":
            for proxy, what in ((plan.search, "ladder"), (plan.default, "default proxy")):
                n += cache.get(spec, proxy, plan.search_seed(spec)) is None
                cache.train(spec, proxy, plan.search_seed(spec), what=what, evaluate=evaluate)
    if part == "finalists":
        curves = _curves(plan, cache)
        if curves is None:
            raise SystemExit("the finalists need the ladder part of every architecture first: "
                             "run --part ladder")
        for i in top_finalists(race(curves, plan.ladder, plan.order()), plan.ladder,
                               plan.finalists):
            for s in range(plan.finalist_seeds):
                seed = plan.finalist_seed(plan.archs[i], s)
                n += cache.get(plan.archs[i], plan.search, seed) is None
                cache.train(plan.archs[i], plan.search, seed, what="finalist", evaluate=evaluate)
    return n


def _curves(plan: Plan, cache: Cache) -> list[list[float]] | None:
    out = []
    for spec in plan.archs:
        rec = cache.get(spec, plan.search, plan.search_seed(spec))
        if rec is None:
            return None
        out.append([plan.reward(spec, a) for a in rec["curve"]])
    return out


# -------------------------------------------------------------------------------- scoring
def score(plan: Plan, cache: Cache, *, n_boot: int = 1000) -> dict[str, Any]:
    """The tables from the cache (nothing trained); ``missing`` says what is not there yet."""
    archs = plan.archs
    ref = {s: [cache.get(a, plan.reference, s) for a in archs] for s in plan.ref_seeds}
    have = [i for i in range(len(archs)) if all(ref[s][i] is not None for s in ref)]
    missing = {"reference": [archs[i].name for i in range(len(archs)) if i not in have]}
    curves = _curves(plan, cache)
    defaults = [cache.get(a, plan.default, plan.search_seed(a)) for a in archs]
    missing["ladder"] = [a.name for a, d in zip(archs, defaults)
                         if d is None or cache.get(a, plan.search, plan.search_seed(a)) is None]
    out: dict[str, Any] = {"archs": [a.name for a in archs], "missing": missing, "rows": [],
                           "n": len(have)}
    if len(have) < 3:
        return out
    ref_r = {s: [plan.reward(archs[i], ref[s][i]["accuracy"]) for i in have] for s in ref}
    mean_ref = [sum(ref_r[s][j] for s in ref) / len(ref) for j in range(len(have))]
    stds = [mean_std([ref_r[s][j] for s in ref])[1] for j in range(len(have))]
    seed_std = sum(stds) / len(stds) if all(math.isfinite(x) for x in stds) else float("nan")
    out.update(n=len(have), ref_mean=mean_ref, ref_seed_std=seed_std)
    out["variants"] = _variants(plan, cache, have, mean_ref, n_boot=n_boot)
    missing["variants"] = [archs[i].name for i in range(len(archs)) if i in have and any(
        cache.get(archs[i], plan.variant(v), plan.search_seed(archs[i])) is None
        for v in VARIANTS)]
    seeds = list(ref)
    if len(seeds) >= 2:
        a, b = ref_r[seeds[0]], ref_r[seeds[1]]
        out["ceiling"] = _metrics("reference seed vs seed", a, b, n_boot=n_boot)
    if curves is None or missing["ladder"]:
        return out
    rows = out["rows"]
    for r in plan.ladder.rungs:
        rows.append(_metrics(f"rung {r} (epoch {r} of {plan.ladder.top}, "
                             f"{plan.search.train_samples} images)",
                             [curves[i][r - 1] for i in have], mean_ref, n_boot=n_boot))
    rows.append(_metrics("today's default proxy (2 epochs x 6,000 images, 32 px)",
                         [plan.reward(archs[i], defaults[i]["accuracy"]) for i in have],
                         mean_ref, n_boot=n_boot))
    result = race(curves, plan.ladder, plan.order())
    fins = top_finalists(result, plan.ladder, plan.finalists)
    means, complete = {}, True
    for i in fins:
        got = [cache.get(archs[i], plan.search, plan.finalist_seed(archs[i], s))
               for s in range(plan.finalist_seeds)]
        if any(g is None for g in got):
            complete = False
            continue
        means[i] = mean_std([plan.reward(archs[i], g["accuracy"]) for g in got])[0]
    out["race_epochs"] = result.epochs
    out["finalists"] = [archs[i].name for i in fins]
    if not complete:
        missing["finalists"] = [archs[i].name for i in fins if i not in means]
        return out
    proc = procedure_ranking(result, means)
    row = _metrics(f"full procedure (ladder + {plan.finalists} finalists x "
                   f"{plan.finalist_seeds} seeds)", [proc[i] for i in have], mean_ref,
                   n_boot=n_boot)
    b0 = max(means, key=lambda i: (means[i], -i))
    row["b0"] = archs[b0].name
    row["epochs"] = result.epochs + len(fins) * plan.finalist_seeds * plan.ladder.top
    rows.append(row)
    if b0 in have:
        j = have.index(b0)
        out["b0_vs_zoo"] = {archs[i].name: {
            "b0_wins_seeds": sum(ref_r[s][j] > ref_r[s][have.index(i)] for s in ref),
            "seeds": len(ref)} for i in range(len(archs))
            if archs[i].name in ZOO and i in have and i != b0}
    out["sizes"] = _sizes(plan, cache, result, fins, have, mean_ref)
    for r in rows + out["sizes"]:
        r["regret_in_seed_std"] = (r["regret"] / seed_std if seed_std and math.isfinite(seed_std)
                                   else float("nan"))
    return out


def _sizes(plan: Plan, cache: Cache, result: RaceResult, fins: list[int], have: list[int],
           mean_ref: list[float]) -> list[dict[str, Any]]:
    """What fewer finalists or seeds would have chosen, from the same cached runs: for every
    k <= ``finalists`` and s <= ``finalist_seeds``, B0 = the best mean over the first s seeds of
    the top k, its regret against the reference, and the epochs trained; k = 0 is the search's
    own best (no finalists)."""
    def row(k: int, s: int, b0: int) -> dict[str, Any]:
        regret = (max(mean_ref) - mean_ref[have.index(b0)]) if b0 in have else float("nan")
        return {"finalists": k, "seeds": s, "b0": plan.archs[b0].name, "regret": regret,
                "epochs": result.epochs + k * s * plan.ladder.top}

    rows = [row(0, 0, fins[0])] if fins else []  # the race's best at the top rung
    for k in range(1, len(fins) + 1):
        for s in range(1, plan.finalist_seeds + 1):
            means = {i: mean_std([plan.reward(plan.archs[i], cache.get(
                plan.archs[i], plan.search, plan.finalist_seed(plan.archs[i], j))["accuracy"])
                for j in range(s)])[0] for i in fins[:k]}
            rows.append(row(k, s, max(means, key=lambda i: (means[i], -i))))
    return rows


def _variants(plan: Plan, cache: Cache, have: list[int], mean_ref: list[float], *,
              n_boot: int) -> list[dict[str, Any]]:
    """One row per :data:`VARIANTS` proxy whose trainings are all cached: its ranking against
    the reference, and its cost in pixels trained (epochs x images x resolution^2) relative to
    today's proxy. The measured seconds are kept too (``relative_seconds``), but they are only
    comparable between trainings that ran under the same load."""
    rows = []
    today = None
    for name in VARIANTS:
        p = plan.variant(name)
        recs = [cache.get(plan.archs[i], p, plan.search_seed(plan.archs[i])) for i in have]
        if any(r is None for r in recs):
            continue
        row = _metrics(f"{name}: {p.train.epochs} ep x {p.train_samples:,} at {p.resolution} px",
                       [plan.reward(plan.archs[i], r["accuracy"]) for i, r in zip(have, recs)],
                       mean_ref, n_boot=n_boot)
        # pixels trained on, relative to today's (training cost grows about with them)
        row["images"] = p.train.epochs * p.train_samples * p.resolution ** 2
        row["seconds"] = sum(r["seconds"] for r in recs)
        today = today or (row if name == "today" else None)
        rows.append(row)
    for row in rows:
        row["relative_images"] = row["images"] / today["images"] if today else float("nan")
        row["relative_seconds"] = row["seconds"] / today["seconds"] if today else float("nan")
    return rows


def _metrics(name: str, s: Sequence[float], ref: Sequence[float], *,
             n_boot: int) -> dict[str, Any]:
    return {"scorer": name, "spearman": spearman(s, ref),
            "spearman_ci": bootstrap_ci(s, ref, spearman, n=n_boot),
            "kendall": kendall(s, ref), "kendall_ci": bootstrap_ci(s, ref, kendall, n=n_boot),
            "top5": top_overlap(s, ref), "regret": regret(s, ref)}


def table(res: dict[str, Any]) -> str:
    gaps = "; ".join(f"{k}: {len(v)}" for k, v in res["missing"].items() if v) or "none"
    lines = [f"{res.get('n', 0)} architectures with a complete reference "
             f"(of {len(res['archs'])}); missing: {gaps}"]
    rows = ([res["ceiling"]] if "ceiling" in res else []) + res["rows"]
    if rows:
        lines += ["", "| scored against the reference mean | Spearman [95% CI] | Kendall [95% CI] "
                      "| top-5 overlap | regret (reward) | regret / ref seed-std |",
                  "|---|---|---|---:|---:|---:|"]
        for r in rows:
            lo, hi = r["spearman_ci"]
            klo, khi = r["kendall_ci"]
            rel = r.get("regret_in_seed_std", float("nan"))
            lines.append(f"| {r['scorer']} | {r['spearman']:.2f} [{lo:.2f}, {hi:.2f}] | "
                         f"{r['kendall']:.2f} [{klo:.2f}, {khi:.2f}] | {r['top5']}/5 | "
                         f"{r['regret']:.4f} | {rel:.2f} |")
    if res.get("sizes"):
        lines += ["", "| finalists x seeds | B0 | regret (reward) | regret / ref seed-std | "
                      "epochs trained |", "|---|---|---:|---:|---:|"]
        for r in res["sizes"]:
            what = ("none (the search's best)" if not r["finalists"]
                    else f"{r['finalists']} x {r['seeds']}")
            lines.append(f"| {what} | {r['b0']} | {r['regret']:.4f} | "
                         f"{r['regret_in_seed_std']:.2f} | {r['epochs']} |")
    if res.get("variants"):
        lines += ["", "| proxy variant | Spearman [95% CI] | Kendall [95% CI] | top-5 overlap "
                      "| regret (reward) | pixels trained vs today |",
                  "|---|---|---|---:|---:|---:|"]
        for r in res["variants"]:
            lo, hi = r["spearman_ci"]
            klo, khi = r["kendall_ci"]
            lines.append(f"| {r['scorer']} | {r['spearman']:.2f} [{lo:.2f}, {hi:.2f}] | "
                         f"{r['kendall']:.2f} [{klo:.2f}, {khi:.2f}] | {r['top5']}/5 | "
                         f"{r['regret']:.4f} | {r['relative_images']:.2f}x |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------- main
def make_plan(args: argparse.Namespace) -> Plan:
    base = ProxyConfig(dataset=args.dataset, data_dir=args.data_dir,
                       train_samples=args.train_samples, val_samples=args.val_samples,
                       resolution=args.proxy_resolution)
    train = replace(base.train, threads=args.threads)
    ladder = Ladder(parse_rungs(args.rungs)) if args.rungs else Ladder.of_epochs(2)
    search = replace(base, train=replace(train, epochs=ladder.top))
    default = replace(base, train=replace(train, epochs=2))
    reference = replace(base, train_samples=args.ref_train_samples,
                        train=replace(train, epochs=args.ref_epochs))
    return Plan(archs=arch_set(args.archs, seed=args.arch_seed, space=args.space),
                ladder=ladder, search=search, default=default, reference=reference,
                ref_seeds=tuple(int(s) for s in args.ref_seeds.split(",")),
                finalists=args.finalists, finalist_seeds=args.finalist_seeds,
                order_seed=args.order_seed, objective=Objective(int(float(args.target))))


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, default="score")
    ap.add_argument("--archs", type=int, default=24, help="size of the architecture set")
    ap.add_argument("--slice", default=None, help="train only architectures A:B of the set")
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--order-seed", type=int, default=0, help="the race's trial order")
    ap.add_argument("--space", default="mnasnet")
    ap.add_argument("--rungs", default=None, help="the ladder (default 1,2: the search's)")
    ap.add_argument("--finalists", type=int, default=4)
    ap.add_argument("--finalist-seeds", type=int, default=3)
    ap.add_argument("--ref-epochs", type=int, default=3)
    ap.add_argument("--ref-seeds", default="0,1")
    ap.add_argument("--ref-train-samples", type=int, default=None,
                    help="reference training images (default: the whole training split)")
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--train-samples", type=int, default=6000)
    ap.add_argument("--val-samples", type=int, default=2000)
    ap.add_argument("--proxy-resolution", type=int, default=32)
    ap.add_argument("--target", default="4e8", help="T for the reward, in MACs")
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
    plan = make_plan(args)
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
