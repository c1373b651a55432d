"""nas latency-table, nas bench and nas export --format onnx: the files they write and their bad
input (one line, exit 2, nothing written). Timings here use 1 repeat on tiny networks and are
checked for structure and arithmetic only, never for speed."""
from __future__ import annotations

import importlib.util
import json

import pytest

from nas.cli import main
from space.latency import load_table, space_keys
from space.search_space import load_space
from space.spec import ArchSpec, StageSpec, StemSpec, save_spec

TINY_SPACE = """\
name: tiny
stem: 8
head: 16
activation: relu
choices:
  op: [dsconv, mbconv3]
  kernel: [3]
  se_ratio: [0.0, 0.25]
  skip: [identity, none]
  filters: [1.0, 1.5]
  layers: [0]
stages:
  - [8, 1, 1]
  - [16, 2, 2]
"""

HAS_ORT = all(importlib.util.find_spec(m) for m in ("onnx", "onnxscript", "onnxruntime"))


@pytest.fixture
def tiny_space(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY_SPACE)
    return path


def _tiny_spec(tmp_path, name="tiny-net.json"):
    spec = ArchSpec(name="tiny-net", stem=StemSpec(8), head_channels=16, activation="relu",
                    num_classes=10, resolution=32,
                    stages=(StageSpec("mbconv", 2, 3, 2, 16, expand_ratio=3.0, se_ratio=0.25),))
    save_spec(spec, tmp_path / name)
    return spec, tmp_path / name


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


FAST = ("--repeats", "1", "--warmup", "0")


def test_latency_table_times_every_entry_of_the_space(tmp_path, tiny_space, capsys) -> None:
    out = tmp_path / "table.json"
    code, stdout, err = _run(capsys, "latency-table", "--space", str(tiny_space), "--resolution",
                             "32", *FAST, "--rounds", "1", "--calibrate", "2", "-o", str(out),
                             "--json")
    assert code == 0, err
    table = load_table(out)
    want = {str(k) for k in space_keys(load_space(tiny_space), 32)}
    assert set(table.entries) == want
    assert all(v > 0 for v in table.entries.values())
    assert table.space == "tiny" and table.resolution == 32
    assert {"cpu", "torch", "threads", "batch", "runtime"} <= set(table.device)
    assert table.device["threads"] == 1 and table.device["runtime"] == "torch"
    cal = table.meta["calibration"]
    assert len(cal["sum_ms"]) == len(cal["measured_ms"]) == 2
    info = json.loads(stdout)
    assert info["entries"] == len(want) and info["overhead_ms"] == table.overhead_ms


@pytest.mark.parametrize("argv", [
    ("--space", "no-such-space"),
    ("--threads", "0"),
    ("--resolution", "-3"),
    ("--device", "tpu"),
    ("--calibrate", "-1"),
    ("--clock", "cpu", "--threads", "2"),
])
def test_latency_table_bad_input_is_exit_2_and_writes_nothing(tmp_path, tiny_space, capsys,
                                                              argv) -> None:
    out = tmp_path / "table.json"
    args = ["latency-table", "--space", str(tiny_space), *FAST, "-o", str(out), *argv]
    with pytest.raises(SystemExit) as e:  # argparse's own errors exit from parse_args
        raise SystemExit(main(args))
    err = capsys.readouterr().err
    assert e.value.code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not out.exists()


def test_latency_table_into_a_missing_folder_is_exit_2(tmp_path, tiny_space, capsys) -> None:
    out = tmp_path / "nope" / "table.json"
    code, _, err = _run(capsys, "latency-table", "--space", str(tiny_space), *FAST,
                        "-o", str(out))
    assert code == 2 and "does not exist" in err
    assert not (tmp_path / "nope").exists()


