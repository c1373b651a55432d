"""gridsearch --latency: the emitted family timed end to end on this machine, once, at the final
write; family.csv, family/b<phi>.json and coefficients.json say what was measured and where."""
from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from gridsearch.cli import main
from gridsearch.grid import PAPER, Grid
from gridsearch.latency import DEFAULT_REPEATS, WARMUP
from gridsearch.search import GridSearchConfig, run_gridsearch
from nas.latency import LatencySettings, Timing
from results.rundir import read_config
from space import count_analytic, save_spec


@pytest.fixture
def base_file(tmp_path: Path, tiny_base) -> Path:
    return save_spec(tiny_base, tmp_path / "tiny.json")


@pytest.fixture
def fake_bench(monkeypatch):
    """bench_spec replaced by a fake whose samples follow the member's resolution r: (r, r + 1,
    r + 3) ms, so the median is r + 1 and the inclusive IQR (r + 2) - (r + 0.5) = 1.5. It
    records each call's spec and settings."""
    calls: list[dict] = []

    def bench(spec, *, threads, batch, runtime, warmup, repeats, clock, resolution=None):
        calls.append(dict(name=spec.name, resolution=spec.resolution, threads=threads,
                          batch=batch, runtime=runtime, warmup=warmup, repeats=repeats,
                          clock=clock))
        r = float(spec.resolution)
        return Timing((r, r + 1.0, r + 3.0), batch)

    monkeypatch.setattr("gridsearch.latency.bench_spec", bench)
    return calls


def _cli(base_file: Path, out: Path, *flags: str) -> int:
    return main(["--base", str(base_file), "--coefficients", "paper", "--family", "0-2",
                 "--out", str(out), *flags])


def test_latency_times_every_member_at_its_own_resolution(tmp_path, base_file, capsys) -> None:
    out = tmp_path / "run"
    assert _cli(base_file, out, "--latency", "--latency-repeats", "3") == 0
    family = pd.read_csv(out / "family.csv")
    assert list(family["phi"]) == [0, 1, 2]
    assert family["latency_ms"].map(math.isfinite).all() and (family["latency_ms"] > 0).all()
    assert family["latency_iqr_ms"].map(math.isfinite).all()
    assert (family["latency_iqr_ms"] >= 0).all()
    device = LatencySettings().device()
    for row in family.itertuples():
        meta = json.loads((out / "family" / f"b{row.phi}.json").read_text())["meta"]
        lat = meta["latency"]
        assert lat["median_ms"] == pytest.approx(row.latency_ms)
        assert lat["iqr_ms"] == pytest.approx(row.latency_iqr_ms)
        assert (lat["repeats"], lat["warmup"], lat["batch"]) == (3, WARMUP, 1)
        assert lat["resolution"] == row.resolution and lat["device"] == device
        assert lat["throughput_per_s"] == pytest.approx(1e3 / lat["median_ms"])
    coef = json.loads((out / "coefficients.json").read_text())["latency"]
    assert coef["device"] == device and coef["settings"] == LatencySettings().to_dict()
    assert (coef["repeats"], coef["warmup"], coef["statistic"]) == (3, WARMUP, "median")
    assert read_config(out)["latency"] == LatencySettings().to_dict()
    assert read_config(out)["latency_repeats"] == 3
    text = capsys.readouterr().out
    assert f"latency: median of 3 forward pass(es) after {WARMUP} warm-up, batch 1" in text
    assert text.count(" ms (IQR ") == 3


def test_without_latency_nothing_is_timed_and_the_columns_stay_empty(tmp_path, base_file,
                                                                     fake_bench) -> None:
    out = tmp_path / "run"
    assert _cli(base_file, out) == 0
    assert fake_bench == []
    family = pd.read_csv(out / "family.csv")
    assert len(family) == 3 and family[["latency_ms", "latency_iqr_ms"]].isna().all().all()
    assert "latency" not in json.loads((out / "family" / "b1.json").read_text())["meta"]
    assert json.loads((out / "coefficients.json").read_text())["latency"] is None
    assert read_config(out)["latency"] is None


def test_the_settings_reach_the_timing_and_the_files(tmp_path, base_file, fake_bench,
                                                     tiny_base) -> None:
    out = tmp_path / "run"
    # a --latency-* flag alone turns the timing on
    assert _cli(base_file, out, "--latency-threads", "2", "--latency-batch", "4") == 0
    resolutions = [32, round(32 * 1.15), round(32 * 1.15 ** 2)]
    assert [c["resolution"] for c in fake_bench] == resolutions
    assert {(c["threads"], c["batch"], c["runtime"], c["clock"], c["warmup"], c["repeats"])
            for c in fake_bench} == {(2, 4, "torch", "wall", WARMUP, DEFAULT_REPEATS)}
    family = pd.read_csv(out / "family.csv")
    assert list(family["latency_ms"]) == [r + 1.0 for r in resolutions]  # the median
    assert list(family["latency_iqr_ms"]) == [1.5] * 3
    meta = json.loads((out / "family" / "b0.json").read_text())["meta"]["latency"]
    assert meta["throughput_per_s"] == pytest.approx(4 / (33.0 / 1e3))  # 4 images per pass
    assert meta["device"]["threads"] == 2 and meta["device"]["batch"] == 4
    assert meta["device"]["cpu"] and meta["device"]["torch"]


