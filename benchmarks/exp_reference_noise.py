"""Experiment (issue 23): how much of the stable reference's seed spread is its 2,000-image sample?

The stable reference's seeds agree on the 24 networks' accuracies at only Spearman 0.56
(BENCHMARKS_fidelity.md). A seed's accuracy moves for two reasons: its training lands elsewhere
(the training draw), and the 2,000 held-out images it is scored on are a sample (the networks of
two seeds get different images wrong). Only the first needs more seeds; the second shrinks with
more images scored, which costs forward passes.

``--part train`` retrains named networks of the fidelity set on the reference task with the
reference's own seeds at one thread (its held-out accuracy is printed beside the fidelity
cache's: the same training, up to the order of float sums on another machine), and keeps which
images each one gets right, on the 2,000 held-out images and on the dataset's 10,000-image test
split (never used by the search). ``--part report`` splits the seed variance with them and
projects the reference's agreement with itself on more images or seeds. ``--task proxy`` does
the same for the search's proxy task with the engine's finalist seeds, and projects the noise in
the finalists' choice against the held-out split's size::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_reference_noise.py --part train \\
        --archs mnasnet-5,mnasnet-22 --seeds 0,1
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_reference_noise.py --part report \\
        --ref-seeds 0,1,2,3   # measured beside expected: 2 seeds a side needs 4 cached
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/exp_reference_noise.py --part train \\
        --task proxy --archs mnasnet-10,mnasnet-22 --seeds 0,1,2

The split: two seeds' accuracies on the same n images differ by the training draw plus a sample
term whose variance is ``d / n`` (d: the share of images exactly one of them gets right), so one
seed's sample variance is ``d / 2n``; two networks' seed means differ by a sample term every seed
shares, ``(D - d) / n`` (D: the same share between two networks). What is left of the seed
variance is the training draw's. The hits are kept in ``benchmarks/reference-noise/TASK/``.
Results: BENCHMARKS_fidelity.md, "How much of the spread is the 2,000 held-out images".
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench_fidelity as bf  # noqa: E402

from nas.proxy import ProxyConfig  # noqa: E402
from space.stats import mean_std  # noqa: E402

CACHE = Path(__file__).resolve().parent / "reference-noise"


# ----------------------------------------------------------------------- what one training keeps
def pack(hits: Sequence[bool]) -> str:
    """Per-image hits (True: right) as hex, 4 images a digit, the first image highest."""
    bits = "".join("1" if h else "0" for h in hits)
    bits += "0" * (-len(bits) % 4)
    return "".join(f"{int(bits[i:i + 4], 2):x}" for i in range(0, len(bits), 4))


def unpack(text: str, n: int) -> list[bool]:
    """:func:`pack`'s inverse for ``n`` images."""
    bits = "".join(f"{int(c, 16):04b}" for c in text)
    if len(bits) < n:
        raise ValueError(f"{len(text)} hex digits hold {len(bits)} images, not {n}")
    return [b == "1" for b in bits[:n]]


@torch.no_grad()
def hits(model: torch.nn.Module, split: Any, *, batch_size: int = 500) -> list[bool]:
    """Which images of ``split`` (``len`` and ``batch(idx)``) ``model`` classifies right."""
    model.eval()
    out: list[bool] = []
    for start in range(0, len(split), batch_size):
        x, y = split.batch(slice(start, start + batch_size))
        x = x.contiguous(memory_format=torch.channels_last)
        out += model(x).argmax(dim=1).eq(y).tolist()
    return out


# --------------------------------------------------------------------------- the decomposition
def disagreement(a: Sequence[bool], b: Sequence[bool]) -> float:
    """The share of images exactly one of ``a`` and ``b`` gets right."""
    if len(a) != len(b) or not a:
        raise ValueError(f"expected two equal, non-empty hit lists, got {len(a)} and {len(b)}")
    return sum(x != y for x, y in zip(a, b)) / len(a)


