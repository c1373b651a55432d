"""The stage 1 dashboard of a run that predicts latency (`nas search --target-latency`,
`--objectives accuracy,latency`): the objective on the latency axis in ms, B0 and the finalists
at their predicted and measured latency, the Pareto front over the run's second objective, and
`nas results`. Run folders written by the search itself (tests/results/conftest.py)."""
from __future__ import annotations

import json
import math
import re

import pytest

from nas.cli import main
from results.dashboard import stage1_info, write_dashboard
from results.pareto import dominates
from results.stage1_dashboard import fig_latency, fig_search, iso_curve
from results.store import load_run
from space import load_spec
from space.objective import make_objective

from .test_dashboard import figures, trace

from .conftest import TARGET_MS  # latency_run's target


def front_by_definition(accuracy, cost):
    pts = list(zip(accuracy, cost))
    return sorted((i for i, p in enumerate(pts) if not any(dominates(q, p) for q in pts)),
                  key=lambda i: (cost[i], i))


def search_rows(run):
    df = run.trials
    return df[(~df.finalist) & (df.state == "COMPLETE")].sort_values("number")


# ----------------------------------------------------------------------------- the objective
def test_a_latency_run_draws_its_objective_in_ms(latency_run):
    run = load_run(latency_run)
    info = stage1_info(run)
    assert (info.metric, info.target, info.target_macs) == ("latency", TARGET_MS, None)
    assert (info.a, info.b, info.floor) == (-0.07, -0.07, 0.0)
    rows = search_rows(run)
    assert info.points.number == rows.number.tolist()
    assert info.points.latency_ms == pytest.approx(rows.latency_ms.tolist())
    assert info.points.macs == rows.macs.tolist()  # MACs are recorded in every run
    objective = make_objective(TARGET_MS, metric="latency")
    assert info.points.reward == pytest.approx(
        [objective.reward(a, c) for a, c in zip(info.points.accuracy, info.points.latency_ms)])
    assert len(info.iso) == 4
    for c in info.iso:
        assert TARGET_MS in c.cost and min(c.cost) == pytest.approx(
            min(info.points.latency_ms + [TARGET_MS]) / 1.5)
        for ms, acc in zip(c.cost, c.accuracy):
            assert objective.reward(acc, ms) == pytest.approx(c.reward, rel=1e-9)


@pytest.mark.parametrize("constraint, at, factor", [
    # soft: ACC x (LAT/T)^-0.07 is the reward, so ACC = reward x (LAT/T)^0.07
    ("soft", 1.0, 1.0), ("soft", 2.0, 2 ** 0.07), ("soft", 0.5, 0.5 ** 0.07),
    # hard: flat from 0.7 T to T, x LAT/T above (b = -1), x 0.7T/LAT below the floor
    ("hard", 0.8, 1.0), ("hard", 2.0, 2.0), ("hard", 0.35, 2.0),
])
def test_iso_curves_on_latency_at_worked_points(constraint, at, factor):
    objective = make_objective(20.0, constraint=constraint, metric="latency")
    curve = iso_curve(0.5, objective, [20.0 * at])
    assert curve.cost == [20.0 * at]
    assert curve.accuracy == pytest.approx([0.5 * factor])


def test_a_hard_latency_run_bends_its_curves_at_the_floor(tmp_path, tiny_space_text,
                                                          search_factory):
    run_dir = search_factory(tmp_path, tiny_space_text, "hard", target_latency_ms=TARGET_MS,
                             constraint="hard", sampler="random", finalists=0)
    info = stage1_info(load_run(run_dir))
    assert (info.a, info.b, info.floor) == (0.0, -1.0, 0.7)
    c = info.iso[-1]
    assert 0.7 * TARGET_MS in c.cost
    for ms, acc in zip(c.cost, c.accuracy):
        want = c.reward * (0.7 * TARGET_MS / ms if ms < 0.7 * TARGET_MS
                           else ms / TARGET_MS if ms > TARGET_MS else 1.0)
        assert acc == pytest.approx(want)