def test_resume_adds_changes_and_drops_the_latency(tmp_path, base_file, fake_bench) -> None:
    out = tmp_path / "run"
    assert _cli(base_file, out) == 0
    assert main(["--resume", "--out", str(out), "--latency"]) == 0
    assert len(fake_bench) == 3
    assert pd.read_csv(out / "family.csv")["latency_ms"].notna().all()
    assert read_config(out)["latency"] == LatencySettings().to_dict()
    # a later resume keeps the run's setting and changes only what is given
    assert main(["--resume", "--out", str(out), "--latency-batch", "2"]) == 0
    assert [c["batch"] for c in fake_bench[3:]] == [2, 2, 2]
    assert read_config(out)["latency"] == LatencySettings(batch=2).to_dict()
    assert main(["--resume", "--out", str(out), "--no-latency"]) == 0
    assert len(fake_bench) == 6 and read_config(out)["latency"] is None
    assert pd.read_csv(out / "family.csv")["latency_ms"].isna().all()


def _config(**kw) -> GridSearchConfig:
    return GridSearchConfig(base="tiny", grid=Grid(step=0.5, tolerance=0.25,
                                                   constraint="formula"),
                            family=(0, 2), finalists=0, latency=LatencySettings(), **kw)


def test_the_family_is_timed_once_after_the_comparison(tmp_path, tiny_base, fake_evaluator,
                                                       fake_bench) -> None:
    # the grid, then --compare-single as a second pass of the study: two final writes, one timing
    res = run_gridsearch(_config(compare_single=True, compare_seeds=1), out=tmp_path / "run",
                         base=tiny_base, evaluate=fake_evaluator(), count=count_analytic)
    assert [c["name"] for c in fake_bench] == [s.name for s in res.family]
    assert [s.meta["latency"]["median_ms"] for s in res.family] == \
        [s.resolution + 1.0 for s in res.family]
    assert res.coefficients["latency"]["repeats"] == DEFAULT_REPEATS


def test_an_interrupted_run_is_timed_on_resume(tmp_path, tiny_base, fake_evaluator,
                                               fake_bench) -> None:
    res = run_gridsearch(_config(), out=tmp_path / "run", base=tiny_base,
                         evaluate=fake_evaluator(raise_on_call=2), count=count_analytic)
    assert res.interrupted and fake_bench == []
    res = run_gridsearch(_config(), out=tmp_path / "run", resume=True,
                         evaluate=fake_evaluator(), count=count_analytic)
    assert not res.interrupted and len(fake_bench) == 3
    assert pd.read_csv(res.run_dir / "family.csv")["latency_ms"].notna().all()


def test_config_round_trips_and_old_configs_load_without_latency() -> None:
    c = GridSearchConfig(coefficients=PAPER, latency=LatencySettings(threads=2, batch=8),
                         latency_repeats=7)
    assert GridSearchConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    old = {k: v for k, v in c.to_dict().items() if k not in ("latency", "latency_repeats")}
    loaded = GridSearchConfig.from_dict(old)
    assert loaded.latency is None and loaded.latency_repeats == DEFAULT_REPEATS


@pytest.mark.parametrize("argv, match", [
    (["--latency-threads", "0"], "`threads >= 1` must hold, but got threads=0"),
    (["--latency", "--latency-batch", "-1"], "`batch >= 1` must hold, but got batch=-1"),
    (["--latency-runtime", "tvm"], "invalid choice: 'tvm' (choose from 'torch', 'onnxruntime')"),
    (["--latency-repeats", "0"], "`latency_repeats >= 1` must hold, but got latency_repeats=0"),
    (["--latency-threads", "two"], "argument --latency-threads: invalid int value"),
    (["--no-latency", "--latency-threads", "2"],
     "--latency-threads says how to time the family, but --no-latency turns"),
])
def test_bad_latency_input_is_one_line_exit_2_and_writes_nothing(argv, match, tmp_path, base_file,
                                                                 capsys, fake_bench) -> None:
    try:
        code = _cli(base_file, tmp_path / "run", *argv)
    except SystemExit as e:  # argparse's own complaints
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gridsearch: error: ") and match in err
    assert not (tmp_path / "run").exists() and fake_bench == []


def test_onnxruntime_without_the_extra_is_refused_before_the_run_folder(
        tmp_path, base_file, capsys, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("onnx") else real(name, *a))
    assert _cli(base_file, tmp_path / "run", "--latency-runtime", "onnxruntime") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'efficientnas[onnx]'" in err
    assert not (tmp_path / "run").exists()
