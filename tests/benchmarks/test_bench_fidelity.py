"""benchmarks/bench_fidelity.py: its statistics on worked numbers, its race against the engine's
rule, and a tiny end-to-end run that resumes from its cache and trains nothing twice."""
from __future__ import annotations

from dataclasses import replace

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from nas.engine import Ladder

HERE = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fidelity.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_fidelity", HERE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_fidelity"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop("bench_fidelity", None)


def test_rank_statistics_match_worked_numbers(bench):
    a = [1, 2, 3, 4, 5]
    assert bench.spearman(a, [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert bench.spearman(a, a[::-1]) == pytest.approx(-1.0)
    # pairs: 10; one discordant (4,5 vs 8,7), one tie in b (3 and 5 both 7): tau-b
    # = (8 - 1) / sqrt(9 * 10)
    assert bench.kendall(a, [5, 6, 7, 8, 7]) == pytest.approx(7 / math.sqrt(90))
    assert bench.kendall(a, a) == pytest.approx(1.0)
    assert bench.top_overlap([5, 4, 3, 2, 1, 0], [0, 4, 3, 2, 1, 5], k=2) == 1
    # the best by score is index 0, whose reference is 0.6; the reference's best is 0.9
    assert bench.regret([0.9, 0.1, 0.5], [0.6, 0.9, 0.7]) == pytest.approx(0.3)


def test_the_bootstrap_interval_brackets_the_estimate(bench):
    import random

    rng = random.Random(0)
    ref = [rng.random() for _ in range(30)]
    noisy = [r + rng.gauss(0, 0.1) for r in ref]
    rho = bench.spearman(noisy, ref)
    lo, hi = bench.bootstrap_ci(noisy, ref, bench.spearman, n=300)
    assert lo <= rho <= hi and hi - lo > 0.01 and hi <= 1.0


def test_the_race_follows_the_engines_rule(bench):
    ladder = Ladder((1, 3))
    # rewards after epochs 1, 2, 3; trial order 0, 1, 2, 3
    curves = [[0.5, 0.6, 0.7], [0.4, 0.5, 0.9], [0.6, 0.6, 0.6], [0.55, 0.6, 0.65]]
    res = bench.race(curves, ladder, [0, 1, 2, 3])
    # 0: first at rung 1, goes on. 1: 0.4 < 0.5 (keep 1 of 2): stops. 2: 0.6 best of 3: on.
    # 3: 0.55 with [0.5, 0.4, 0.6]: keep 1 of 4: stops.
    assert res.reached == [3, 1, 3, 1] and res.epochs == 3 + 1 + 3 + 1
    assert res.at_reached == [0.7, 0.4, 0.6, 0.55]
    assert bench.top_finalists(res, ladder, 1) == [0]
    order = bench.procedure_ranking(res, {2: 0.99})
    assert sorted(range(4), key=lambda i: -order[i]) == [2, 0, 3, 1]


TINY = ["--dataset", "synthetic", "--space", "{space}", "--archs", "5", "--train-samples",
        "120", "--val-samples", "60", "--proxy-resolution", "16", "--ref-resolution", "16",
        "--ref-epochs", "2", "--ref-train-samples", "240", "--ref-seeds", "0,1",
        "--finalists", "2", "--finalist-seeds", "2", "--threads", "1", "--bootstrap", "50",
        "--target", "2e6",
        "--rungs", "1,2"]  # a race (stage 1's default has none), so the race is exercised


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, *a, **kw):
        from nas.evaluate import evaluate_proxy

        self.calls += 1
        return evaluate_proxy(*a, **kw)


def test_a_tiny_benchmark_runs_in_pieces_from_its_cache(bench, tmp_path, tiny_space_file,
                                                        monkeypatch):
    space = tiny_space_file
    args = [a.format(space=space) for a in TINY] + ["--cache", str(tmp_path / "cache")]
    monkeypatch.setattr(bench, "ZOO", ())  # no zoo networks in a tiny run: ImageNet-sized
    ev = Counting()
    res = bench.main(["--part", "ladder", "--slice", "0:3", *args], evaluate=ev)
    assert ev.calls == 3 and res["missing"]["ladder"] and not res["rows"]  # 2 archs to go
    bench.main(["--part", "ladder", *args], evaluate=ev)
    assert ev.calls == 5  # the first three came from the cache
    with pytest.raises(SystemExit, match="--part ladder"):  # the finalists need the race
        bench.main(["--part", "finalists", *args[:-2], "--cache", str(tmp_path / "empty")],
                   evaluate=ev)
    bench.main(["--part", "finalists", *args], evaluate=ev)
    assert ev.calls == 5 + 4  # 2 finalists x 2 seeds
    res = bench.main(["--part", "reference", *args], evaluate=ev)
    assert ev.calls == 9 + 10  # 5 archs x 2 seeds
    names = [r["scorer"] for r in res["rows"]]
    assert names[:2] == ["rung 1 (epoch 1 of 2, 120 images)", "rung 2 (epoch 2 of 2, 120 images)"]
    assert names[2] == "one 2-epoch proxy training (120 images, 16 px)"
    assert names[3].startswith("full procedure")
    for r in [res["ceiling"], *res["rows"]]:
        assert -1 <= r["spearman"] <= 1 and r["spearman_ci"][0] <= r["spearman_ci"][1]
        assert 0 <= r["top5"] <= 5 and r["regret"] >= 0
    proc, race = res["rows"][3], res["races"][0]
    sizes = proc["sizes"]  # what fewer finalists or seeds would have chosen, from the cache
    assert [(r["finalists"], r["seeds"]) for r in sizes] == [(0, 0), (1, 1), (1, 2), (2, 1),
                                                             (2, 2)]
    assert sizes[-1]["b0"] == proc["b0"] and sizes[-1]["regret"] == pytest.approx(proc["regret"])
    assert sizes[-1]["epochs"] == proc["epochs"] == race["race_epochs"] + 2 * 2 * 2
    assert sizes[0]["b0"] == race["finalists"][0]  # no finalists: the race's best at the top
    assert sizes[0]["epochs"] == race["race_epochs"]
    again = bench.main(["--part", "score", *args], evaluate=ev)
    assert ev.calls == 19  # scoring trains nothing, and gives the same numbers
    assert json.dumps(again["rows"]) == json.dumps(res["rows"])
    # today's default proxy is a variant too, and the ladder part trained it already
    assert [r["scorer"] for r in res["variants"]] == ["today: 2 ep x 120 at 16 px"]
    assert len(res["missing"]["variants"]) == 5
    res = bench.main(["--part", "variants", *args], evaluate=ev)
    # 7 variants x 5 archs, less today's (the default proxy, cached by the ladder part)
    assert len(bench.VARIANTS) == 7
    assert ev.calls == 19 + 5 * 6 and not res["missing"]["variants"]
    rows = {r["scorer"].split(":")[0]: r for r in res["variants"]}
    assert list(rows) == list(bench.VARIANTS)
    assert rows["today"]["spearman"] == res["rows"][2]["spearman"]  # the default proxy's row
    assert rows["today"]["relative_images"] == 1.0
    assert rows["today"]["spearman_vs_today"] == 0 and rows["today"]["spearman_vs_today_ci"] == (0, 0)
    assert rows["same steps, more images"]["scorer"].endswith("1 ep x 240 at 16 px")
    assert rows["same steps, fewer images"]["relative_images"] == 1.0
    assert rows["lower resolution"]["relative_images"] == pytest.approx((12 / 16) ** 2)
    assert rows["twice the steps"]["relative_images"] == 2.0
    assert "ceiling_vs_mean" not in res  # two seeds: only seed against seed
    three = [a.replace("0,1", "0,1,2") for a in args]
    res = bench.main(["--part", "reference", *three], evaluate=ev)
    assert ev.calls == 49 + 5  # the third seed only
    assert res["ceiling_vs_mean"]["scorer"] == "reference seed vs the mean of the other 2"
    assert res["ceiling"]["spearman"] == again["ceiling"]["spearman"]  # still seed 0 vs 1
    for block in bench.table(res).split("\n\n"):  # every table's rule fits its header
        cols = {line.count("|") for line in block.splitlines() if line.startswith("|")}
        assert len(cols) <= 1, block
    # the scorer that trains nothing: the reward at one accuracy ranks the smallest first
    plan = bench.stage1_plan(bench.parser().parse_args(three))
    macs = [bench.count_analytic(a).macs for a in plan.archs]
    mean_ref = {i: sum(plan.reward(i, x) for x in r["reference"]) / 3
                for i, r in enumerate(res["per_arch"])}
    alone = res["macs_alone"]
    assert alone["scorer"] == bench.MACS_ALONE
    assert alone["regret"] == pytest.approx(max(mean_ref.values())
                                            - mean_ref[macs.index(min(macs))])
    assert alone["spearman"] == pytest.approx(bench.spearman([-m for m in macs],
                                                             list(mean_ref.values())))
    proxy = res["rows"][2]
    assert proxy["minus_macs_alone"] == pytest.approx(proxy["spearman"] - alone["spearman"])
    lo, hi = proxy["minus_macs_alone_ci"]
    assert lo <= hi
    # on accuracy alone, the reference against itself and the default proxy against it
    acc = res["on_accuracy"]
    assert [r["scorer"] for r in acc] == ["reference seed vs seed",
                                          "reference seed vs the mean of the other 2",
                                          proxy["scorer"]]
    ref_acc = [sum(r["reference"]) / 3 for r in res["per_arch"]]
    assert acc[2]["spearman"] == pytest.approx(bench.spearman(
        [r["default"] for r in res["per_arch"]], ref_acc))


def test_the_cache_key_ignores_threads_and_old_files_are_rekeyed(bench, tmp_path):
    import dataclasses

    from nas.evaluate import ProxyConfig
    from space.resolve import resolve_spec

    spec = resolve_spec("mobilenet-v1")
    one = ProxyConfig(train=dataclasses.replace(ProxyConfig().train, threads=1))
    two = ProxyConfig(train=dataclasses.replace(ProxyConfig().train, threads=2))
    longer = ProxyConfig(train=dataclasses.replace(ProxyConfig().train, epochs=3))
    assert bench.Cache.key(spec, one, 5) == bench.Cache.key(spec, two, 5)
    assert bench.Cache.key(spec, one, 5) != bench.Cache.key(spec, longer, 5)
    assert bench.Cache.key(spec, one, 5) != bench.Cache.key(spec, one, 6)
    cache = bench.Cache(tmp_path)
    rec = {"arch_hash": spec.arch_hash(), "proxy": one.to_dict(), "seed": 5, "accuracy": 0.5}
    (tmp_path / "old-key.json").write_text(json.dumps(rec))
    assert cache.rekey() == 1 and cache.rekey() == 0
    assert cache.get(spec, two, 5)["accuracy"] == 0.5


def test_trainings_from_before_the_zero_init_fix_are_not_read_as_todays(bench, tmp_path):
    """A zero-initialised training of a network whose residual blocks end activated (regular
    conv, dsa: zeroed, and dead, before space.builder's fix) is keyed on how many such blocks the
    builder now leaves alone; its files from before the fix keep their old key and are missed;
    a file written since is found again after a rekey. Other networks keep their keys."""
    import dataclasses

    from nas.evaluate import ProxyConfig
    from space.builder import zero_init_skips
    from space.resolve import resolve_spec

    b0 = resolve_spec("efficientnet-b0")
    conv = b0.replace(name="b0-conv", stages=tuple(
        dataclasses.replace(s, block="conv", expand_ratio=1.0) for s in b0.stages))
    assert zero_init_skips(b0) == 0 and zero_init_skips(conv) > 0
    zero, plain = ProxyConfig(zero_init_last=True), ProxyConfig(zero_init_last=False)
    assert bench.Cache.key(b0, zero, 1) == bench.Cache.key(b0.arch_hash(), zero, 1)
    assert bench.Cache.key(conv, plain, 1) == bench.Cache.key(conv.arch_hash(), plain, 1)
    before = bench.Cache.key(conv.arch_hash(), zero, 1)  # what the key was before the fix
    assert bench.Cache.key(conv, zero, 1) != before
    cache = bench.Cache(tmp_path)
    old = {"arch_hash": conv.arch_hash(), "proxy": zero.to_dict(), "seed": 1, "accuracy": 0.1}
    (tmp_path / f"{before}.json").write_text(json.dumps(old))
    assert cache.rekey() == 0 and cache.get(conv, zero, 1) is None
    new = {**old, "accuracy": 0.7, "zero_init_skips": zero_init_skips(conv)}
    (tmp_path / "renamed.json").write_text(json.dumps(new))
    assert cache.rekey() == 1 and cache.get(conv, zero, 1)["accuracy"] == 0.7


# ------------------------------------------------------------------------------- stage 2
STAGE2 = ["--stage", "2", "--archs", "8", "--bootstrap", "50"]


def stage2_plan(bench, *extra):
    return bench.stage2_plan(bench.parser().parse_args([*STAGE2, *extra]))


def test_stage2_set_is_kept_by_the_measured_constraint(bench):
    from gridsearch.grid import PAPER
    from space import count_fvcore, get_model, scale

    plan = stage2_plan(bench)
    base = scale(get_model("efficientnet-b0"), width=0.25)
    base_macs = count_fvcore(base).macs
    assert len(plan.archs) == 8 and len(set(plan.keys)) == 8  # 8 distinct networks
    for spec, res in zip(plan.archs, plan.resolutions):
        c = spec.meta["compound"]
        assert c["phi"] == 1.0
        # fvcore's count of the scaled network at its deployment resolution, against 2^phi = 2
        assert abs(count_fvcore(spec).macs / base_macs / 2.0 - 1) <= 0.1
        assert res == round(32 * c["gamma"])  # the proxy resolution gridsearch trains it at
    points = [(s.meta["compound"]["alpha"], s.meta["compound"]["beta"],
               s.meta["compound"]["gamma"]) for s in plan.archs]
    assert (PAPER.alpha, PAPER.beta, PAPER.gamma) in points  # the constraint keeps it on B0/4
    assert stage2_plan(bench).keys == plan.keys  # reproducible
    assert stage2_plan(bench, "--arch-seed", "1").keys != plan.keys  # and drawn by the seed
    # spread: the set reaches both ends of the grid's depth axis (alpha 1 and alpha >= 1.7)
    assert min(p[0] for p in points) == 1.0 and max(p[0] for p in points) >= 1.7
    with pytest.raises(ValueError, match="--archs <= 42"):
        stage2_plan(bench, "--archs", "43")


class FakeTraining:
    """A training that returns ``accuracy(i, what, seed)`` per epoch instead of training; it
    checks each point trains at its own proxy resolution, and counts the calls."""

    def __init__(self, plan, accuracy):
        self.plan, self.accuracy, self.calls = plan, accuracy, []
        self.index = {a.arch_hash(): i for i, a in enumerate(plan.archs)}

    def __call__(self, spec, proxy, *, seed):
        from types import SimpleNamespace

        i = self.index[spec.arch_hash()]
        assert proxy.resolution == self.plan.resolutions[i]
        what = ("reference" if proxy.train_samples is None
                else f"{proxy.train.epochs} epoch(s)")
        self.calls.append((i, what, seed))
        curve = [self.accuracy(i, what, seed, e) for e in range(proxy.train.epochs)]
        return SimpleNamespace(accuracy=curve[-1], seconds=1.0,
                               epochs=[SimpleNamespace(val_accuracy=a, train_loss=1.0, val_loss=1.0)
                                       for a in curve])


def test_a_tiny_stage2_run_resumes_from_its_cache(bench, tmp_path):
    import random

    plan = stage2_plan(bench)

    def acc(i, what, seed, epoch):  # a true quality per point, plus noise per seed and epoch
        return 0.6 + 0.03 * i + 0.05 * epoch + random.Random(f"{i} {what} {seed}").random() / 20

    ev = FakeTraining(plan, acc)
    args = [*STAGE2, "--cache", str(tmp_path)]
    res = bench.main([*args, "--part", "ladder", "--slice", "0:3"], evaluate=ev)
    # per point: today's default proxy (1 epoch) and the ladder's training (3 epochs)
    assert sorted(w for _, w, _ in ev.calls) == ["1 epoch(s)"] * 3 + ["3 epoch(s)"] * 3
    assert len(res["missing"]["ladder"]) == 5 and not res["rows"]
    bench.main([*args, "--part", "ladder"], evaluate=ev)
    assert len(ev.calls) == 16  # the first three came from the cache
    bench.main([*args, "--part", "finalists"], evaluate=ev)
    assert len(ev.calls) == 16 + 2 * 4 * 3  # two procedures x 4 finalists x 3 seeds
    res = bench.main([*args, "--part", "reference"], evaluate=ev)
    assert len(ev.calls) == 40 + 8 * 3  # 8 points x the 3 default reference seeds
    assert len(set(ev.calls)) == len(ev.calls)  # nothing trained twice
    assert [r["scorer"].split(" (")[0] for r in res["rows"]] == [
        "rung 1", "rung 3", "today's default proxy", "full procedure, today's default",
        "full procedure, ladder 1,3"]
    for r in [res["ceiling"], *res["rows"]]:
        assert -1 <= r["spearman"] <= 1 and 0 <= r["top3"] <= 3 and 0 <= r["top5"] <= 5
    again = bench.main([*args, "--part", "score"], evaluate=ev)
    assert len(ev.calls) == 64 and json.dumps(again["rows"]) == json.dumps(res["rows"])
    assert "| top-3 overlap | top-5 overlap | regret (accuracy) |" in bench.table(res)


# Worked numbers for the 8-point set (race order [4, 1, 5, 2, 0, 3, 7, 6]). Reward factors
# (MACs / T)^-0.07 with T = 2 x the base's MACs: point 0 1.00682, 3 0.99359, 7 1.00328.
DEFAULT = {0: 0.795, 1: 0.70, 2: 0.71, 3: 0.800, 4: 0.72, 5: 0.73, 6: 0.74, 7: 0.797}
LADDER = {4: (0.60, 0.7, 0.80), 1: (0.65, 0.7, 0.83), 5: (0.55, 0.6, 0.6), 2: (0.70, 0.8, 0.85),
          0: (0.62, 0.6, 0.6), 3: (0.68, 0.8, 0.84), 7: (0.50, 0.6, 0.6), 6: (0.66, 0.6, 0.6)}
FINALISTS = {("1 epoch(s)", 0): (0.81, 0.81), ("1 epoch(s)", 7): (0.812, 0.812),
             ("3 epoch(s)", 2): (0.84, 0.84), ("3 epoch(s)", 3): (0.86, 0.85)}
REFERENCE = {0: 0.90, 1: 0.88, 2: 0.91, 3: 0.92, 4: 0.86, 5: 0.87, 6: 0.89, 7: 0.93}


def test_stage2_races_by_reward_and_chooses_by_mean_accuracy(bench, tmp_path):
    plan = stage2_plan(bench, "--finalists", "2", "--finalist-seeds", "2")
    assert plan.order() == [4, 1, 5, 2, 0, 3, 7, 6]
    search = {plan.search_seed(i) for i in range(8)}

    def acc(i, what, seed, epoch):
        if what == "reference":
            return REFERENCE[i] + (0.005 if seed == 0 else -0.005)
        if seed in search:
            return DEFAULT[i] if what == "1 epoch(s)" else LADDER[i][epoch]
        s = [plan.finalist_seed(i, k) for k in range(2)].index(seed)
        return FINALISTS[what, i][s]

    ev = FakeTraining(plan, acc)
    args = [*STAGE2, "--finalists", "2", "--finalist-seeds", "2", "--ref-seeds", "0,1",
            "--cache", str(tmp_path)]
    for part in ("ladder", "finalists", "reference"):
        res = bench.main([*args, "--part", part], evaluate=ev)
    default, ladder = res["races"]
    names = res["archs"]
    # today's default: no race; by reward 0 (0.8004) and 7 (0.7996) beat 3 (0.7949), although
    # 3 has the best accuracy; 7's mean accuracy (0.812) beats 0's (0.81), although 0's mean
    # reward is higher (0.8155 against 0.8147): stage 2 chooses by accuracy
    assert default["reached"] == [1] * 8 and default["finalists"] == [names[0], names[7]]
    # the ladder: rung 1 keeps 1 of the first 5, 2 of 6 to 8 (the engine's rule)
    assert ladder["reached"] == [1, 3, 3, 3, 3, 1, 1, 1] and ladder["race_epochs"] == 16
    assert ladder["finalists"] == [names[2], names[3]]  # the best two at epoch 3
    rows = {r["scorer"].split(" (")[0]: r for r in res["rows"]}
    assert rows["full procedure, today's default"]["b0"] == names[7]
    assert rows["full procedure, ladder 1,3"]["b0"] == names[3]
    assert ladder["epochs"] == 16 + 2 * 2 * 3
    # the reference's best is 7 (0.93): regret 0 for today's default, 0.01 (3 at 0.92) for
    # the ladder; the reference seed-std is 0.01 / sqrt(2)
    assert rows["full procedure, today's default"]["regret"] == pytest.approx(0.0)
    assert rows["full procedure, ladder 1,3"]["regret"] == pytest.approx(0.01)
    assert rows["full procedure, ladder 1,3"]["regret_in_seed_std"] == pytest.approx(
        math.sqrt(2))
    assert res["ceiling"]["spearman"] == pytest.approx(1.0)  # seeds shift every point alike
    assert "macs_alone" not in res  # stage 2 chooses by accuracy: no MACs term to rank alone


def test_stage1_cache_keys_stay_those_of_the_trainings_on_disk(bench):
    # Hours of stage-1 trainings are cached under these keys (EfficientNet-B0's ladder training
    # and its reference seed 1, with 0.2's recipe): a change to the key, the plan or the seeds
    # would lose them. They trained the earlier proxy task, 6,000 images at 32 px.
    plan = bench.stage1_plan(bench.parser().parse_args(
        ["--archs", "2", "--recipe", "legacy", "--train-samples", "6000",
         "--proxy-resolution", "32"]))
    b0 = plan.archs[0]
    assert b0.name == "efficientnet-b0"
    assert bench.Cache.key(b0, plan.task(plan.procedures[0].task, 0),
                           plan.search_seed(0)) == "7251b32d5b8d3946b45e"
    assert bench.Cache.key(b0, plan.task(plan.reference, 0), 1) == "9521d2de93dce61eb03d"


@pytest.mark.parametrize("stage", ["1", "2"])
def test_the_reference_follows_its_own_recipe_whatever_the_proxy_s(bench, stage):
    def plan(*flags):
        args = bench.parser().parse_args(["--stage", stage, "--archs", "2", *flags])
        return bench.STAGES[stage](args)

    stable, legacy = plan(), plan("--recipe", "legacy")
    assert plan("--ref-recipe", "legacy").reference == legacy.reference
    assert plan("--recipe", "legacy", "--ref-recipe", "stable-v1").reference == stable.reference
    assert stable.reference != legacy.reference
    assert plan("--ref-recipe", "legacy").default == stable.default  # the proxy keeps its own
    # today's proxy starts its classifier at zero; the stable reference, begun before that
    # option, keeps the stable recipe as first settled (so its cached trainings stay its own)
    assert stable.default.zero_init_head and not stable.reference.zero_init_head
    assert plan("--ref-recipe", "stable").reference.zero_init_head
    assert plan("--recipe", "stable-v1").default == replace(stable.default, zero_init_head=False)


def test_the_table_says_how_the_pick_fares_against_the_zoo_and_smaller_finalist_sets(bench):
    row = {"scorer": "full procedure", "spearman": 0.5, "spearman_ci": (0.1, 0.8),
           "kendall": 0.4, "kendall_ci": (0.0, 0.7), "top5": 2, "regret": 0.01,
           "regret_in_seed_std": 0.5, "b0": "mnasnet-16",
           "b0_vs_zoo": {"efficientnet-b0": {"b0_wins_seeds": 2, "seeds": 2},
                         "mnasnet-a1": {"b0_wins_seeds": 0, "seeds": 2}},
           "sizes": [{"finalists": 0, "seeds": 0, "b0": "mnasnet-5", "regret": 0.03,
                      "regret_in_seed_std": 1.5, "epochs": 30},
                     {"finalists": 4, "seeds": 3, "b0": "mnasnet-16", "regret": 0.01,
                      "regret_in_seed_std": 0.5, "epochs": 54}]}
    res = {"n": 3, "archs": ["a", "b", "c"], "missing": {}, "top_ks": [5], "select": "reward",
           "rows": [row], "races": [], "per_arch": []}
    text = bench.table(res)
    assert ("its pick mnasnet-16 beats efficientnet-b0 in 2 of 2 reference seeds; "
            "beats mnasnet-a1 in 0 of 2 reference seeds") in text
    assert "| none (the race's best) | mnasnet-5 | 0.0300 | 1.50 | 30 |" in text
    assert "| 4 x 3 | mnasnet-16 | 0.0100 | 0.50 | 54 |" in text


def test_the_paired_interval_says_whether_one_scorer_ranks_better_than_another(bench):
    ref = [0.1 * i for i in range(12)]
    good = [r + 0.05 * (i % 2) for i, r in enumerate(ref)]  # ranks nearly as the reference
    bad = list(reversed(ref))  # ranks it backwards
    assert bench.paired_diff_ci(good, good, ref, bench.spearman) == (0, 0)
    lo, hi = bench.paired_diff_ci(good, bad, ref, bench.spearman, n=200)
    assert 1.5 < lo <= hi <= 2 + 1e-9  # Spearman ~1 minus -1, on every resample
    lo, hi = bench.paired_diff_ci(bad, good, ref, bench.spearman, n=200)
    assert -2 - 1e-9 <= lo <= hi < -1.5


@pytest.mark.parametrize("seeds", ["x", "0,0", "-1,2", ""])
def test_bad_reference_seeds_are_a_clean_exit_2(bench, seeds, capsys):
    with pytest.raises(SystemExit) as e:
        bench.parser().parse_args([f"--ref-seeds={seeds}"])
    assert e.value.code == 2 and "pass e.g. --ref-seeds 0,1,2" in capsys.readouterr().err
    assert bench.parser().parse_args([]).ref_seeds == (0, 1, 2)


@pytest.mark.parametrize("stage, keep", [("1", 2), ("2", 3)])
def test_the_procedure_races_with_the_stages_own_keep_fraction(bench, stage, keep):
    """The "full procedure" is the stage's default: stage 1 does not race (SearchConfig's
    pruner is none: one rung, 2 epochs) and keeps the best half when it does, gridsearch a
    third; --rungs and --reduction-factor measure another."""
    def ladder(*flags):
        args = bench.parser().parse_args(["--stage", stage, "--archs", "2", *flags])
        return bench.STAGES[stage](args).procedures[-1].ladder

    assert ladder().reduction_factor == keep
    assert ladder().rungs == ((2,) if stage == "1" else (1, 3))
    assert ladder("--reduction-factor", "4").reduction_factor == 4
    assert ladder("--rungs", "1,3,9", "--reduction-factor", "2") == Ladder((1, 3, 9), 2)


def test_the_classifier_init_keeps_the_keys_of_what_was_cached_before_it(bench):
    """A training without zero_init_head keys as it did before the setting existed (so the
    stable reference's cached trainings are still read); one with it keys anew."""
    from nas.evaluate import ProxyConfig

    off = ProxyConfig(zero_init_head=False)
    before = off.to_dict()
    before.pop("zero_init_head")
    assert bench.Cache.key("arch", off, 1) == bench.Cache.key("arch", before, 1)
    assert bench.Cache.key("arch", ProxyConfig(), 1) != bench.Cache.key("arch", off, 1)


@pytest.mark.parametrize("stage, proxy", [("1", (24, 12000)), ("2", (32, 6000))])
def test_each_stage_scores_its_own_default_proxy_against_the_32px_reference(bench, stage, proxy):
    """Stage 1's default proxy moved to 12,000 images at 24 px (nas search's), stage 2's stayed
    at gridsearch's 6,000 at 32 px; either is scored against a reference trained at 32 px, the
    cached stable reference, unless --ref-resolution says otherwise."""
    def plan(*flags):
        return bench.STAGES[stage](bench.parser().parse_args(["--stage", stage, "--archs", "2",
                                                              *flags]))

    default = plan()
    assert (default.default.resolution, default.default.train_samples) == proxy
    assert default.reference.resolution == 32 and default.reference.train_samples is None
    old = plan("--train-samples", "6000", "--proxy-resolution", "32")
    assert (old.default.resolution, old.default.train_samples) == (32, 6000)
    assert old.reference == default.reference
    if stage == "1":
        assert plan("--ref-resolution", "16").reference.resolution == 16
        assert default.default_label == "one 2-epoch proxy training (12,000 images, 24 px)"


def test_longer_finalists_train_anew_and_are_counted_at_their_epochs(bench, tmp_path,
                                                                     tiny_space_file,
                                                                     monkeypatch):
    """--finalist-epochs (nas search's): the finalists train on the search's task for that many
    epochs, each a training of its own in the cache, and the procedure counts their epochs."""
    args = [a.format(space=tiny_space_file) for a in TINY] + ["--cache", str(tmp_path / "c")]
    monkeypatch.setattr(bench, "ZOO", ())
    epochs = []

    def ev(spec, proxy, **kw):
        from nas.evaluate import evaluate_proxy

        epochs.append(proxy.train.epochs)
        return evaluate_proxy(spec, proxy, **kw)

    for part in ("ladder", "reference", "finalists"):
        bench.main(["--part", part, *args], evaluate=ev)
    assert epochs.count(3) == 0
    res = bench.main(["--part", "finalists", *args, "--finalist-epochs", "3"], evaluate=ev)
    assert epochs[-4:] == [3, 3, 3, 3]  # 2 finalists x 2 seeds, none read from 2-epoch runs
    proc, race = res["rows"][-1], res["races"][0]
    assert proc["scorer"].endswith("2 finalists x 2 seeds of 3 epochs)")
    assert proc["epochs"] == race["race_epochs"] + 2 * 2 * 3
    assert proc["sizes"][1]["epochs"] == race["race_epochs"] + 3  # 1 finalist x 1 seed
    n = len(epochs)
    bench.main(["--part", "score", *args, "--finalist-epochs", "3"], evaluate=ev)
    assert len(epochs) == n  # all cached
    with pytest.raises(SystemExit):
        bench.parser().parse_args(["--finalist-epochs", "0"])
