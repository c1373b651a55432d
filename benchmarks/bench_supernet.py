"""Supernet costs and rank quality (issue 24): training, scoring, and how well scores rank.

On Fashion-MNIST at 32 px (6,000 training images, a 2,000-image validation split held out of
the training set, as the proxy evaluator's defaults), on ``--threads`` torch threads. Parts:

- ``cost`` (default): ``--steps`` sandwich steps of :func:`nas.supernet.train_supernet`
  (largest, smallest and ``--n-random`` members per step, batch 64, channels_last; one epoch's
  time is the mean step time x the epoch's steps, ``--steps 0``: the whole epoch, measured),
  then ``--candidates`` random members scored by :func:`nas.supernet.score_candidate`
  (recalibrate batch norm on ``--calib-batches`` x ``--calib-batch-size`` training images, then
  validation accuracy on 2,000), split into calibration and evaluation time;
- ``train``: a supernet trained ``--epochs`` with ``--recipe`` (stable: the proxy's stable
  recipe; legacy: SGD 0.02), ``--rule``, ``--n-random``, ``--largest-first``; a checkpoint per
  epoch under ``--out``, with each epoch's wall and CPU seconds;
- ``rank``: trained ``--checkpoints`` scored on the fidelity benchmark's networks that are
  members of the space, against the stable proxy's 3-seed mean accuracy of each (cached by
  bench_recipe / bench_fidelity: 2 epochs x 6,000 images; not the long reference), Spearman and
  Kendall with bootstrap 95% CIs; the sandwich's ends and random members for the spread;
- ``procedure``: the same against the stable reference (3 seeds, on the reward), beside the
  default proxy on the same networks, then the supernet procedure: the best members by
  inherited reward retrained stand-alone as ``nas search``'s finalists (through the fidelity
  cache), the pick and its regret;
- ``speed``: score_candidate before and after the speed-ups and with fewer calibration and
  validation images, interleaved member by member on one checkpoint, with each scorer's
  Spearman against the full (old) scorer;
- ``dims``: the ends with one dimension changed in every stage (which dimension breaks a
  member);
- ``mixing``: supernets trained from scratch with members that differ from one fixed member
  only in the ``--free`` dimensions (which freedom stops the members from learning).

    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_supernet --space mnasnet
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_supernet --part train --epochs 3 \
        --out /tmp/snbench/stable-e3
    OMP_NUM_THREADS=1 .venv/bin/python -m benchmarks.bench_supernet --part rank \
        --checkpoints /tmp/snbench/stable-e3/epoch3.pt

With the ``cost`` defaults the accuracies it prints mean nothing (a few steps of training).
Wall and CPU (process) time are both reported: on a shared machine the wall time grows with
the load, the CPU time much less. Results: benchmarks/BENCHMARKS_supernet.md.
"""
from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from typing import Any


RECIPES = {  # the supernet's TrainConfig besides the epochs: the stable proxy recipe, or 0.2's
    "stable": dict(lr=0.05, warmup_epochs=0.2, label_smoothing=0.1, grad_clip=2.0),
    "legacy": dict(lr=0.02, warmup_epochs=0.2),
}


def write_json(path: str | None, obj: Any, *, indent: int = 1) -> None:
    """Write a part's numbers to ``--json`` when it was given."""
    if path:
        with open(path, "w") as f:
            json.dump(obj, f, indent=indent)


def load_task(a: argparse.Namespace):
    """(train, val, in_channels, num_classes) of the proxy task: the proxy evaluator's images
    (split seed 0)."""
    from nas.data import TensorSplit, load_dataset, proxy_data

    data = proxy_data(load_dataset(a.dataset), resolution=a.resolution,
                      train_samples=a.train_samples, val_samples=a.val_samples, seed=0)
    return (TensorSplit(data.train_x, data.train_y), TensorSplit(data.val_x, data.val_y),
            data.in_channels, data.num_classes)


def train_part(a: argparse.Namespace) -> int:
    """Train a supernet for ``--epochs`` with a recipe; keep a copy of the checkpoint after
    every epoch (``--out``/epoch{k}.pt) and each epoch's wall and CPU (process) seconds."""
    import shutil
    from pathlib import Path

    import torch

    from nas.supernet import SuperNet, supernet_steps, train_supernet
    from nas.train import TrainConfig
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    train, _, cin, ncls = load_task(a)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    net = SuperNet(load_space(a.space), in_channels=cin, num_classes=ncls, bn_momentum=0.1,
                   zero_init_last=not a.no_zero_init, zero_init_head=a.zero_init_head)
    recipe = dict(RECIPES[a.recipe])
    if a.lr is not None:
        recipe["lr"] = a.lr
    config = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, threads=a.threads, **recipe)
    per_epoch, _ = supernet_steps(len(train), config)
    ckpt = out / "checkpoint.pt"
    log = []
    for k in range(1, a.epochs + 1):
        t, c = time.perf_counter(), time.process_time()
        res = train_supernet(net, train, config=config, seed=0, n_random=a.n_random,
                             rule=a.rule, distill=a.distill, largest_first=a.largest_first,
                             checkpoint_path=ckpt, checkpoint_every=10_000,
                             stop_after=k * per_epoch)
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        shutil.copyfile(ckpt, out / f"epoch{k}.pt")
        last = res.history[-per_epoch:]
        row = {"epoch": k, "wall_s": wall, "cpu_s": cpu,
               "loss_largest": statistics.fmean(h.loss_largest for h in last),
               "loss_members": statistics.fmean(h.loss_members for h in last)}
        log.append(row)
        print(f"epoch {k}/{a.epochs}: {wall:.0f} s wall, {cpu:.0f} s CPU; mean loss largest "
              f"{row['loss_largest']:.3f}, others {row['loss_members']:.3f}", flush=True)
    settings = {"space": a.space, "recipe": a.recipe, **recipe, "epochs": a.epochs,
                "n_random": a.n_random, "rule": a.rule, "distill": a.distill,
                "largest_first": a.largest_first,
                "zero_init_last": not a.no_zero_init, "zero_init_head": a.zero_init_head,
                "fingerprint": res.fingerprint}
    (out / "train.json").write_text(json.dumps({"settings": settings, "epochs": log}, indent=1))
    return 0


