"""The ``gridsearch`` command: bad input is one line and exit 2; a real tiny run end to end."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from gridsearch.cli import main, parse_coefficients, parse_family, parse_range
from gridsearch.grid import PAPER, Point
from space import load_spec, save_spec

TINY_DATA = ["--dataset", "synthetic", "--train-samples", "60", "--val-samples", "40",
             "--proxy-resolution", "16", "--batch-size", "32"]


@pytest.fixture
def base_file(tmp_path: Path, tiny_base) -> Path:
    return save_spec(tiny_base, tmp_path / "tiny.json")


def test_parsers() -> None:
    assert parse_range("1, 1.5", "--beta-range") == (1.0, 1.5)
    assert parse_coefficients("paper") == PAPER
    assert parse_coefficients("1.3,1.05,1.1") == Point(1.3, 1.05, 1.1)
    assert parse_family("1-7") == (1, 7) and parse_family("3") == (3, 3)


@pytest.mark.parametrize("argv, match", [
    (["--phi", "-1"], "`phi >= 0` must hold"),
    (["--phi", "one"], "argument --phi: invalid float value"),
    (["--alpha-range", "2,1"], "--alpha-range 2,1 is inverted"),
    (["--beta-range", "1.2"], "--beta-range must be LO,HI"),
    (["--gamma-range", ","], "--gamma-range must be LO,HI"),
    (["--gamma-range", "0.5,1.5"], "`LO >= 1` must hold"),
    (["--step", "0"], "`step > 0` must hold"),
    (["--step", "-0.05"], "`step > 0` must hold"),
    # (2, 1, 1) is exactly on the constraint; without it the nearest is 2.8e-4 away
    (["--tolerance", "0.0001", "--alpha-range", "1,1.9"], "--tolerance 0.0001 leaves no point"),
    (["--tolerance", "-1"], "`tolerance > 0` must hold"),
    (["--tolerance", "0"], "`tolerance > 0` must hold, but got tolerance=0.0"),
    (["--tolerance", "0", "--constraint", "formula"], "`tolerance > 0` must hold"),
    (["--constraint", "flops"], "invalid choice: 'flops' (choose from 'measured', 'formula')"),
    (["--coefficients", "paper", "--constraint", "formula"],
     "--constraint applies to the grid search"),
    (["--compare-seeds", "0"], "`compare_seeds >= 1` must hold"),
    (["--compare-single", "--phi", "0"], "--compare-single needs `phi > 0`"),
    (["--rounding", "up"], "invalid choice: 'up' (choose from 'paper', 'nearest')"),
    (["--finalists", "-1"], "`finalists >= 0` must hold, but got finalists=-1"),
    (["--finalist-seeds", "0"], "`finalist_seeds >= 1` must hold"),
    (["--finalist-epochs", "0"], "`finalist_epochs >= 1` must hold"),
    (["--finalist-epochs", "3", "--finalists", "0"], "but --finalists 0 trains none"),
    (["--coefficients", "paper", "--finalist-epochs", "3"],
     "--finalist-epochs applies to the grid search"),
    (["--rungs", "3,1"], "rungs must increase"),
    (["--rungs", "1,3", "--epochs", "2"], "needs --epochs 3"),
    *((["--rungs", "1,3", "--reduction-factor", v], f"--reduction-factor must be a whole number "
       f">= 2 (keep the best 1/N at each rung), but got {v!r}; pass e.g. --reduction-factor 2")
      for v in ("1", "0", "-2", "abc", "2.5")),
    (["--reduction-factor", "2"], "--reduction-factor 2 says how the points are raced, but this "
                                  "run races none (no --rungs); add e.g. --rungs 1,3"),
    (["--coefficients", "paper", "--reduction-factor", "2"],
     "--reduction-factor applies to the grid search"),
    (["--coefficients", "paper", "--finalists", "2"], "--finalists applies to the grid search"),
    (["--base", "no-such-model"], "unknown model 'no-such-model'"),
    (["--coefficients", "1.2,1.1"], "--coefficients must be A,B,G"),
    (["--coefficients", "0.9,1.1,1.1"], "alpha, beta, gamma >= 1"),
    (["--coefficients", "paper", "--step", "0.1"], "--step applies to the grid search"),
    (["--family", "7-1"], "`0 <= LO <= HI` must hold"),
    (["--family", "b7"], "--family must be LO-HI"),
    (["--select", "loss"], "invalid choice: 'loss' (choose from 'accuracy', 'reward')"),
    (["--epochs", "0"], "`epochs >= 1` must hold"),
    # one bound, the base's with memory included (here 1 GiB: B0 at phi 10 needs more)
    (["--phi", "1e9", "--coefficients", "paper"],
     "`phi <= 9` must hold for alpha=1.2, beta=1.1, gamma=1.15: building the phi-10 network"),
    (["--phi", "1000", "--coefficients", "paper"],
     "`phi <= 9` must hold for alpha=1.2, beta=1.1, gamma=1.15: building the phi-10 network"),
    (["--phi", "1e9"], "`phi <= 2` must hold for alpha=2, beta=1.5, gamma=1.5: building the "
                       "phi-3 network"),
])
def test_bad_input_is_one_line_and_exit_2(argv, match, tmp_path, capsys, monkeypatch) -> None:
    def never(*args, **kwargs):
        raise AssertionError("bad input must be refused before anything is trained")
    monkeypatch.setattr("gridsearch.search.evaluate_proxy", never)
    monkeypatch.setattr("gridsearch.search.available_memory", lambda: 2 ** 30)
    try:
        code = main([*argv, "--out", str(tmp_path / "run")])
    except SystemExit as e:  # argparse's own complaints
        code = e.code
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gridsearch: error: ") and match in err
    assert not (tmp_path / "run").exists()


def test_argparse_errors_exit_2_in_one_line(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--no-such-flag"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unrecognized arguments: --no-such-flag" in err


def test_coefficients_emit_the_family_without_training(tmp_path, base_file, capsys) -> None:
    out = tmp_path / "run"
    assert main(["--base", str(base_file), "--coefficients", "paper", "--family", "0-2",
                 "--out", str(out)]) == 0
    coef = json.loads((out / "coefficients.json").read_text())
    assert (coef["alpha"], coef["beta"], coef["gamma"], coef["selected_by"]) == \
        (1.2, 1.1, 1.15, "given")
    assert sorted(p.name for p in (out / "family").iterdir()) == ["b0.json", "b1.json",
                                                                  "b2.json"]
    assert "coefficients (given): alpha 1.2 beta 1.1 gamma 1.15" in capsys.readouterr().out


@pytest.mark.slow
def test_tiny_end_to_end_and_resume(tmp_path, base_file, capsys) -> None:
    out = tmp_path / "run"
    argv = ["--base", str(base_file), "--step", "0.5", "--tolerance", "0.25", "--compare-single",
            "--compare-seeds", "2", "--finalists", "0", "--family", "0-3", *TINY_DATA,
            "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    # the measured constraint keeps 4 points on the tiny base (test_grid.py's worked example)
    assert "grid: 12 points, 4 kept with measured MACs ratio within 25% of 2" in text
    assert "compound vs single-dimension scaling at the same measured MACs" in text
    grid = pd.read_csv(out / "grid.csv")
    # 4 grid points, then compound seed #1 and each single network over 2 seeds
    assert len(grid) == 4 + 1 + 3 * 2 and (grid["state"] == "COMPLETE").all()
    assert grid["accuracy"].between(0, 1).all() and grid["duration_s"].gt(0).all()
    compare = pd.read_csv(out / "compare_single.csv")
    assert list(compare["kind"]) == ["compound", "depth", "width", "resolution"]
    assert (compare["seeds"] == 2).all() and compare["accuracy_std"].notna().all()
    coef = json.loads((out / "coefficients.json").read_text())
    points = grid[(grid["kind"] == "compound") & (grid["replicate"] == 0)]
    best = points.sort_values(["accuracy", "macs"], ascending=[False, True]).iloc[0]
    assert (coef["alpha"], coef["beta"], coef["gamma"]) == (best["alpha"], best["beta"],
                                                           best["gamma"])
    assert coef["macs_counter"] == "fvcore" and coef["macs"] == best["macs"]
    family = [load_spec(out / "family" / f"b{i}.json") for i in range(4)]
    assert [f.meta["phi"] for f in family] == [0, 1, 2, 3]
    assert family[0].arch_hash() == load_spec(base_file).arch_hash()
    assert [m.meta["macs"] for m in family] == sorted(m.meta["macs"] for m in family)
    assert len(pd.read_csv(out / "family.csv")) == 4

    # resume: nothing left to train, the grid is untouched, --select may change
    before = grid[["number", "accuracy", "duration_s"]]
    assert main(["--resume", "--out", str(out), "--select", "reward"]) == 0
    after = pd.read_csv(out / "grid.csv")[["number", "accuracy", "duration_s"]]
    # (a new choice is compared anew: its trainings are added, the finished ones stay)
    pd.testing.assert_frame_equal(before, after.iloc[:len(before)])
    assert json.loads((out / "coefficients.json").read_text())["selected_by"] == "reward"

    capsys.readouterr()
    assert main(["--resume", "--out", str(out), "--phi", "2"]) == 2
    err = capsys.readouterr().err
    assert "--phi 2.0 differs from the resumed run's 1.0" in err