def pooled_var(groups: Sequence[Sequence[float]]) -> float:
    """The within-group variance (ddof 1) pooled over the groups of 2 or more values."""
    num = sum(sum((x - sum(g) / len(g)) ** 2 for x in g) for g in groups if len(g) > 1)
    dof = sum(len(g) - 1 for g in groups if len(g) > 1)
    if dof == 0:
        raise ValueError("no network has two seeds: train a second seed first")
    return num / dof


@dataclass(frozen=True)
class Disagreement:
    """Mean disagreements on one split: ``seeds`` between two seeds of one network (d),
    ``networks`` between two networks at one seed (D)."""

    images: int
    seeds: float
    networks: float

    def seed_sample_var(self, n: int) -> float:
        """The sample's part of one seed's accuracy variance, scored on ``n`` images: d / 2n."""
        return self.seeds / (2 * n)

    def network_sample_var(self, n: int) -> float:
        """The sample's part of the variance between networks' seed means that every seed
        shares (the images favour some networks): (D - d) / 2n."""
        return max(self.networks - self.seeds, 0.0) / (2 * n)


def disagreements(runs: dict[str, dict[int, list[bool]]]) -> Disagreement:
    """``runs``: per network, per seed, the hits on one split (every list as long)."""
    within = [disagreement(a, b) for seeds in runs.values()
              for a, b in itertools.combinations(seeds.values(), 2)]
    across = [disagreement(runs[x][s], runs[y][s]) for x, y in itertools.combinations(runs, 2)
              for s in set(runs[x]) & set(runs[y])]
    if not within or not across:
        raise ValueError("need two seeds of one network and two networks at one seed")
    n = len(next(iter(next(iter(runs.values())).values())))
    return Disagreement(images=n, seeds=sum(within) / len(within),
                        networks=sum(across) / len(across))


@dataclass(frozen=True)
class Reference:
    """The reference's accuracies parted into variances (of one seed's accuracy): ``between``
    the networks' true accuracies, ``training`` one seed's training draw, and the sample terms
    of :class:`Disagreement` at the number of images scored."""

    between: float
    training: float
    sample: Disagreement

    @classmethod
    def fit(cls, accuracies: Sequence[Sequence[float]], n: int, sample: Disagreement) -> Reference:
        """From per-network accuracies over the same seeds, scored on ``n`` images: the
        pooled seed variance less its sample part is the training's; the variance of the seed
        means less what the seeds and the shared sample add is the true between-network one."""
        seed_var = pooled_var(accuracies)
        means = [sum(g) / len(g) for g in accuracies]
        k = min(len(g) for g in accuracies)
        spread = mean_std(means)[1] ** 2
        return cls(between=max(spread - seed_var / k - sample.network_sample_var(n), 0.0),
                   training=max(seed_var - sample.seed_sample_var(n), 0.0), sample=sample)

    def agreement(self, n: int, seeds: int = 1) -> float:
        """The expected Pearson correlation of two independent means of ``seeds`` seeds each,
        both scored on the same ``n`` images."""
        shared = self.between + self.sample.network_sample_var(n)
        return shared / (shared + (self.training + self.sample.seed_sample_var(n)) / seeds)


def spearman_of(pearson: float) -> float:
    """The Spearman correlation of a bivariate normal with this Pearson one."""
    return 6 / math.pi * math.asin(pearson / 2)


def finalist_gap_std(training: float, sample: Disagreement, n: int, seeds: int) -> float:
    """The std that noise gives the difference of two networks' means over ``seeds`` seeds each,
    all scored on the same ``n`` images: each mean's training and own sample terms, and each
    network's shared sample term."""
    return math.sqrt(2 * (training + sample.seed_sample_var(n)) / seeds
                     + 2 * sample.network_sample_var(n))


# ------------------------------------------------------------------------------------- the parts
@dataclass(frozen=True)
class Task:
    """What the experiment trains: the proxy task of the fidelity plan, and the training seed of
    architecture i's k-th seed."""

    proxy: Callable[[bf.Plan], ProxyConfig]
    seed: Callable[[bf.Plan, int, int], int]