def test_bench_reports_median_iqr_and_throughput(tmp_path, capsys) -> None:
    _, path = _tiny_spec(tmp_path)
    code, out, err = _run(capsys, "bench", str(path), "--repeats", "5", "--warmup", "1",
                          "--batch", "2", "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["repeats"] == 5 and info["batch"] == 2 and info["resolution"] == 32
    assert info["median_ms"] > 0 and info["iqr_ms"] >= 0
    assert info["throughput_per_s"] == pytest.approx(2 / (info["median_ms"] / 1e3))
    assert info["device"]["batch"] == 2


def _hide_onnx(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("onnx") else real(name, *a))


@pytest.mark.parametrize("command", ["export", "bench", "latency-table"])
def test_without_the_onnx_extra_onnx_is_a_one_line_error(tmp_path, tiny_space, capsys,
                                                          monkeypatch, command) -> None:
    _hide_onnx(monkeypatch)
    _, path = _tiny_spec(tmp_path)
    out = tmp_path / "net.onnx"
    argv = {"export": ["export", str(path), "--format", "onnx", "-o", str(out)],
            "bench": ["bench", str(path), "--runtime", "onnxruntime", *FAST],
            "latency-table": ["latency-table", "--space", str(tiny_space), "--runtime",
                              "onnxruntime", *FAST, "-o", str(out)]}[command]
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "pip install 'efficientnas[onnx]'" in err
    assert not out.exists()


def test_onnx_export_needs_an_output_file(tmp_path, capsys) -> None:
    _, path = _tiny_spec(tmp_path)
    code, out, err = _run(capsys, "export", str(path), "--format", "onnx")
    assert code == 2 and "-o FILE" in err and out == ""


@pytest.mark.skipif(not HAS_ORT, reason="onnx extra not installed (pip install '.[onnx]')")
def test_onnx_export_round_trips_with_a_dynamic_batch(tmp_path, capsys) -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from nas.onnx_export import ATOL, RTOL, calibrate_bn, export_onnx_module
    from space.builder import build

    spec, _ = _tiny_spec(tmp_path)
    model = calibrate_bn(build(spec, seed=3), torch.randn(8, 3, 32, 32))
    path = export_onnx_module(model, torch.randn(2, 3, 32, 32), tmp_path / "m.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # neither is the example's batch of 2
        x = torch.randn(batch, 3, 32, 32)
        with torch.inference_mode():
            want = model(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == (batch, 10)
        assert np.abs(want).max() > 1e-3  # calibrated BN: outputs are not vanishingly small
        np.testing.assert_allclose(got, want, atol=ATOL, rtol=RTOL)


@pytest.mark.skipif(not HAS_ORT, reason="onnx extra not installed (pip install '.[onnx]')")
def test_nas_export_onnx_writes_a_verified_file(tmp_path, capsys) -> None:
    import onnx

    _, path = _tiny_spec(tmp_path)
    out = tmp_path / "net.onnx"
    code, stdout, err = _run(capsys, "export", str(path), "--format", "onnx", "-o", str(out),
                             "--json")
    assert code == 0, err
    info = json.loads(stdout)
    assert info["max_abs_diff"] <= info["atol"] and info["verified_batches"] == [1, 3]
    model = onnx.load(str(out))
    dim0 = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param and not dim0.dim_value  # the batch is symbolic
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_table_for_builds_once_then_reuses_the_cache(tmp_path, tiny_space, monkeypatch) -> None:
    from nas.latency import default_cache_path, device_info, table_for

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    space = load_space(tiny_space)
    first = table_for(space, resolution=32, threads=1, repeats=1, warmup=0)
    cached = default_cache_path("tiny", device_info(threads=1, batch=1), 32)
    assert cached.is_file() and str(tmp_path / "cache") in str(cached)
    stamp = cached.stat().st_mtime_ns
    again = table_for(space, resolution=32, threads=1, build=False)
    assert again == first and cached.stat().st_mtime_ns == stamp
    # another thread count is another device: no cached table for it
    with pytest.raises(FileNotFoundError, match="no cached latency table"):
        table_for(space, resolution=32, threads=2, build=False)


def test_table_for_refuses_another_space_device_resolution_or_a_broken_file(
        tmp_path, tiny_space, monkeypatch) -> None:
    from nas.latency import table_for
    from space.latency import LatencyTableError, save_table

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    space = load_space(tiny_space)
    table = table_for(space, resolution=32, threads=1, repeats=1, warmup=0)
    path = tmp_path / "t.json"
    save_table(table, path)
    assert table_for(space, resolution=32, threads=1, path=path) == table
    with pytest.raises(LatencyTableError, match="built for space 'tiny', not 'mnasnet'"):
        table_for(load_space("mnasnet"), resolution=32, threads=1, path=path)
    with pytest.raises(LatencyTableError, match="another device: threads 1"):
        table_for(space, resolution=32, threads=2, path=path)
    with pytest.raises(LatencyTableError, match="timed at 32 px, not 64"):
        table_for(space, resolution=64, threads=1, path=path)
    path.write_text(path.read_text()[:-40])
    with pytest.raises(LatencyTableError, match="not valid JSON"):
        table_for(space, resolution=32, threads=1, path=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        table_for(space, resolution=32, threads=1, path=tmp_path / "none.json")


def test_the_cli_choices_are_the_registries() -> None:
    from nas.commands.latency_table import CLOCK_NAMES, RUNTIME_NAMES, STATISTIC_NAMES
    from nas.latency import CLOCKS, RUNTIMES, STATISTICS

    assert tuple(RUNTIMES.names()) == RUNTIME_NAMES
    assert tuple(STATISTICS.names()) == STATISTIC_NAMES
    assert tuple(CLOCKS.names()) == CLOCK_NAMES


def test_a_table_keeps_the_smallest_value_over_rounds(tiny_space, monkeypatch) -> None:
    import nas.latency as lat

    space = load_space(tiny_space)
    keys = space_keys(space, 32)[:2]
    values = iter([5.0, 1.0, 7.0, 9.0, 2.0, 3.0, 4.0, 0.5])  # round 1: 5,1 / 7,9; round 2: ...

    def fake(run, *, warmup, repeats, batch=1, clock="wall"):
        return lat.Timing(tuple(next(values) for _ in range(repeats)), batch)

    monkeypatch.setattr(lat, "time_runner", fake)
    med = lat.build_table(space, resolution=32, threads=1, repeats=2, rounds=2, keys=keys)
    assert [med.entries[str(k)] for k in keys] == [min(3.0, 2.5), min(8.0, 2.25)]
    values = iter([5.0, 1.0, 7.0, 9.0, 2.0, 3.0, 4.0, 0.5])
    low = lat.build_table(space, resolution=32, threads=1, repeats=2, rounds=2, keys=keys,
                          statistic="min")
    assert [low.entries[str(k)] for k in keys] == [1.0, 0.5]
    assert low.meta["statistic"] == "min" and low.meta["rounds"] == 2


@pytest.mark.parametrize("name", ["mnasnet", "efficientnet"])
def test_each_entry_times_the_module_the_builder_puts_there(name) -> None:
    # An entry is worth summing only if it is the network's own piece: same parameters, same
    # output shape, for stem, every block and the head of a random member.
    import torch

    from nas.latency import entry_module
    from space.builder import build
    from space.latency import random_params, spec_keys

    space = load_space(name)
    spec = space.to_spec(random_params(space, seed=5)).with_task(resolution=64)
    net = build(spec, seed=0).eval()
    keys = spec_keys(spec)
    pieces = [net.stem, *[b for stage in net.stages for b in stage]]
    assert len(keys) == len(pieces) + 1

    def n_params(m):
        return sum(p.numel() for p in m.parameters())

    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        for key, piece in zip(keys, pieces):
            assert x.shape[-1] == key.size and x.shape[1] == key.in_channels
            entry = entry_module(key)
            assert n_params(entry) == n_params(piece), key
            y = piece(x)
            assert entry(x).shape == y.shape, key
            x = y
        head = entry_module(keys[-1])
        assert n_params(head) == n_params(net.head) + n_params(net.classifier)
        assert head(x).shape == (1, spec.num_classes)
