"""benchmarks/bench_supernet.py --part procedure: how inherited scores are judged against the
stable reference, and the supernet procedure's finalists, pick and regret, on a cache the test
fills itself (nothing trains)."""
from __future__ import annotations

import importlib
import statistics
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(ROOT))
    try:
        mod = importlib.import_module("benchmarks.bench_supernet")
        yield mod
    finally:
        sys.path.remove(str(ROOT))
        sys.modules.pop("bench_fidelity", None)


class Fake:
    """A training that returns ``accuracy(i, proxy, seed)`` instead of training, and counts."""

    def __init__(self, plan, accuracy):
        self.plan, self.accuracy, self.calls = plan, accuracy, []
        self.index = {a.arch_hash(): i for i, a in enumerate(plan.archs)}

    def __call__(self, spec, proxy, *, seed):
        i = self.index[spec.arch_hash()]
        self.calls.append((i, proxy.train.epochs, seed))
        acc = self.accuracy(i, proxy, seed)
        return SimpleNamespace(accuracy=acc, seconds=1.0, epochs=[
            SimpleNamespace(val_accuracy=acc, train_loss=1.0, val_loss=1.0)])


def test_the_supernet_procedure_is_judged_against_the_reference(bench, tmp_path):
    plan, cache = bench.reference_plan(str(tmp_path / "cache"))
    assert len(plan.ref_seeds) == 3 and plan.finalists == 4
    members = [i for i, a in enumerate(plan.archs) if a.name not in ("efficientnet-b0",
                                                                      "mnasnet-a1")]
    ref_acc = {i: 0.80 + 0.004 * ((7 * i) % 24) for i in range(len(plan.archs))}
    fill = Fake(plan, lambda i, proxy, seed: ref_acc[i] + 0.001 * seed
                if proxy.train_samples is None else ref_acc[i] * 0.9)
    for i, a in enumerate(plan.archs):
        for s in plan.ref_seeds:
            cache.train(a, plan.task(plan.reference, i), s, what="reference", evaluate=fill)
        cache.train(a, plan.default, plan.search_seed(i), what="default proxy", evaluate=fill)

    # inherited accuracies in the reference's own order rank as the reference does
    ref_reward = {i: statistics.fmean(plan.reward(i, ref_acc[i] + 0.001 * s) for s in range(3))
                  for i in members}
    accs = [ref_acc[i] for i in members]
    fin_acc = {}  # the finalists' stand-alone accuracy: the 3rd best by inheritance wins

    def finalist(i, proxy, seed):
        assert proxy.train.epochs == 2 and proxy.train_samples == plan.default.train_samples
        return fin_acc.get(i, 0.5)

    by_inherited = sorted(members, key=lambda i: -plan.reward(i, ref_acc[i]))
    for rank, i in enumerate(by_inherited[:4]):
        fin_acc[i] = 0.9 if rank == 2 else 0.5
    train = Fake(plan, finalist)
    row = bench.judge(plan, cache, members, accs, finalists=4, seeds=3, evaluate=train,
                      n_boot=50)
    assert row["spearman"] == pytest.approx(1.0) and row["top5"] == 5
    assert row["proxy_spearman"] == pytest.approx(1.0)  # the fake proxy: 0.9x the reference
    assert row["accuracy_spearman"] == row["proxy_accuracy_spearman"] == pytest.approx(1.0)
    macs = [bench._fidelity().count_analytic(plan.archs[i]).macs for i in members]
    assert row["macs_alone_spearman"] == pytest.approx(
        bench._fidelity().spearman([-m for m in macs], [ref_reward[i] for i in members]))
    assert list(row["finalists"]) == [plan.archs[i].name for i in by_inherited[:4]]
    assert sorted(train.calls) == sorted((i, 2, plan.finalist_seed(i, s))
                                         for i in by_inherited[:4] for s in range(3))
    pick = by_inherited[2]
    assert row["pick"] == plan.archs[pick].name
    every = {i: statistics.fmean(plan.reward(i, ref_acc[i] + 0.001 * s) for s in range(3))
             for i in range(len(plan.archs))}
    std = statistics.fmean(statistics.stdev(plan.reward(i, ref_acc[i] + 0.001 * s)
                                            for s in range(3)) for i in every)
    assert row["regret_in_seed_std"] == pytest.approx((max(every.values()) - every[pick]) / std)
    assert row["own_pick"] == plan.archs[by_inherited[0]].name
    assert set(row["pick_beats"]) == {"efficientnet-b0", "mnasnet-a1"}
    assert max(ref_reward, key=ref_reward.get) == by_inherited[0]

    # reversed inherited scores rank against it, and the finalists are read from the cache
    again = bench.judge(plan, cache, members, [1 - x for x in accs], finalists=1, seeds=1,
                        evaluate=train, n_boot=50)
    assert again["spearman"] < -0.5
    top = max(members, key=lambda i: (plan.reward(i, 1 - ref_acc[i]), -i))
    assert again["finalists"] == {plan.archs[top].name: pytest.approx(
        plan.reward(top, fin_acc.get(top, 0.5)))}
    assert len(train.calls) == 12 + (top not in by_inherited[:4])


def test_the_procedure_refuses_a_reference_that_is_not_cached(bench, tmp_path):
    plan, cache = bench.reference_plan(str(tmp_path / "empty"))
    with pytest.raises(SystemExit, match="not all cached"):
        bench.judge(plan, cache, [2, 3, 4], [0.1, 0.2, 0.3], finalists=1, seeds=1,
                    evaluate=None)


@pytest.mark.parametrize("flag, value", [("--finalists", "0"), ("--finalist-seeds", "0"),
                                         ("--finalists", "four")])
def test_a_procedure_without_finalists_or_seeds_is_a_clean_exit_2(bench, flag, value, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--part", "procedure", flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag}: expected a whole number >= 1, got '{value}'" in err
