"""benchmarks/exp_reference_noise.py: the hits it keeps, and its split of the reference's seed
variance, on worked numbers and on a simulated reference whose parts are known."""
from __future__ import annotations

import importlib.util
import random
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def exp():
    mods = {}
    for name in ("bench_fidelity", "exp_reference_noise"):
        spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
        mods[name] = importlib.util.module_from_spec(spec)
        sys.modules[name] = mods[name]  # dataclasses look their module up there
        spec.loader.exec_module(mods[name])
    yield mods["exp_reference_noise"]
    for name in mods:
        sys.modules.pop(name, None)


def test_hits_pack_to_hex_and_back(exp):
    hits = [True, False, True, True, False]
    assert exp.pack(hits) == "b0"  # 1011 | 0(000 padding)
    assert exp.unpack("b0", 5) == hits
    many = [random.Random(3).random() < 0.9 for _ in range(2001)]
    assert exp.unpack(exp.pack(many), 2001) == many
    with pytest.raises(ValueError, match="hold 8 images, not 9"):
        exp.unpack("b0", 9)


def test_disagreements_on_worked_numbers(exp):
    assert exp.disagreement([True, True, False, False], [True, False, True, False]) == 0.5
    with pytest.raises(ValueError, match="equal, non-empty"):
        exp.disagreement([True], [True, False])
    # (1, 3): squares 2 on 1 dof; (2, 2, 5): 6 on 2 dof; a single value adds nothing
    assert exp.pooled_var([[1, 3], [2, 2, 5], [7]]) == pytest.approx(8 / 3)
    runs = {"a": {0: [True, True, False, False], 1: [True, False, False, False]},
            "b": {0: [False, True, True, False], 1: [True, False, True, True]}}
    d = exp.disagreements(runs)
    # within: a 1/4, b 3/4; across at seed 0: 2/4, at seed 1: 2/4
    assert (d.images, d.seeds, d.networks) == (4, 0.5, 0.5)
    assert d.seed_sample_var(100) == pytest.approx(0.5 / 200)
    assert d.network_sample_var(100) == 0.0
    with pytest.raises(ValueError, match="two seeds of one network"):
        exp.disagreements({"a": {0: [True]}, "b": {0: [False]}})


def test_agreement_grows_with_images_and_seeds(exp):
    sample = exp.Disagreement(images=10000, seeds=0.06, networks=0.10)
    ref = exp.Reference(between=4e-5, training=1e-5, sample=sample)
    shared = 4e-5 + 0.04 / 4000
    assert ref.agreement(2000) == pytest.approx(shared / (shared + 1e-5 + 0.06 / 4000))
    assert ref.agreement(2000) < ref.agreement(10000) < ref.agreement(10000, seeds=4)
    # with no training draw and endless images the seeds agree exactly
    assert exp.Reference(4e-5, 0.0, sample).agreement(10 ** 12) == pytest.approx(1.0)
    assert exp.spearman_of(1.0) == pytest.approx(1.0)
    assert exp.spearman_of(0.5) == pytest.approx(0.4826, abs=1e-4)


def test_fit_recovers_a_simulated_reference(exp):
    """Networks whose true accuracies spread by std 0.01, each seed's training moving it by std
    0.005, every image an independent draw: the fit finds both parts from the accuracies on
    2,000 images and the disagreement, and predicts the seeds' agreement."""
    rng = random.Random(0)
    n, seeds, nets = 2000, 3, 60
    true = [0.9 + rng.gauss(0, 0.01) for _ in range(nets)]
    hits = {k: {s: [rng.random() < true[k] + shift for _ in range(n)]
                for s, shift in enumerate(rng.gauss(0, 0.005) for _ in range(seeds))}
            for k in range(nets)}
    acc = [[sum(h) / n for h in hits[k].values()] for k in range(nets)]
    ref = exp.Reference.fit(acc, n, exp.disagreements(hits))
    assert ref.training == pytest.approx(0.005 ** 2, rel=0.5)
    assert ref.between == pytest.approx(0.01 ** 2, rel=0.35)
    measured = [exp.bf.pearson([a[i] for a in acc], [a[j] for a in acc])
                for i, j in ((0, 1), (0, 2), (1, 2))]
    assert ref.agreement(n) == pytest.approx(sum(measured) / 3, abs=0.1)


