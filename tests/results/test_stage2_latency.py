"""The stage-2 dashboard's family latency (gridsearch --latency): read from family.csv and
coefficients.json (compute, then draw), shown only where the family was timed."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from results.dashboard import stage2_info, write_dashboard
from results.stage2_dashboard import device_text, family_columns, latency_note
from results.store import load_run

from .test_dashboard import figures, trace

DEVICE = {"device": "cpu", "cpu": "Test CPU 9000", "torch": "2.5.1", "threads": 1, "batch": 1,
          "runtime": "torch", "clock": "wall"}
LATENCY = {"settings": {"threads": 1, "batch": 1, "runtime": "torch", "clock": "wall"},
           "device": DEVICE, "warmup": 1, "repeats": 5, "statistic": "median", "spread": "iqr",
           "seconds": 3.0}


def _timed(run_dir, medians, iqrs):
    """The factory's family (MACs 100M x 2.1^phi) with latency columns and the device."""
    family = pd.read_csv(run_dir / "family.csv")
    family["latency_ms"], family["latency_iqr_ms"] = medians, iqrs
    family.to_csv(run_dir / "family.csv", index=False)
    coef = json.loads((run_dir / "coefficients.json").read_text())
    (run_dir / "coefficients.json").write_text(json.dumps({**coef, "latency": LATENCY}))
    return run_dir


def test_latency_is_read_from_family_csv_and_the_device_from_coefficients(tmp_path,
                                                                          stage2_factory):
    run_dir = _timed(stage2_factory(tmp_path / "s2", study=False), [10.0, 20.0, 40.0, 80.0],
                     [0.5, 1.0, math.nan, 2.0])
    lat = stage2_info(load_run(run_dir)).latency
    assert lat.phi == [0, 1, 2, 3] and lat.median_ms == [10.0, 20.0, 40.0, 80.0]
    assert lat.macs == [int(1e8 * 2.1 ** p) for p in range(4)]
    assert lat.iqr_ms[:2] == [0.5, 1.0] and math.isnan(lat.iqr_ms[2])
    assert lat.device == ("Test CPU 9000, 1 thread(s), batch 1, torch 2.5.1, wall clock; "
                          "median of 5 pass(es) after 1 warm-up")
    # ms per GMAC: 10 / 0.1 = 100 for B0, 80 / 0.9261 = 86.4 for B3
    assert "From B0 to B3: 100.0 to 86.4 ms per GMAC." in latency_note(lat)

    page = write_dashboard(run_dir).read_text()
    fig = figures(page)["fig-latency"]
    assert trace(fig, "median latency")["y"] == [10.0, 20.0, 40.0, 80.0]
    assert ">latency (ms)<" in page and ">80.00<" in page and "Timed on Test CPU 9000" in page


def test_untimed_members_and_families_show_no_latency(tmp_path, stage2_factory):
    part = _timed(stage2_factory(tmp_path / "p", study=False), [10.0, 20.0, None, None],
                  [0.5, 1.0, None, None])
    assert stage2_info(load_run(part)).latency.phi == [0, 1]

    plain = stage2_factory(tmp_path / "plain", study=False)  # a family.csv from before --latency
    info = stage2_info(load_run(plain))
    assert info.latency is None
    assert "latency_ms" not in dict(family_columns(info.family))
    page = write_dashboard(plain).read_text()
    assert "fig-latency" not in figures(page) and "latency (ms)" not in page
    assert "Not measured: pass --latency to gridsearch" in page


@pytest.mark.parametrize("latency, text", [
    (None, ""),
    ({"device": {**DEVICE, "runtime": "onnxruntime", "onnxruntime": "1.20.0", "threads": 4}},
     "Test CPU 9000, 4 thread(s), batch 1, onnxruntime 1.20.0, wall clock"),
])
def test_device_text(latency, text):
    assert device_text(latency) == text