# ----------------------------------------------------------------------------- B0, finalists
def test_b0_and_the_finalists_at_their_predicted_and_measured_latency(latency_run):
    run = load_run(latency_run)
    info = stage1_info(run)
    meta = load_spec(latency_run / "best.json").meta
    timed = info.latency.timed
    assert [t.role for t in timed] == ["B0", "finalist"]
    b0 = timed[0]
    assert b0.trial == meta["trial"]
    assert b0.predicted_ms == pytest.approx(meta["latency_ms"])
    assert b0.measured_ms == pytest.approx(meta["latency_ms_measured"])
    assert b0.error == pytest.approx(meta["latency_ms_measured"] / meta["latency_ms"] - 1)
    rows = {r["trial"]: r for r in meta["finalists"]}
    assert sorted(rows) == sorted(t.trial for t in timed)
    for t in timed:
        row = rows[t.trial]
        assert t.predicted_ms == pytest.approx(row["latency_ms"])
        assert t.measured_ms == pytest.approx(row["latency_ms_measured"])
        accs = [r["accuracy"] for r in row["runs"]]
        assert t.seeds == 3 and t.accuracy == pytest.approx(row["accuracy_mean"])
        mean = sum(accs) / 3
        assert t.accuracy_std == pytest.approx(
            math.sqrt(sum((a - mean) ** 2 for a in accs) / 2))
        assert t.accuracy_std > 0  # fake_evaluate's seeds differ
    # the predicted latency is the search trial's own
    by_number = dict(zip(info.points.number, info.points.latency_ms))
    assert all(t.predicted_ms == pytest.approx(by_number[t.trial]) for t in timed)


def test_the_latency_figure_joins_predicted_to_measured(latency_run):
    info = stage1_info(load_run(latency_run))
    fig = fig_latency(info).to_plotly_json()
    timed = info.latency.timed
    b0 = trace(fig, "B0 measured")
    assert b0["x"] == [timed[0].measured_ms] and b0["y"] == [timed[0].accuracy]
    assert b0["error_y"]["array"] == pytest.approx([timed[0].accuracy_std])
    fin = trace(fig, "finalists measured")
    assert fin["x"] == [t.measured_ms for t in timed[1:]]
    assert trace(fig, "predicted (table)")["x"] == [t.predicted_ms for t in timed]
    segments = trace(fig, "predicted → measured")
    assert segments["x"] == [v for t in timed for v in (t.predicted_ms, t.measured_ms, None)]
    assert segments["y"] == [v for t in timed for v in (t.accuracy, t.accuracy, None)]
    hover = b0["hovertext"][0]
    assert f"trial {timed[0].trial}" in hover and "predicted" in hover and "measured" in hover
    assert trace(fig, "trials")["x"] == info.points.latency_ms
    assert [s["x0"] for s in fig["layout"]["shapes"]] == [TARGET_MS]
    label = fig["layout"]["annotations"][0]
    assert label["text"] == "T = 3 ms" and label["x"] == pytest.approx(math.log10(TARGET_MS))
    lo, hi = fig["layout"]["xaxis"]["range"]
    drawn = [*info.points.latency_ms, *(t.measured_ms for t in timed), TARGET_MS]
    assert 10 ** lo < min(drawn) and 10 ** hi > max(drawn)
    assert sum(1 for t in fig["data"] if t.get("legendgroup") == "iso") == len(info.iso)


def test_the_macs_view_stays_without_the_latency_objective(latency_run):
    info = stage1_info(load_run(latency_run))
    fig = fig_search(info).to_plotly_json()
    assert trace(fig, "trials")["x"] == [float(m) for m in info.points.macs]
    names = [t.get("name") for t in fig["data"]]
    assert "Pareto front" not in names and not fig["layout"].get("shapes")
    assert not any(t.get("legendgroup") == "iso" for t in fig["data"])


def test_a_latency_page_names_the_device_and_the_table(latency_run):
    page = write_dashboard(latency_run).read_text()
    figs = figures(page)
    assert list(figs) == ["fig-latency", "fig-search", "fig-progress", "fig-finalists",
                          "fig-choices"]
    summary = json.loads((latency_run / "summary.json").read_text())["latency"]
    assert f"fingerprint {summary['table']['fingerprint']}" in page
    assert f"{summary['table']['entries']} entries at 32 px" in page
    assert "1 thread(s), batch 1, torch, wall clock" in page
    meta = load_spec(latency_run / "best.json").meta
    b0 = re.search(r"<b>B0 latency</b> ([^<]*)</span>", page)[1]
    assert b0.startswith(f"trial {meta['trial']}: predicted {meta['latency_ms']:.3g} ms, "
                         f"measured {meta['latency_ms_measured']:.3g} ms (")
    assert "<b>target T</b> 3 ms on this device" in page
    assert "ACC x (latency/T)^w" in page
    assert "<th>latency (predicted)</th>" in page