TASKS: dict[str, Task] = {
    # the stable reference, with its own seeds 0, 1, 2, ...
    "reference": Task(lambda plan: plan.reference, lambda plan, i, k: k),
    # the search's proxy task, with the seeds the engine gives architecture i's finalist runs
    "proxy": Task(lambda plan: plan.default, lambda plan, i, k: plan.finalist_seed(i, k)),
}


def _fidelity(ref_seeds: Sequence[int] = (0, 1, 2)) -> tuple[bf.Plan, bf.Cache]:
    fid = bf.parser().parse_args(["--threads", "1",
                                  "--ref-seeds", ",".join(map(str, ref_seeds))])
    return bf.stage1_plan(fid), bf.Cache(Path(fid.cache))


def train(task: str, names: Sequence[str], seeds: Sequence[int], *, folder: Path = CACHE) -> None:
    from nas.data import load_dataset, proxy_data, test_data
    from nas.data.ondevice import TensorSplit
    from nas.evaluate import prepare_proxy, train_proxy

    plan, cache = _fidelity()
    index = {a.name: i for i, a in enumerate(plan.archs)}
    folder = folder / task
    folder.mkdir(parents=True, exist_ok=True)
    tests: dict[ProxyConfig, TensorSplit] = {}  # the test split, built once per task

    def test_split(proxy: ProxyConfig) -> TensorSplit:
        if proxy not in tests:
            ds = load_dataset(proxy.dataset, data_dir=proxy.data_dir)
            data = proxy_data(ds, resolution=proxy.resolution,
                              train_samples=proxy.train_samples,
                              val_samples=proxy.val_samples, seed=0)
            tests[proxy] = TensorSplit(*test_data(ds, resolution=proxy.resolution,
                                                  normalize_like=data))
        return tests[proxy]

    for name, k in itertools.product(names, seeds):
        out = folder / f"{name}-seed{k}.json"
        if out.exists():
            continue
        i = index[name]
        spec, proxy, seed = plan.archs[i], plan.task(TASKS[task].proxy(plan), i), \
            TASKS[task].seed(plan, i, k)
        test = test_split(proxy)
        run = prepare_proxy(spec, proxy, seed=seed)
        res = train_proxy(run, proxy, seed=seed)
        val_hits, test_hits = hits(run.model, run.val), hits(run.model, test)
        cached = cache.get(spec, proxy, seed)
        rec = {"arch": name, "seed": k, "train_seed": seed, "accuracy": res.accuracy,
               "cached_accuracy": None if cached is None else cached["accuracy"],
               "val_accuracy": sum(val_hits) / len(val_hits),
               "test_accuracy": sum(test_hits) / len(test_hits), "seconds": res.seconds,
               "val": {"n": len(val_hits), "hits": pack(val_hits)},
               "test": {"n": len(test_hits), "hits": pack(test_hits)}}
        out.write_text(json.dumps(rec) + "\n")
        print(f"{task} {name} seed {k}: held-out {rec['val_accuracy']:.4f} (fidelity cache "
              f"{rec['cached_accuracy']}), test {rec['test_accuracy']:.4f}, "
              f"{res.seconds:.0f} s", flush=True)


def load(folder: Path) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for p in sorted(folder.glob("*.json")):
        rec = json.loads(p.read_text())
        runs.setdefault(rec["arch"], []).append(rec)
    return runs