def _fidelity():
    """benchmarks/bench_fidelity.py as a module (the benchmarks folder is not a package)."""
    import importlib.util
    from pathlib import Path

    if "bench_fidelity" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "bench_fidelity", Path(__file__).with_name("bench_fidelity.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules["bench_fidelity"] = mod
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
    return sys.modules["bench_fidelity"]


def stable_proxy_means(cache_dir: str = "benchmarks/fidelity-cache", seeds=(0, 1, 2)):
    """The fidelity benchmark's 24 networks (its stage-1 plan) and, per network, the stable
    proxy's accuracy per seed (2 epochs x 6,000 images, 32 px; seed s is trial_seed(s, arch
    hash), as bench_recipe trained them) from its cache; None where a seed is not cached."""
    from pathlib import Path

    from nas.evaluate import trial_seed

    fid = _fidelity()
    # --recipe stable, the default, on the task these were trained on (the earlier default)
    plan = fid.stage1_plan(fid.parser().parse_args(list(fid.EARLIER_TASK)))
    cache = fid.Cache(Path(cache_dir))
    accs = []
    for a in plan.archs:
        recs = [cache.get(a, plan.default, trial_seed(s, a.arch_hash())) for s in seeds]
        accs.append(None if any(r is None for r in recs) else [r["accuracy"] for r in recs])
    return plan, accs


def score_members(net, specs, *, calib, val, **kw) -> tuple[list[float], float, float]:
    """Scores of ``specs`` (score_candidate with ``kw``), and the wall and CPU seconds."""
    from nas.supernet import score_candidate

    t, c = time.perf_counter(), time.process_time()
    out = [score_candidate(net, s, calib_batches=calib, val_split=val, **kw) for s in specs]
    return out, time.perf_counter() - t, time.process_time() - c


def scoring_task(a: argparse.Namespace):
    """(space, calibration batches, validation split, in_channels, classes) that --part rank
    and --part procedure score members with: the full scorer unless --score-val or
    --calib-batches say otherwise."""
    from nas.supernet import calibration_batches, validation_subset
    from space.search_space import load_space

    train, val, cin, ncls = load_task(a)
    calib = calibration_batches(train, num_batches=a.calib_batches,
                                batch_size=a.calib_batch_size, seed=0)
    val = val if a.score_val is None else validation_subset(val, a.score_val, seed=0)
    return load_space(a.space), calib, val, cin, ncls


def trained_supernets(a: argparse.Namespace, space):
    """Each of ``--checkpoints`` as (path, supernet in eval mode and channels_last, its
    checkpoint's settings), loaded one at a time."""
    from nas.supernet import load_trained_supernet

    for path in a.checkpoints.split(","):
        net, info = load_trained_supernet(path, space)
        net.set_channels_last(True)
        yield path, net, info


def members_of(net, archs, cin: int, ncls: int) -> tuple[list[tuple[int, Any]], dict[str, str]]:
    """The ``archs`` the supernet holds, as (index, member at the task's size), and why each
    other one is not a member (its name -> the field that differs)."""
    held, outside = [], {}
    for i, spec in enumerate(archs):
        m = spec.with_task(in_channels=cin, num_classes=ncls)
        try:
            net.check_member(m)
        except ValueError as e:
            outside[spec.name] = str(e).split(" is not held")[0]
            continue
        held.append((i, m))
    return held, outside


def rank_part(a: argparse.Namespace) -> int:
    """Rank quality of trained supernets (``--checkpoints``): the fidelity benchmark's networks
    that are members of the space, scored by inheritance, against the stable proxy's 3-seed
    mean accuracy of each (not the full reference); the sandwich's ends and ``--candidates``
    random members for the spread."""
    import torch

    from space import count_analytic

    torch.set_num_threads(a.threads)
    fid = _fidelity()
    plan, accs = stable_proxy_means()
    space, calib, val, cin, ncls = scoring_task(a)
    rows = []
    for path, net, info in trained_supernets(a, space):
        held, outside = members_of(net, plan.archs, cin, ncls)
        held = [(i, m) for i, m in held if accs[i] is not None]
        members = [m for _, m in held]
        names = [plan.archs[i].name for i, _ in held]
        seed_accs = [accs[i] for i, _ in held]
        means = [statistics.fmean(acc) for acc in seed_accs]
        scores, wall, cpu = score_members(net, members, calib=calib, val=val)
        rng = random.Random(1)
        rand = [net.sample(rng) for _ in range(a.candidates)]
        rand_scores, _, _ = score_members(net, rand, calib=calib, val=val)
        ends, _, _ = score_members(net, [net.largest(), net.smallest()], calib=calib, val=val)
        macs = [count_analytic(m.replace(resolution=a.resolution)).macs for m in members]
        obj = plan.objective
        rew = [obj.reward(x, count_analytic(s).macs) for x, s in zip(scores, members)]
        ref_rew = [obj.reward(x, count_analytic(s).macs) for x, s in zip(means, members)]
        ci = lambda x, y, f: fid.bootstrap_ci(x, y, f, n=a.bootstrap)  # noqa: E731
        seed0 = [s[0] for s in seed_accs]
        rest = [statistics.fmean(s[1:]) for s in seed_accs]
        row = {
            "checkpoint": path, "step": info["step"], "total_steps": info["total_steps"],
            "settings": {k: info[k] for k in ("n_random", "rule", "train") if k in info}
            | {"largest_first": info.get("largest_first", 0.0)},
            "networks": names, "scores": scores, "stable_proxy_mean": means,
            "spearman": fid.spearman(scores, means), "spearman_ci": ci(scores, means, fid.spearman),
            "kendall": fid.kendall(scores, means), "kendall_ci": ci(scores, means, fid.kendall),
            "spearman_reward": fid.spearman(rew, ref_rew),
            "spearman_reward_ci": ci(rew, ref_rew, fid.spearman),
            "top5": fid.top_overlap(scores, means, 5), "regret_accuracy": fid.regret(scores, means),
            "macs_spearman": fid.spearman(macs, means),
            "ceiling_seed0_vs_rest": fid.spearman(seed0, rest),
            "ceiling_ci": ci(seed0, rest, fid.spearman),
            "largest": ends[0], "smallest": ends[1], "random": rand_scores,
            "not_members": outside, "score_cpu_s_per_network": cpu / len(members),
            "score_wall_s_per_network": wall / len(members),
            "calib_images": a.calib_batches * a.calib_batch_size, "val_images": len(val),
        }
        rows.append(row)
        (lo, hi), (klo, khi) = row["spearman_ci"], row["kendall_ci"]
        print(f"{path} (step {row['step']}/{row['total_steps']}): {len(names)} networks, "
              f"inherited accuracy {min(scores):.3f}-{max(scores):.3f} (median "
              f"{statistics.median(scores):.3f}); against the stable proxy's 3-seed mean: "
              f"Spearman {row['spearman']:.2f} [{lo:.2f}, {hi:.2f}], Kendall "
              f"{row['kendall']:.2f} [{klo:.2f}, {khi:.2f}], on the reward "
              f"{row['spearman_reward']:.2f}, top-5 {row['top5']}/5, regret (accuracy) "
              f"{row['regret_accuracy']:.3f}; largest {ends[0]:.3f}, smallest {ends[1]:.3f}, "
              f"{len(rand)} random members {min(rand_scores):.3f}-{max(rand_scores):.3f} "
              f"(median {statistics.median(rand_scores):.3f}); {cpu / len(members):.2f} s CPU "
              f"per network", flush=True)
    if rows:
        r = rows[0]
        print(f"for scale: MACs at {a.resolution} px against the same means: Spearman "
              f"{r['macs_spearman']:.2f}; the stable proxy's seed 0 against the mean of seeds "
              f"1-2: {r['ceiling_seed0_vs_rest']:.2f} [{r['ceiling_ci'][0]:.2f}, "
              f"{r['ceiling_ci'][1]:.2f}]")
        for name, why in rows[0]["not_members"].items():
            print(f"{name}: not a member of the {a.space} space ({why})")
        print("| network | stable proxy (3 seeds) | " + " | ".join(
            f"step {r['step']}" for r in rows) + " |")
        print("|---|---|" + "---:|" * len(rows))
        for j, n in enumerate(rows[0]["networks"]):
            print(f"| {n} | {rows[0]['stable_proxy_mean'][j]:.3f} | " + " | ".join(
                f"{r['scores'][j]:.3f}" for r in rows) + " |")
    write_json(a.json, rows)
    return 0


def reference_plan(cache_dir: str = "benchmarks/fidelity-cache"):
    """The fidelity benchmark's stage-1 plan with today's defaults (the search's task, 4
    finalists x 3 seeds, the stable reference with seeds 0, 1 and 2) and its cache."""
    from pathlib import Path

    fid = _fidelity()
    return fid.stage1_plan(fid.parser().parse_args([])), fid.Cache(Path(cache_dir))


def judge(plan, cache, idx: list[int], accs: list[float], *, finalists: int, seeds: int,
          evaluate: Any, n_boot: int = 1000) -> dict[str, Any]:
    """Inherited accuracies ``accs`` of the plan's networks ``idx``, judged against the
    plan's reference (its seeds' mean reward): Spearman, Kendall and top-5, beside the default
    proxy's one training of each (when cached); then the supernet procedure: the
    ``finalists`` best by inherited reward, each trained ``seeds`` times on the search's task
    with the engine's finalist seeds (``cache.train`` with ``evaluate`` where not cached), the
    best mean reward chosen. Regrets are against the reference's best of the whole plan, in
    reference seed-stds (the mean over networks of each one's seed std, as bench_fidelity)."""
    fid = _fidelity()
    records = fid.reference_records(plan, cache)
    if any(r is None for rs in records.values() for r in rs):
        raise SystemExit("the stable reference is not all cached: run bench_fidelity.py "
                         "--part reference first")
    every = range(len(plan.archs))
    ref_v, ref_mean, seed_std = fid.reference_values(plan, records, every)  # on the reward
    ref_acc = [statistics.fmean(records[s][i]["accuracy"] for s in records) for i in every]
    best = max(ref_mean)
    zoo = [i for i, s in enumerate(plan.archs) if s.name in fid.ZOO]
    defaults = fid.default_records(plan, cache)
    proxy = [defaults[i] for i in idx]
    inherited = [plan.reward(i, x) for i, x in zip(idx, accs)]
    ref = [ref_mean[i] for i in idx]
    ci = lambda x, y, f: fid.bootstrap_ci(x, y, f, n=n_boot)  # noqa: E731
    row: dict[str, Any] = {
        "networks": [plan.archs[i].name for i in idx], "inherited_accuracy": list(accs),
        "spearman": fid.spearman(inherited, ref), "spearman_ci": ci(inherited, ref, fid.spearman),
        "kendall": fid.kendall(inherited, ref), "kendall_ci": ci(inherited, ref, fid.kendall),
        "top5": fid.top_overlap(inherited, ref, 5), "ref_seed_std": seed_std,
        # the reward at one accuracy for all: what the MACs term ranks with no training
        "macs_alone_spearman": fid.spearman([plan.reward(i, 0.5) for i in idx], ref),
        # on accuracy alone, what an evaluator adds to the reward
        "accuracy_spearman": fid.spearman(accs, [ref_acc[i] for i in idx])}
    if all(r is not None for r in proxy):
        prox = [plan.reward(i, r["accuracy"]) for i, r in zip(idx, proxy)]
        row |= {"proxy_accuracy_spearman": fid.spearman([r["accuracy"] for r in proxy],
                                                        [ref_acc[i] for i in idx]),
                "proxy_spearman": fid.spearman(prox, ref),
                "proxy_spearman_ci": ci(prox, ref, fid.spearman),
                "minus_proxy_ci": fid.paired_diff_ci(inherited, prox, ref, fid.spearman,
                                                     n=n_boot)}
    order = sorted(range(len(idx)), key=lambda j: (-inherited[j], j))
    task = plan.procedures[0].finalist_task  # the search's, as nas search's finalists train
    means = {}
    for i in (idx[j] for j in order[:finalists]):
        got = [cache.train(plan.archs[i], plan.task(task, i), plan.finalist_seed(i, s),
                           what="finalist", evaluate=evaluate) for s in range(seeds)]
        means[i] = statistics.fmean(plan.reward(i, g["accuracy"]) for g in got)
    own, pick = idx[order[0]], max(means, key=lambda i: (means[i], -i))
    return row | {
        "own_pick": plan.archs[own].name,
        "own_regret_in_seed_std": (best - ref_mean[own]) / seed_std,
        "finalist_epochs": task.train.epochs,
        "finalists": {plan.archs[i].name: m for i, m in means.items()},
        "pick": plan.archs[pick].name, "regret_in_seed_std": (best - ref_mean[pick]) / seed_std,
        "pick_beats": {plan.archs[z].name: sum(v[pick] > v[z] for v in ref_v.values())
                       for z in zoo if z != pick},
        "ref_seeds": len(ref_v)}


def procedure_part(a: argparse.Namespace) -> int:
    """Issue 24's fidelity measurement: trained ``--checkpoints`` scored on the fidelity
    networks that are members of the space (EfficientNet-B0 and MnasNet-A1 are not members of
    mnasnet), judged against the **stable reference** (:func:`judge`), with the supernet
    procedure's ``--finalists`` x ``--finalist-seeds`` trained through the fidelity cache."""
    import torch

    from nas.evaluate import evaluate_proxy

    torch.set_num_threads(a.threads)
    plan, cache = reference_plan(a.cache)
    space, calib, val, cin, ncls = scoring_task(a)
    rows = []
    for path, net, info in trained_supernets(a, space):
        held, _ = members_of(net, plan.archs, cin, ncls)
        idx, members = [i for i, _ in held], [m for _, m in held]
        accs, _, cpu = score_members(net, members, calib=calib, val=val)
        row = {"checkpoint": path, "step": info["step"], "total_steps": info["total_steps"],
               "score_cpu_s_per_network": cpu / len(idx)} | judge(
            plan, cache, idx, accs, finalists=a.finalists, seeds=a.finalist_seeds,
            evaluate=evaluate_proxy, n_boot=a.bootstrap)
        rows.append(row)
        (lo, hi), (klo, khi) = row["spearman_ci"], row["kendall_ci"]
        print(f"{path} (step {row['step']}/{row['total_steps']}): {len(idx)} members, inherited "
              f"accuracy {min(accs):.3f}-{max(accs):.3f} (median {statistics.median(accs):.3f}),"
              f" {row['score_cpu_s_per_network']:.2f} s CPU each", flush=True)
        print(f"  against the stable reference ({row['ref_seeds']} seeds, reward): Spearman "
              f"{row['spearman']:.2f} [{lo:.2f}, {hi:.2f}], Kendall {row['kendall']:.2f} "
              f"[{klo:.2f}, {khi:.2f}], top-5 {row['top5']}/5; its own best {row['own_pick']}, "
              f"regret {row['own_regret_in_seed_std']:.2f} reference seed-stds")
        if "proxy_spearman" in row:
            plo, phi = row["proxy_spearman_ci"]
            dlo, dhi = row["minus_proxy_ci"]
            print(f"  the default proxy (one training each) on the same {len(idx)}: Spearman "
                  f"{row['proxy_spearman']:.2f} [{plo:.2f}, {phi:.2f}]; supernet minus proxy "
                  f"{row['spearman'] - row['proxy_spearman']:+.2f} [{dlo:+.2f}, {dhi:+.2f}]; "
                  f"MACs alone {row['macs_alone_spearman']:.2f}")
            print(f"  on accuracy alone, against the reference's mean accuracy: supernet "
                  f"{row['accuracy_spearman']:.2f}, the default proxy "
                  f"{row['proxy_accuracy_spearman']:.2f}")
        fin = ", ".join(f"{k} {v:.4f}" for k, v in row["finalists"].items())
        beats = "; ".join(f"beats {z} on {w} of {row['ref_seeds']} reference seeds"
                          for z, w in row["pick_beats"].items())
        print(f"  procedure: {len(row['finalists'])} finalists x {a.finalist_seeds} seeds of "
              f"{row['finalist_epochs']} epochs (mean reward): {fin}; pick {row['pick']}, "
              f"regret {row['regret_in_seed_std']:.2f} reference seed-stds; {beats}", flush=True)
    write_json(a.json, rows)
    return 0


# --part speed's scorers: (calibration batches of 128 images, validation images or None for
# all); "before" is score_candidate as it was (per batch re-sliced weights, no inference mode,
# nas.train.evaluate), the others today's.
SPEED_VARIANTS = {
    "before (512 calib, 2,000 val)": (4, None),
    "now (512 calib, 2,000 val)": (4, None),
    "512 calib, 500 val": (4, 500),
    "256 calib, 500 val": (2, 500),
    "128 calib, 500 val": (1, 500),
}


def _score_before(net, spec, *, calib, val) -> float:
    """score_candidate before the speed-ups: every batch re-slices every weight (no weight
    reuse), ``torch.no_grad`` only, and ``nas.train.evaluate`` (its extra one-image forward and
    loss)."""
    from nas.supernet import recalibrate_bn
    from nas.supernet.elastic import ElasticConvBN
    from nas.train import evaluate

    ElasticConvBN.cache_weights = False
    try:
        net.set_active(spec)
        recalibrate_bn(net, calib)
        (acc,) = evaluate(net, val, batch_size=100, channels_last=net.channels_last)
    finally:
        ElasticConvBN.cache_weights = True
    return float(acc)


def near_ends(net, n: int, rng: random.Random) -> list:
    """``n`` members between the sandwich's ends and uniform members: the largest's (even k)
    or the smallest's (odd k) choices, each stage's dimension re-drawn uniformly with
    probability 0.1, 0.2 or 0.35 in turn. After a few epochs their scores spread from chance to
    the ends' (uniform members all score near chance), so they show whether a cheaper scorer
    keeps the order of members that differ."""
    from nas.supernet.network import _extreme_params

    space = net.space
    out = []
    for k in range(n):
        params = dict(_extreme_params(space, largest=k % 2 == 0))
        p = (0.1, 0.2, 0.35)[(k // 2) % 3]
        for i, st in enumerate(space.stages):
            for d, values in st.choices.items():
                if rng.random() < p:
                    params[f"s{i}_{d}"] = rng.choice(list(values))
        out.append(net.member(params, name=f"near-{'largest' if k % 2 == 0 else 'smallest'}"))
    return out


def speed_part(a: argparse.Namespace) -> int:
    """Scoring cost before and after, interleaved member by member on one trained supernet
    (the machine is shared: each scorer's time is its sum over the same members, measured in
    the same minutes), and whether the cheaper scorers rank the members as the full one does."""
    import torch

    from nas.supernet import calibration_batches, score_candidate, validation_subset
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    fid = _fidelity()
    train, val, cin, ncls = load_task(a)
    space = load_space(a.space)
    _, net, info = next(trained_supernets(a, space))  # the first checkpoint
    plan, accs = stable_proxy_means()
    members, means = [], []
    for spec, acc in zip(plan.archs, accs):
        m = spec.with_task(in_channels=cin, num_classes=ncls)
        try:
            net.check_member(m)
        except ValueError:
            continue
        if acc is not None:
            members.append(m)
            means.append(statistics.fmean(acc))
    rng = random.Random(2)
    if a.members == "near-ends":
        members = near_ends(net, a.candidates, rng)
        means = []
    while len(members) < a.candidates:
        members.append(net.sample(rng))
    members = members[:a.candidates]
    variants = {k: v for k, v in SPEED_VARIANTS.items()
                if not (a.no_before and k.startswith("before"))}
    calibs = {k: calibration_batches(train, num_batches=k, batch_size=128, seed=0)
              for k in {c for c, _ in SPEED_VARIANTS.values()}}
    vals = {v: val if v is None else validation_subset(val, v, seed=0)
            for v in {v for _, v in SPEED_VARIANTS.values()}}
    score_candidate(net, members[0], calib_batches=calibs[4], val_split=vals[None])  # warm-up
    scores = {k: [] for k in variants}
    cpu = {k: 0.0 for k in variants}
    wall = {k: 0.0 for k in variants}
    for spec in members:
        for name, (c, v) in variants.items():
            t0, c0 = time.perf_counter(), time.process_time()
            if name.startswith("before"):
                x = _score_before(net, spec, calib=calibs[c], val=vals[v])
            else:
                x = score_candidate(net, spec, calib_batches=calibs[c], val_split=vals[v])
            wall[name] += time.perf_counter() - t0
            cpu[name] += time.process_time() - c0
            scores[name].append(x)
    base = next(iter(variants))
    full = scores[base]
    rows = []
    print(f"{len(members)} members of {a.space} ({a.members}) on {a.checkpoints.split(',')[0]} "
          f"(step {info['step']}); scores by {base}: {min(full):.3f}-{max(full):.3f}")
    nf = min(len(means), len(members))  # the fidelity networks come first
    print(f"| scorer | CPU s per candidate | wall s per candidate | CPU vs {base.split(' (')[0]} | "
          f"Spearman vs {base.split(' (')[0]} [95% CI] | Kendall | top-5 overlap | max abs diff | "
          f"Spearman vs the stable proxy ({nf} networks) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for name in variants:
        sc = scores[name]
        sp_ci = fid.bootstrap_ci(sc, full, fid.spearman, n=a.bootstrap)
        row = {"scorer": name, "cpu_s": cpu[name] / len(members),
               "wall_s": wall[name] / len(members), "cpu_ratio": cpu[name] / cpu[base],
               "spearman": fid.spearman(sc, full), "spearman_ci": sp_ci,
               "kendall": fid.kendall(sc, full), "top5": fid.top_overlap(sc, full, 5),
               "max_abs_diff": max(abs(x - y) for x, y in zip(sc, full)), "scores": sc,
               "vs_stable_proxy": fid.spearman(sc[:nf], means[:nf]) if nf >= 3 else math.nan}
        rows.append(row)
        print(f"| {name} | {row['cpu_s']:.2f} | {row['wall_s']:.2f} | {row['cpu_ratio']:.2f}x | "
              f"{row['spearman']:.3f} [{sp_ci[0]:.2f}, {sp_ci[1]:.2f}] | {row['kendall']:.3f} | "
              f"{row['top5']}/5 | {row['max_abs_diff']:.4f} | {row['vs_stable_proxy']:.2f} |",
              flush=True)
    write_json(a.json, {"checkpoint": a.checkpoints, "step": info["step"], "rows": rows,
                        "members": [m.name for m in members]})
    return 0


def init_part(a: argparse.Namespace) -> int:
    """One seeded member (``--candidates`` draws) trained alone for ``--steps`` steps with the
    stable recipe, inside the supernet and built by ``space.build``, with the builder's
    classifier init and with ``zero_init_head``: the first and last 10 steps' mean loss and the
    median gradient norm before clipping. Does a member train in the supernet as built, and
    what does the classifier's init cost a short training?"""
    import torch
    import torch.nn.functional as F

    from nas.supernet import SuperNet
    from nas.train import OPTIMIZERS, TrainConfig, lr_at
    from space.builder import build
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    train, _, cin, ncls = load_task(a)
    config = TrainConfig(epochs=1, batch_size=a.batch_size, threads=a.threads, **RECIPES["stable"])
    per_epoch = len(train) // a.batch_size
    steps = a.steps or per_epoch

    def run(model: Any) -> dict[str, float]:
        model.train()
        opt = OPTIMIZERS.get(config.optimizer)(model.parameters(), config)
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        losses, norms = [], []
        for step in range(steps):
            k = step % per_epoch
            xb, yb = train.batch(order[k * a.batch_size:(k + 1) * a.batch_size])
            for g in opt.param_groups:
                g["lr"] = lr_at(step / per_epoch, config)
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(xb), yb, label_smoothing=config.label_smoothing)
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(),
                                                              config.grad_clip)))
            opt.step()
            losses.append(float(loss))
        return {"first10": statistics.fmean(losses[:10]), "last10": statistics.fmean(losses[-10:]),
                "grad_norm_median": statistics.median(norms)}

    rows = []
    for draw in range(1, a.candidates + 1):
        for head in (False, True):
            torch.manual_seed(0)
            net = SuperNet(load_space(a.space), in_channels=cin, num_classes=ncls,
                           bn_momentum=0.1, zero_init_head=head)
            spec = net.sample(random.Random(draw))
            for where, model in (("supernet", lambda: net.set_active(spec)),
                                 ("build", lambda: build(spec, seed=0, zero_init_last=True,
                                                         zero_init_head=head))):
                r = {"draw": draw, "zero_init_head": head, "where": where, **run(model())}
                rows.append(r)
                print(f"draw {draw}, {where}, zero_init_head={head}: loss {r['first10']:.2f} -> "
                      f"{r['last10']:.2f} (first / last 10 steps), median gradient norm "
                      f"{r['grad_norm_median']:.1f}", flush=True)
    write_json(a.json, rows)
    return 0