def test_a_run_not_timed_yet_says_so(latency_run, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(latency_run, copy)
    best = json.loads((copy / "best.json").read_text())
    for k in ("latency_ms_measured", "latency_device"):
        best["meta"].pop(k)
    for row in best["meta"]["finalists"]:
        row.pop("latency_ms_measured")
    (copy / "best.json").write_text(json.dumps(best))
    info = stage1_info(load_run(copy))
    assert all(math.isnan(t.measured_ms) for t in info.latency.timed)
    names = [t.name for t in fig_latency(info).data]
    assert "B0 measured" not in names and "predicted → measured" not in names
    assert "measured when the run ends" in write_dashboard(copy).read_text()


# ----------------------------------------------------------------------------- nsga2
def test_an_nsga2_front_is_over_its_second_objective(nsga2_latency_run):
    run = load_run(nsga2_latency_run)
    assert run.config["objectives"] == ["accuracy", "latency"]
    info = stage1_info(run)
    assert (info.metric, info.front_metric, info.target_macs) == ("macs", "latency", 2_000_000)
    p = info.points
    assert info.front == front_by_definition(p.accuracy, p.latency_ms)
    assert len(info.front) >= 1
    lat = fig_latency(info).to_plotly_json()
    assert trace(lat, "Pareto front")["x"] == [p.latency_ms[i] for i in info.front]
    assert not lat["layout"].get("shapes")  # T is in MACs
    macs = fig_search(info).to_plotly_json()
    assert "Pareto front" not in [t.get("name") for t in macs["data"]]
    assert [s["x0"] for s in macs["layout"]["shapes"]] == [2_000_000]
    # B0 without finalists: the search's best, timed at the end
    meta = load_spec(nsga2_latency_run / "best.json").meta
    assert [(t.role, t.trial, t.seeds) for t in info.latency.timed] == [("B0", meta["trial"], 1)]
    assert info.latency.timed[0].measured_ms == pytest.approx(meta["latency_ms_measured"])
    page = write_dashboard(nsga2_latency_run).read_text()
    assert list(figures(page))[:2] == ["fig-search", "fig-latency"]
    assert "accuracy, latency (the Pareto front)" in page


def test_a_macs_run_has_no_latency_view(stage1_dir):
    info = stage1_info(load_run(stage1_dir))
    assert (info.metric, info.front_metric, info.latency) == ("macs", "macs", None)
    assert all(math.isnan(v) for v in info.points.latency_ms)
    page = write_dashboard(stage1_dir).read_text()
    facts = re.search(r'<div class="facts">(.*?)</div>', page, re.S)[1]
    keys = re.findall(r"<b>([^<]*)</b>", facts)
    assert "target T" in keys and not [k for k in keys if "latency" in k]
    assert "<b>objective</b> ACC x (MACs/T)^w" in facts
    assert "<th>latency (predicted)</th>" not in page


# ----------------------------------------------------------------------------- nas results
def nas(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as e:
        return int(e.code)


def test_nas_results_shows_the_predicted_and_measured_latency(latency_run, capsys):
    run = load_run(latency_run)
    meta = load_spec(latency_run / "best.json").meta
    assert nas("results", str(latency_run), "--top", "3") == 0
    out = capsys.readouterr().out
    header = next(ln for ln in out.splitlines() if "trial" in ln and "reward" in ln)
    assert header.split()[:6] == ["trial", "role", "reward", "accuracy", "MACs", "latency"]
    top = run.trials.sort_values(["reward", "macs", "number"], ascending=[False, True, True])
    first = next(ln for ln in out.splitlines() if re.match(rf"^\s+{top.number.iloc[0]}\s", ln))
    assert f"{top.latency_ms.iloc[0]:.3g} ms" in first
    assert (f"B0 (trial {meta['trial']}): predicted {meta['latency_ms']:.2f} ms, measured "
            f"{meta['latency_ms_measured']:.2f} ms") in out
    assert nas("results", str(latency_run), "--top", "1", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trials"][0]["latency_ms"] == pytest.approx(top.latency_ms.iloc[0])
    assert data["latency"]["best"]["measured_ms"] == pytest.approx(meta["latency_ms_measured"])


def test_nas_results_of_a_macs_run_has_no_latency(stage1_dir, capsys):
    assert nas("results", str(stage1_dir)) == 0
    assert "latency" not in capsys.readouterr().out
    assert nas("results", str(stage1_dir), "--json") == 0
    assert json.loads(capsys.readouterr().out)["latency"] is None