def report(task: str, folder: Path = CACHE, *, ref_seeds: Sequence[int] = (0, 1, 2)) -> str:
    runs = load(folder / task)
    if not runs:
        raise SystemExit(f"nothing trained for --task {task} in {folder / task}: run --part "
                         f"train first")
    lines = [f"--task {task}", "",
             "| network | seed | held-out (2,000) | fidelity cache | test (10,000) | s |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, recs in runs.items():
        for r in recs:
            lines.append(f"| {name} | {r['seed']} | {r['val_accuracy']:.4f} | "
                         f"{r['cached_accuracy']} | {r['test_accuracy']:.4f} | "
                         f"{r['seconds']:.0f} |")
    dis, training = {}, {}
    lines += ["", "| scored on | seed vs seed disagreement (d) | network vs network (D) | one "
              "seed's std (its sample's share of the variance) | training's std |",
              "|---|---:|---:|---:|---:|"]
    for s in ("val", "test"):
        dis[s] = d = disagreements({a: {r["seed"]: unpack(r[s]["hits"], r[s]["n"])
                                        for r in recs} for a, recs in runs.items()})
        seed_var = pooled_var([[r[f"{s}_accuracy"] for r in recs] for recs in runs.values()])
        training[s] = max(seed_var - d.seed_sample_var(d.images), 0.0)
        lines.append(f"| {d.images:,} images ({s}) | {d.seeds:.4f} | {d.networks:.4f} | "
                     f"{seed_var ** 0.5:.4f} ({d.seed_sample_var(d.images) / seed_var:.0%}) | "
                     f"{training[s] ** 0.5:.4f} |")
    return "\n".join(lines + ["", *PROJECTIONS[task](dis["test"], training["test"],
                                                     tuple(ref_seeds))])


def measured_agreement(accuracies: Sequence[Sequence[float]], k: int) -> tuple[float, float]:
    """Over every split of the seeds into two disjoint groups of ``k``, the mean Pearson and
    Spearman between the networks' means over each group (``accuracies``: per network, per
    seed)."""
    seeds = range(len(accuracies[0]))
    rows = []
    for a in itertools.combinations(seeds, k):
        rest = [x for x in seeds if x not in a]
        for b in itertools.combinations(rest, k):
            if a < b:  # each unordered split once
                ma = [sum(g[x] for x in a) / k for g in accuracies]
                mb = [sum(g[x] for x in b) / k for g in accuracies]
                rows.append((bf.pearson(ma, mb), bf.spearman(ma, mb)))
    if not rows:
        raise ValueError(f"{len(accuracies[0])} seeds hold no two groups of {k}")
    return sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows)


def _reference_projection(sample: Disagreement, training_here: float,
                          ref_seeds: tuple[int, ...]) -> list[str]:
    """The whole cached reference (24 networks, 2,000 held-out images) parted with this
    disagreement, and the seed-vs-seed agreement expected on more images or seeds, beside the
    one measured where the cache holds the seeds."""
    plan, cache = _fidelity(ref_seeds)
    ref = bf.reference_records(plan, cache)
    full = [[ref[s][i]["accuracy"] for s in plan.ref_seeds] for i in range(len(plan.archs))
            if all(ref[s][i] is not None for s in plan.ref_seeds)]
    n = plan.reference.val_samples
    model = Reference.fit(full, n, sample)
    seed_var = pooled_var(full)
    pairs = [bf.pearson([g[a] for g in full], [g[b] for g in full])
             for a, b in itertools.combinations(range(len(plan.ref_seeds)), 2)]
    lines = [f"The reference as cached ({len(full)} networks x {len(plan.ref_seeds)} seeds, "
             f"{n:,} images): one seed's std {seed_var ** 0.5:.4f}, of which the sample's "
             f"{model.sample.seed_sample_var(n) / seed_var:.0%} of the variance; training std "
             f"{model.training ** 0.5:.4f} (on the networks above, from the test split: "
             f"{training_here ** 0.5:.4f}); true between-network std {model.between ** 0.5:.4f} "
             f"(the sample adds {model.sample.network_sample_var(n) ** 0.5:.4f}). Seed vs seed, "
             f"measured: Pearson {', '.join(f'{x:.2f}' for x in pairs)}.", "",
             "| scored on | seeds a side | expected seed-vs-seed Pearson | as Spearman | "
             "measured: Pearson, Spearman |", "|---|---:|---:|---:|---|"]
    for images in (n, 10000, 50000):
        for k in (1, 2, 4, 8):
            r = model.agreement(images, k)
            got = (", ".join(f"{x:.2f}" for x in measured_agreement(full, k))
                   if images == n and 2 * k <= len(plan.ref_seeds) else "-")
            lines.append(f"| {images:,} images | {k} | {r:.2f} | {spearman_of(r):.2f} | "
                         f"{got} |")
    return lines