def dims_part(a: argparse.Namespace) -> int:
    """Which dimension breaks a member: the largest and the smallest with one dimension set to
    each of its values in every stage, the rest kept, scored on a trained supernet."""
    import torch

    from nas.supernet import calibration_batches, score_candidate, validation_subset
    from nas.supernet.network import _extreme_params  # the ends' params, as the supernet's
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    train, val, _, _ = load_task(a)
    space = load_space(a.space)
    calib = calibration_batches(train, num_batches=a.calib_batches,
                                batch_size=a.calib_batch_size, seed=0)
    sub = val if a.score_val is None else validation_subset(val, a.score_val, seed=0)
    dims = [d for d in ("kernel", "se_ratio", "skip", "filters", "layers", "op")
            if len({v for st in space.stages for v in st.choices[d]}) > 1]
    out = {}
    for path, net, info in trained_supernets(a, space):
        for end in ("largest", "smallest"):
            base = _extreme_params(space, largest=end == "largest")
            acc = score_candidate(net, net.member(base), calib_batches=calib, val_split=sub)
            cells = []
            for d in dims:
                vals = sorted({v for st in space.stages for v in st.choices[d]}, key=str)
                got = []
                for v in vals:
                    p = {**base, **{f"s{i}_{d}": v for i, st in enumerate(space.stages)
                                    if v in st.choices[d]}}
                    got.append((v, score_candidate(net, net.member(p), calib_batches=calib,
                                                   val_split=sub)))
                cells.append(f"{d} " + ", ".join(f"{v}: {x:.2f}" for v, x in got))
                out[f"{path}:{end}:{d}"] = got
            print(f"{path} (step {info['step']}), the {end} ({acc:.3f}) with one dimension "
                  f"changed in every stage: " + "; ".join(cells), flush=True)
    write_json(a.json, out)
    return 0


