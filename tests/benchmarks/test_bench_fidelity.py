"""benchmarks/bench_fidelity.py: its statistics on worked numbers, its race against the engine's
rule, and a tiny end-to-end run that resumes from its cache and trains nothing twice."""
from __future__ import annotations

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
        "120", "--val-samples", "60", "--proxy-resolution", "16", "--ref-epochs", "2",
        "--ref-train-samples", "240", "--ref-seeds", "0,1", "--finalists", "2",
        "--finalist-seeds", "2", "--threads", "1", "--bootstrap", "50", "--target", "2e6"]


class Counting:
    def __init__(self):
        self.calls = 0

    def __call__(self, *a, **kw):
        from nas.evaluate import evaluate_proxy

        self.calls += 1
        return evaluate_proxy(*a, **kw)


def test_a_tiny_benchmark_runs_in_pieces_from_its_cache(bench, tmp_path, tiny_space_file):
    space = tiny_space_file
    args = [a.format(space=space) for a in TINY] + ["--cache", str(tmp_path / "cache")]
    bench.ZOO = ()  # no zoo networks in a tiny run: they are ImageNet-sized
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
    assert names[2].startswith("today's default proxy") and names[3].startswith("full procedure")
    for r in [res["ceiling"], *res["rows"]]:
        assert -1 <= r["spearman"] <= 1 and r["spearman_ci"][0] <= r["spearman_ci"][1]
        assert 0 <= r["top5"] <= 5 and r["regret"] >= 0
    sizes = res["sizes"]  # what fewer finalists or seeds would have chosen, from the cache
    assert [(r["finalists"], r["seeds"]) for r in sizes] == [(0, 0), (1, 1), (1, 2), (2, 1),
                                                             (2, 2)]
    proc = res["rows"][3]
    assert sizes[-1]["b0"] == proc["b0"] and sizes[-1]["regret"] == pytest.approx(proc["regret"])
    assert sizes[-1]["epochs"] == proc["epochs"] == res["race_epochs"] + 2 * 2 * 2
    assert sizes[0]["b0"] == res["finalists"][0]  # no finalists: the race's best at the top
    again = bench.main(["--part", "score", *args], evaluate=ev)
    assert ev.calls == 19  # scoring trains nothing, and gives the same numbers
    assert json.dumps(again["rows"]) == json.dumps(res["rows"])
    # today's default proxy is a variant too, and the ladder part trained it already
    assert [r["scorer"] for r in res["variants"]] == ["today: 2 ep x 120 at 16 px"]
    assert len(res["missing"]["variants"]) == 5
    res = bench.main(["--part", "variants", *args], evaluate=ev)
    # 6 variants x 5 archs, less today's (the default proxy, cached by the ladder part)
    assert ev.calls == 19 + 5 * 5 and not res["missing"]["variants"]
    rows = {r["scorer"].split(":")[0]: r for r in res["variants"]}
    assert list(rows) == list(bench.VARIANTS)
    assert rows["today"]["spearman"] == res["rows"][2]["spearman"]  # the default proxy's row
    assert rows["today"]["relative_images"] == 1.0
    assert rows["same steps, more images"]["scorer"].endswith("1 ep x 240 at 16 px")
    assert rows["same steps, fewer images"]["relative_images"] == 1.0
    assert rows["lower resolution"]["relative_images"] == pytest.approx((12 / 16) ** 2)
    assert rows["twice the steps"]["relative_images"] == 2.0


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