def test_finalist_gap_noise_on_worked_numbers(exp):
    sample = exp.Disagreement(images=10000, seeds=0.1, networks=0.14)
    # 2 (4e-5 + 0.1 / 4000) / 3 + 2 (0.04 / 4000)
    want = (2 * (4e-5 + 0.1 / 4000) / 3 + 2 * 0.04 / 4000) ** 0.5
    assert exp.finalist_gap_std(4e-5, sample, 2000, 3) == pytest.approx(want)
    assert exp.finalist_gap_std(4e-5, sample, 10000, 3) < want


def test_proxy_report_from_kept_hits(exp, tmp_path):
    """--part report reads what --part train keeps: two networks x two seeds of hits."""
    with pytest.raises(SystemExit, match="run --part train first"):
        exp.report("proxy", folder=tmp_path)
    (tmp_path / "proxy").mkdir()
    hits = {("a", 0): [True, True, True, False], ("a", 1): [True, True, False, False],
            ("b", 0): [True, False, True, True], ("b", 1): [True, False, True, True]}
    for (arch, k), h in hits.items():
        split = {"n": 4, "hits": exp.pack(h)}
        (tmp_path / "proxy" / f"{arch}-seed{k}.json").write_text(exp.json.dumps(
            {"arch": arch, "seed": k, "cached_accuracy": None, "seconds": 1.0,
             "val_accuracy": sum(h) / 4, "test_accuracy": sum(h) / 4, "val": split,
             "test": split}))
    text = exp.report("proxy", folder=tmp_path)
    # d: a's seeds differ on 1 of 4, b's on none: 0.125; D: seed 0 on 2 of 4, seed 1 on 3 of 4
    assert "| 4 images (val) | 0.1250 | 0.6250 |" in text
    assert "| 2,000 | " in text and "| 20,000 | " in text


def test_bad_sizes_are_one_line_and_exit_2(exp, capsys):
    with pytest.raises(SystemExit) as e:
        exp.main(["--part", "cost", "--archs", "mnasnet-5", "--sizes", "2000,x"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "got '2000,x'; pass e.g. --sizes 2000,10000" in err and "Traceback" not in err


def test_measured_agreement_averages_every_split_of_the_seeds(exp):
    acc = [[0.10, 0.12, 0.31, 0.30], [0.20, 0.25, 0.22, 0.18], [0.30, 0.27, 0.12, 0.15],
           [0.40, 0.33, 0.35, 0.41]]
    # 4 seeds split into two pairs in 3 ways; into two singles in 6
    splits = [((0, 1), (2, 3)), ((0, 2), (1, 3)), ((0, 3), (1, 2))]
    want = [exp.bf.pearson([sum(g[x] for x in a) / 2 for g in acc],
                           [sum(g[x] for x in b) / 2 for g in acc]) for a, b in splits]
    pearson, _ = exp.measured_agreement(acc, 2)
    assert pearson == pytest.approx(sum(want) / 3)
    assert exp.measured_agreement(acc, 1)[1] == pytest.approx(
        sum(exp.bf.spearman([g[a] for g in acc], [g[b] for g in acc])
            for a in range(4) for b in range(a + 1, 4)) / 6)
    with pytest.raises(ValueError, match="4 seeds hold no two groups of 3"):
        exp.measured_agreement(acc, 3)


def test_bad_seeds_name_their_own_flag(exp, capsys):
    with pytest.raises(SystemExit) as e:
        exp.main(["--part", "train", "--archs", "mnasnet-5", "--seeds", "0,0"])
    assert e.value.code == 2
    assert "got '0,0'; pass e.g. --seeds 0,1,2" in capsys.readouterr().err