def mixing_part(a: argparse.Namespace) -> int:
    """What stops a supernet's random members from learning: ``--steps`` steps of
    :func:`nas.supernet.train_supernet` (labels only, the stable recipe, the classifier at
    zero, ``--n-random`` + 2 members a step), each member one fixed seeded draw of the space
    (``--base-seed``) with the ``--free`` dimensions re-drawn in every stage at every member.
    Per group: the mean loss of the first and the last 10 steps, and every 20 steps. A group
    is comma-separated dimensions; ``op:a/b`` draws the op of every stage from ``a`` and
    ``b`` (one name fixes it), ``op:a/b@0+3`` only in stages 0 and 3; ``none`` re-draws
    nothing (one member trained 4 times a step). ``>`` splits a group into phases of equal
    steps that free their dimensions in turn, as Once-for-All's progressive shrinking
    (``kernel,se_ratio,skip>filters,layers>op``: the first third draws the first three, the
    second adds filters and layers, the last adds the op); its last-10 loss is then that of
    members with every phase's dimensions free. ``single`` in a group trains one member a step
    (SPOS's single path) instead of ``--n-random`` + 2: a step then costs about a quarter, so
    compare at equal CPU with four times the ``--steps``."""
    import torch

    from nas.supernet import SuperNet, train_supernet
    from nas.supernet.network import _RandomSuggester
    from nas.supernet.train import SANDWICH_RULES
    from nas.train import TrainConfig
    from space.search_space import DIMENSIONS, load_space

    torch.set_num_threads(a.threads)
    train, _, cin, ncls = load_task(a)
    space = load_space(a.space)
    base = space.sample(_RandomSuggester(random.Random(a.base_seed)))
    config = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, threads=a.threads,
                         **RECIPES[a.recipe])
    def parse(phase: str) -> tuple[list[str], list[str] | None, set[int] | None]:
        dims, ops, where = [], None, None
        for token in filter(None, phase.split(",")):
            if token.startswith("op:"):
                token, _, at = token.partition("@")
                ops = token[3:].split("/")
                where = {int(i) for i in at.split("+")} if at else None
            elif token in DIMENSIONS:
                dims.append(token)
            elif token not in ("none", "single"):
                raise SystemExit(f"--free: {token!r} is not a dimension ({', '.join(DIMENSIONS)}),"
                                 f" 'op:a/b' or 'none'")
        return dims, ops, where

    groups = []  # (group, its phases' (dims, ops, stages), members a step), checked up front
    for group in a.free.split(";"):
        k = 1 if "single" in group.replace(">", ",").split(",") else 2 + a.n_random
        groups.append((group, [parse(phase) for phase in group.split(">")], k))
    rows = []
    for group, phases, k in groups:
        step = [0]  # the rule is called once a step

        def rule(net: Any, rng: random.Random, n_random: int, phases=phases, step=step,
                 k=k) -> list:
            # the phases freed so far: their dimensions add up (the ops: the latest given)
            now = phases[:min(step[0] * len(phases) // a.steps, len(phases) - 1) + 1]
            step[0] += 1
            dims = [d for ds, _, _ in now for d in ds]
            ops, where = next(((o, w) for _, o, w in reversed(now) if o), (None, None))
            members = []
            for _ in range(k):
                params = dict(base)
                for i, st in enumerate(space.stages):
                    for d in dims:
                        params[f"s{i}_{d}"] = rng.choice(list(st.choices[d]))
                    if ops and (where is None or i in where):
                        params[f"s{i}_op"] = rng.choice(ops)
                members.append(net.member(params))
            return members

        name = f"bench-mixing:{group}"
        if name not in SANDWICH_RULES:
            SANDWICH_RULES.add(name, rule)
        torch.manual_seed(0)
        net = SuperNet(space, in_channels=cin, num_classes=ncls, bn_momentum=0.1,
                       zero_init_head=True)
        t = time.process_time()
        res = train_supernet(net, train, config=config, seed=0, n_random=a.n_random,
                             rule=name, distill="none", stop_after=a.steps)
        loss = [(h.loss_largest + h.loss_members * (k - 1)) / k for h in res.history]
        row = {"free": group, "first10": statistics.fmean(loss[:10]),
               "last10": statistics.fmean(loss[-10:]),
               "by20": [statistics.fmean(loss[i:i + 20]) for i in range(0, len(loss), 20)],
               "cpu_s": time.process_time() - t}
        rows.append(row)
        print(f"free {group}: loss {row['first10']:.3f} -> {row['last10']:.3f} (first / last 10 "
              f"of {len(loss)} steps); every 20: "
              + ", ".join(f"{x:.2f}" for x in row["by20"]) + f"; {row['cpu_s']:.0f} s CPU",
              flush=True)
    write_json(a.json, {"base": base, "rows": rows})
    return 0


def _at_least_one(text: str) -> int:
    """--finalists / --finalist-seeds of --part procedure: a whole number >= 1 (a procedure
    with no finalist, or a finalist with no seed, chooses nothing)."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}; pass "
                                         f"e.g. 4")
    return n


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--part", choices=("cost", "train", "rank", "procedure", "speed", "dims",
                                      "init", "mixing"), default="cost")
    p.add_argument("--epochs", type=int, default=2,
                   help="--part train: epochs; --part mixing: the schedule's length")
    p.add_argument("--recipe", choices=tuple(RECIPES), default="stable")
    p.add_argument("--distill", default="kl", help="nas.supernet.DISTILL_LOSSES")
    p.add_argument("--lr", type=float, default=None, help="override the recipe's")
    p.add_argument("--largest-first", type=float, default=0.0,
                   help="epochs that train the largest alone first (progressive shrinking)")
    p.add_argument("--out", default="/tmp/snbench", help="--part train: checkpoints go here")
    p.add_argument("--checkpoints", default="", help="--part rank/procedure/speed: comma-separated")
    p.add_argument("--bootstrap", type=int, default=1000)
    p.add_argument("--members", choices=("fidelity", "near-ends"), default="fidelity",
                   help="--part speed: the fidelity networks (then random members), or members "
                        "near the sandwich's ends (near_ends)")
    p.add_argument("--no-before", action="store_true",
                   help="--part speed: leave out the 'before' scorer (its scores equal 'now')")
    p.add_argument("--score-val", type=int, default=None,
                   help="--part rank/dims: score on this many validation images (default all)")
    p.add_argument("--space", default="mnasnet", help="shipped space or a space file")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--train-samples", type=int, default=6000)
    p.add_argument("--val-samples", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--n-random", type=int, default=2)
    p.add_argument("--rule", default="extremes", help="sandwich rule (nas.supernet.SANDWICH_RULES)")
    p.add_argument("--no-zero-init", action="store_true", help="zero_init_last=False")
    p.add_argument("--zero-init-head", action="store_true",
                   help="zero_init_head=True: the classifier starts at zero")
    p.add_argument("--steps", type=int, default=8, help="training steps timed (0: a full epoch)")
    p.add_argument("--candidates", type=int, default=8)
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--calib-batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--free", default="none;kernel;se_ratio;skip;filters;layers;op;filters,layers;"
                   "kernel,se_ratio,skip,filters,layers;op,kernel,se_ratio,skip,filters,layers",
                   help="--part mixing: ';'-separated groups of dimensions re-drawn per member")
    p.add_argument("--base-seed", type=int, default=123, help="--part mixing: the fixed member")
    p.add_argument("--finalists", type=_at_least_one, default=4,
                   help="--part procedure: members retrained stand-alone (nas search's default)")
    p.add_argument("--finalist-seeds", type=_at_least_one, default=3,
                   help="--part procedure: seeds per finalist (nas search's default)")
    p.add_argument("--cache", default="benchmarks/fidelity-cache",
                   help="--part procedure: the fidelity benchmark's cache")
    p.add_argument("--json", default=None, help="write the numbers here")
    a = p.parse_args(argv)
    if a.part == "train":
        return train_part(a)
    if a.part == "rank":
        return rank_part(a)
    if a.part == "procedure":
        return procedure_part(a)
    if a.part == "speed":
        return speed_part(a)
    if a.part == "dims":
        return dims_part(a)
    if a.part == "init":
        return init_part(a)
    if a.part == "mixing":
        return mixing_part(a)

    import torch

    from nas.data import TensorSplit, load_dataset, proxy_data
    from nas.supernet import (SuperNet, calibration_batches, recalibrate_bn, score_candidate,
                              train_supernet)
    from nas.train import TrainConfig, evaluate
    from space import count
    from space.search_space import load_space

    torch.set_num_threads(a.threads)
    ds = load_dataset(a.dataset)
    data = proxy_data(ds, resolution=a.resolution, train_samples=a.train_samples,
                      val_samples=a.val_samples, seed=0)
    train, val = TensorSplit(data.train_x, data.train_y), TensorSplit(data.val_x, data.val_y)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    net = SuperNet(load_space(a.space), in_channels=data.in_channels,
                   num_classes=data.num_classes, bn_momentum=0.1,
                   zero_init_last=not a.no_zero_init)
    build_s = time.perf_counter() - t0
    n_params = sum(p.numel() for p in net.parameters())
    macs = {k: count(s.replace(resolution=a.resolution), a.resolution).macs
            for k, s in (("largest", net.largest()), ("smallest", net.smallest()))}
    steps_per_epoch = math.ceil(len(train) / a.batch_size)
    config = TrainConfig(epochs=1, batch_size=a.batch_size, lr=0.02, warmup_epochs=0.2,
                         threads=a.threads)
    steps = steps_per_epoch if a.steps == 0 else min(a.steps, steps_per_epoch)
    times: list[float] = []
    cpu: list[float] = []
    last = [time.perf_counter(), time.process_time()]

    def tick(_):
        now = (time.perf_counter(), time.process_time())
        times.append(now[0] - last[0])
        cpu.append(now[1] - last[1])
        last[:] = now

    train_supernet(net, train, config=config, seed=0, n_random=a.n_random, rule=a.rule,
                   stop_after=steps, on_step=tick)
    step_s = statistics.mean(times[1:] or times)  # the first step pays for allocation
    step_cpu = statistics.mean(cpu[1:] or cpu)
    epoch_s = sum(times) if steps == steps_per_epoch else step_s * steps_per_epoch
    epoch_cpu = sum(cpu) if steps == steps_per_epoch else step_cpu * steps_per_epoch

    calib = calibration_batches(train, num_batches=a.calib_batches,
                                batch_size=a.calib_batch_size, seed=0)
    rng = random.Random(0)
    members = [net.sample(rng) for _ in range(a.candidates)]
    score_candidate(net, members[0], calib_batches=calib, val_split=val)  # warm-up
    calib_s, eval_s, total_s, total_cpu, accs = [], [], [], [], []
    for spec in members:
        t, c = time.perf_counter(), time.process_time()
        accs.append(score_candidate(net, spec, calib_batches=calib, val_split=val))
        total_s.append(time.perf_counter() - t)
        total_cpu.append(time.process_time() - c)
        t = time.perf_counter()
        recalibrate_bn(net, calib)
        calib_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        evaluate(net, val, batch_size=100, channels_last=True)
        eval_s.append(time.perf_counter() - t)
    ends = [score_candidate(net, s, calib_batches=calib, val_split=val)
            for s in (net.largest(), net.smallest())]
    per_candidate = statistics.mean(total_s)
    per_candidate_cpu = statistics.mean(total_cpu)
    row = {
        "space": a.space, "threads": a.threads, "resolution": a.resolution,
        "train_images": len(train), "val_images": len(val), "batch_size": a.batch_size,
        "n_random": a.n_random, "supernet_params": n_params, "supernet_build_s": build_s,
        "largest_macs": macs["largest"], "smallest_macs": macs["smallest"],
        "steps_timed": len(times), "step_s": step_s, "steps_per_epoch": steps_per_epoch,
        "epoch_s": epoch_s, "epoch_extrapolated": steps != steps_per_epoch,
        "step_cpu_s": step_cpu, "epoch_cpu_s": epoch_cpu,
        "score_cpu_s_per_candidate": per_candidate_cpu,
        "calib_images": a.calib_batches * a.calib_batch_size, "candidates": len(members),
        "score_s_per_candidate": per_candidate, "candidates_per_s": 1 / per_candidate,
        "calib_s_per_candidate": statistics.mean(calib_s),
        "eval_s_per_candidate": statistics.mean(eval_s),
        "score_s_min": min(total_s), "score_s_max": max(total_s),
        "rule": a.rule, "zero_init_last": not a.no_zero_init,
        "accuracy_largest": ends[0], "accuracy_smallest": ends[1], "accuracy_random": accs,
    }
    print(f"supernet over {a.space}: {n_params / 1e6:.1f}M parameters, built in {build_s:.2f} s; "
          f"members from {macs['smallest'] / 1e6:.1f}M to {macs['largest'] / 1e6:.1f}M MACs at "
          f"{a.resolution} px")
    print(f"training: {step_s:.2f} s per step ({2 + a.n_random} members, batch {a.batch_size}, "
          f"mean of {len(times)}), one epoch of {len(train)} images = {steps_per_epoch} steps "
          f"{'~' if row['epoch_extrapolated'] else ''}{epoch_s:.0f} s (CPU time {step_cpu:.2f} s "
          f"per step, {epoch_cpu:.0f} s per epoch)")
    print(f"scoring: {per_candidate:.2f} s per candidate ({1 / per_candidate:.2f} candidates/s; "
          f"min {min(total_s):.2f}, max {max(total_s):.2f}): calibration on "
          f"{row['calib_images']} images {row['calib_s_per_candidate']:.2f} s, evaluation on "
          f"{len(val)} images {row['eval_s_per_candidate']:.2f} s; CPU time "
          f"{per_candidate_cpu:.2f} s per candidate ({1 / per_candidate_cpu:.2f}/s)")
    print(f"accuracy after {len(times)} steps: largest {ends[0]:.3f}, smallest {ends[1]:.3f}, "
          f"random {', '.join(f'{x:.3f}' for x in accs)}")
    write_json(a.json, row, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