def _proxy_projection(sample: Disagreement, training: float,
                      ref_seeds: tuple[int, ...]) -> list[str]:
    """What the held-out split's size does to the finalists' choice: the noise in the gap
    between two finalists' means."""
    lines = ["| held-out images | noise std of two finalists' gap in mean accuracy, 1 / 3 / 6 "
             "seeds |", "|---:|---|"]
    for n in (2000, 5000, 10000, 20000):
        gaps = " / ".join(f"{finalist_gap_std(training, sample, n, k):.4f}" for k in (1, 3, 6))
        lines.append(f"| {n:,} | {gaps} |")
    return lines


def cost(names: Sequence[str], sizes: Sequence[int], *, rounds: int = 2) -> str:
    """Seconds of one proxy training (the search's task, the first finalist seed) per held-out
    size, the sizes interleaved in every round, and each size's total over the first's."""
    import time

    from nas.evaluate import evaluate_proxy

    plan, _ = _fidelity()
    index = {a.name: i for i, a in enumerate(plan.archs)}
    took = {n: 0.0 for n in sizes}
    for _ in range(rounds):
        for name in names:
            i = index[name]
            for n in sizes:
                proxy = replace(plan.task(plan.default, i), val_samples=n)
                t0 = time.perf_counter()
                evaluate_proxy(plan.archs[i], proxy, seed=plan.finalist_seed(i, 0))
                took[n] += time.perf_counter() - t0
    runs = rounds * len(names)
    return "\n".join(["| held-out images | seconds per training | vs the first |",
                      "|---:|---:|---:|"] + [f"| {n:,} | {took[n] / runs:.1f} | "
                                            f"{took[n] / took[sizes[0]]:.2f}x |" for n in sizes])


PROJECTIONS: dict[str, Callable[[Disagreement, float, tuple[int, ...]], list[str]]] = {
    "reference": _reference_projection, "proxy": _proxy_projection}


def size_list(text: str) -> tuple[int, ...]:
    """'2000,10000' -> (2000, 10000): held-out sizes >= 1 (a clean argparse error otherwise)."""
    return bf.int_list(text, least=1, distinct=False, what="whole numbers of images >= 1",
                       example="--sizes 2000,10000")


def seed_indices(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2): distinct seed indices >= 0 (a clean argparse error otherwise)."""
    return bf.int_list(text, least=0, distinct=True, what="distinct non-negative integers",
                       example="--seeds 0,1,2")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("train", "report", "cost"), default="report")
    p.add_argument("--task", choices=tuple(TASKS), default="reference",
                   help="reference: the stable reference and its seeds; proxy: the search's "
                        "proxy task and the engine's finalist seeds")
    p.add_argument("--archs", default=None, help="names of the fidelity set, comma-separated")
    p.add_argument("--sizes", type=size_list, default=size_list("2000,10000"),
                   help="--part cost: held-out sizes to time (default 2000,10000)")
    p.add_argument("--ref-seeds", type=bf.seed_list, default=bf.seed_list("0,1,2"),
                   help="--part report: the cached reference seeds the projection reads")
    p.add_argument("--seeds", type=seed_indices, default=seed_indices("0,1"),
                   help="seed indices (default 0,1): the reference's seeds, or the finalist runs")
    a = p.parse_args(argv)
    if a.part in ("train", "cost"):
        names = [] if a.archs is None else a.archs.split(",")
        known = {x.name for x in _fidelity()[0].archs}
        if not names or set(names) - known:
            p.error(f"--archs: expected names of the fidelity set ({', '.join(sorted(known))}), "
                    f"got {a.archs!r}; pass e.g. --archs mnasnet-5,mnasnet-22")
        torch.set_num_threads(1)
        if a.part == "cost":
            print(cost(names, a.sizes))
        else:
            train(a.task, names, a.seeds)
    else:
        print(report(a.task, ref_seeds=a.ref_seeds))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
