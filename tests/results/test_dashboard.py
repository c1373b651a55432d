"""Dashboards without a browser: the figures' data (points, front, curves), the page file, the
`nas dashboard` and `nas results` commands."""
from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from nas.cli import main
from space.objective import make_objective
from results.dashboard import stage1_info, stage2_info, watch, write_dashboard
from results.stage2_dashboard import TARGET_PRODUCT
from results.store import load_run

TARGET = 400_000_000


def figures(page: str) -> dict:
    """The figures a page draws, parsed from its inline script."""
    m = re.search(r"const FIGURES = (\{.*?\});\n", page, re.S)
    return json.loads(m.group(1).replace("<\\/", "</"))


def trace(fig: dict, name: str) -> dict:
    return next(t for t in fig["data"] if t.get("name") == name)


# ----------------------------------------------------------------------------- stage 1
def test_stage1_points_front_and_pruned(stage1_dir, stage1_points):
    info = stage1_info(load_run(stage1_dir))
    assert info.points.number == list(range(len(stage1_points)))
    assert info.points.accuracy == [a for a, _ in stage1_points]
    assert [info.points.number[i] for i in info.front] == [0, 1, 3, 5]
    assert info.pruned.number == [6] and info.pruned.accuracy == [0.5]
    assert (info.target_macs, info.a, info.b) == (TARGET, -0.07, -0.07)
    assert info.accuracy_range[0] < 0.5 and info.accuracy_range[1] > 0.9


def test_iso_reward_curves_hold_their_reward(stage1_dir):
    info = stage1_info(load_run(stage1_dir))
    objective = make_objective(TARGET)
    rewards = [r for r in info.points.reward]
    assert [c.reward for c in info.iso][-1] == pytest.approx(max(rewards), abs=1e-6)
    assert len(info.iso) == 4
    for c in info.iso:
        assert TARGET in c.cost and min(c.cost) < 100e6 and max(c.cost) > 450e6
        assert min(c.cost) == pytest.approx(100e6 / 1.5)  # the cheapest point drawn
        for m, acc in zip(c.cost, c.accuracy):
            assert objective.reward(acc, int(m)) == pytest.approx(c.reward, rel=1e-6)


def test_iso_curves_span_the_pruned_trials_too(tmp_path, stage1_factory):
    run_dir = stage1_factory(tmp_path / "p", [(0.8, 200e6)], pruned=[(0.3, 20e6)])
    info = stage1_info(load_run(run_dir))
    assert min(info.iso[0].cost) == pytest.approx(20e6 / 1.5)


def test_iso_curves_follow_the_hard_constraint(tmp_path, stage1_factory):
    run_dir = stage1_factory(tmp_path / "hard", [(0.8, 200e6), (0.9, 500e6)], constraint="hard")
    info = stage1_info(load_run(run_dir))
    assert (info.a, info.b) == (0.0, -1.0)
    c = info.iso[-1]
    flat = [acc for m, acc in zip(c.cost, c.accuracy) if 0.7 * TARGET <= m <= TARGET]
    assert flat == pytest.approx([c.reward] * len(flat))  # a = 0: flat from the floor to T
    low = [(m, acc) for m, acc in zip(c.cost, c.accuracy) if m < 0.7 * TARGET]
    assert low and all(acc == pytest.approx(c.reward * 0.7 * TARGET / m) for m, acc in low)
    above = [(m, acc) for m, acc in zip(c.cost, c.accuracy) if m > TARGET]
    assert all(acc == pytest.approx(c.reward * m / TARGET) for m, acc in above)


def test_best_so_far_by_trial_and_by_time(stage1_dir):
    info = stage1_info(load_run(stage1_dir))
    g = info.progress
    assert g.number == list(range(6))
    assert g.best_by_number == sorted(g.best_by_number)
    assert g.best_by_number[-1] == pytest.approx(max(info.points.reward))
    assert g.best_by_number[0] == pytest.approx(info.points.reward[0])
    # trial i starts at 10 i s and takes 5 s (conftest)
    assert g.elapsed_s == [5.0 + 10 * i for i in range(6)]


def test_choice_counts_cover_every_top_trial_in_every_stage(stage1_dir):
    run = load_run(stage1_dir)
    info = stage1_info(run, top_k=3)
    assert [t["number"] for t in info.top] == [3, 5, 4]
    dims = [g.dimension for g in info.choices]
    assert dims == ["op", "kernel", "se_ratio", "expand", "skip", "filters", "layers"]
    for g in info.choices:
        assert len(g.stages) == 7
        for s in range(7):
            assert sum(row[s] for row in g.counts) == 3
    op = info.choices[0]
    best = run.trials.set_index("number")
    for s in range(7):
        taken = [best.loc[n, f"p_s{s}_op"] for n in (3, 5, 4)]
        assert [op.counts[op.values.index(v)][s] for v in op.values] == \
            [taken.count(v) for v in op.values]


def test_best_architecture_stage_table_and_hover(stage1_dir):
    info = stage1_info(load_run(stage1_dir))
    stages = [r["stage"] for r in info.best_stages]
    assert stages == ["stem", *map(str, range(7)), "head"]
    arch = info.top[0]["arch"]
    assert arch.startswith("stem32 ") and arch.endswith(" head1280 relu")
    assert "\n" not in arch and len(arch.split()) == 7 + 3
    assert info.points.arch[3] == arch


def test_two_objective_runs_draw_too(tmp_path, stage1_factory):
    run_dir = stage1_factory(tmp_path / "nsga", [(0.7, 100e6), (0.8, 300e6), (0.75, 350e6)],
                             sampler="nsga2")
    run = load_run(run_dir)
    assert run.directions == ("maximize", "minimize")
    info = stage1_info(run)
    assert [info.points.number[i] for i in info.front] == [0, 1]
    assert all(math.isfinite(r) for r in info.points.reward)


def test_stage1_page_is_one_offline_file_with_the_figure_data(stage1_dir, stage1_points):
    path = write_dashboard(stage1_dir)
    assert path == stage1_dir / "dashboard.html"
    page = path.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # plotly.js is inlined, no CDN
    assert "Plotly.newPlot" in page and len(page) > 3_000_000
    assert "Search in progress: 1 trial(s) running" in page
    assert "optuna-dashboard " + str(stage1_dir / "study.journal") in page
    figs = figures(page)
    assert list(figs) == ["fig-search", "fig-progress", "fig-choices"]
    search = figs["fig-search"]
    assert len(trace(search, "trials")["x"]) == len(stage1_points)
    assert trace(search, "Pareto front")["y"] == [0.7, 0.8, 0.9, 0.9]
    assert len(trace(search, "pruned")["x"]) == 1
    assert search["layout"]["xaxis"]["type"] == "log"
    assert search["layout"]["shapes"][0]["x0"] == TARGET
    assert 'id="best-stages"' in page and 'id="top-trials"' in page
    assert not list(stage1_dir.glob(".*.tmp"))


def test_the_render_report_is_a_data_block_not_page_text(stage1_dir):
    # The browser writes the report into this element; a <pre> or <div> would show the JSON
    # to a person (tests/results/test_browser.py checks the rendered page's visible text).
    from results.html import REPORT_ID

    page = write_dashboard(stage1_dir).read_text()
    tags = re.findall(rf'<(\w+)[^>]*\bid="{REPORT_ID}"[^>]*>', page)
    assert tags == ["script"]
    assert re.search(rf'<script type="application/json" id="{REPORT_ID}" '
                     rf'data-state="pending"></script>', page)
    assert "#" + REPORT_ID not in page  # no style that would make it visible


def test_refresh_only_when_watching(stage1_dir, tmp_path):
    assert "http-equiv=\"refresh\"" not in write_dashboard(stage1_dir).read_text()
    out = write_dashboard(stage1_dir, tmp_path / "w.html", refresh_s=15)
    assert '<meta http-equiv="refresh" content="15">' in out.read_text()


def test_watch_rewrites_until_told_and_leaves_a_still_page(stage1_dir, tmp_path):
    sleeps = []
    out = watch(stage1_dir, tmp_path / "w.html", every_s=7, updates=2, sleep=sleeps.append)
    assert sleeps == [7] and out.is_file()
    assert "http-equiv" not in out.read_text()


def test_watch_waits_for_a_first_trial(tmp_path, stage1_factory):
    run_dir = stage1_factory(tmp_path / "r", [], running=1)

    def sleep(s):
        raise KeyboardInterrupt  # the user gives up before any trial finished

    with pytest.raises(ValueError, match="no complete trial yet"):
        watch(run_dir, every_s=1, sleep=sleep)


# ----------------------------------------------------------------------------- stage 2
def test_stage2_grid_surface_and_selection(stage2_factory, tmp_path):
    info = stage2_info(load_run(stage2_factory(tmp_path / "s2", running=1)))
    assert info.grid.number == [0, 1, 2, 3, 4]  # compound points only
    assert info.grid.alpha == [1.2, 1.0, 1.4, 1.1, 1.3]
    assert info.pending == 1
    assert info.selected == (1.2, 1.1, 1.15)
    s = info.surface
    assert (s.alpha[0], s.alpha[-1], s.beta[0], s.beta[-1]) == (1.0, 1.4, 1.0, 1.2)
    for j, b in enumerate(s.beta):
        for i, a in enumerate(s.alpha):
            g = s.gamma[j][i]
            if g is None:
                assert TARGET_PRODUCT / (a * b * b) < 1
            else:
                assert a * b * b * g * g == pytest.approx(TARGET_PRODUCT)


def test_stage2_surface_follows_the_runs_target_product(tmp_path, stage2_factory):
    info = stage2_info(load_run(stage2_factory(tmp_path / "t", target=2.2)))
    assert info.target_product == 2.2
    a, b, g = info.surface.alpha[3], info.surface.beta[2], info.surface.gamma[2][3]
    assert a * b * b * g * g == pytest.approx(2.2)


def test_stage2_macs_ratio_against_two_to_the_phi(stage2_dir):
    r = stage2_info(load_run(stage2_dir)).ratio
    assert r.phi == [0, 1, 2, 3]
    assert r.measured == pytest.approx([2.1 ** p for p in range(4)])
    assert r.two_phi == [1, 2, 4, 8]
    assert r.formula == pytest.approx([(1.2 * 1.1 ** 2 * 1.15 ** 2) ** p for p in range(4)])
    assert r.paper == pytest.approx([1.0, 0.70 / 0.39, 1.0 / 0.39, 1.8 / 0.39])


def test_stage2_compound_against_single_dimension(stage2_dir, tmp_path, stage2_factory):
    c = stage2_info(load_run(stage2_dir)).compare
    assert c.kind == ["depth", "width", "resolution", "compound"]
    assert c.accuracy == [0.84, 0.86, 0.85, 0.90]
    # from coefficients.json alone when the study holds no single-dimension points
    run_dir = stage2_factory(tmp_path / "c", study=False)
    pd.DataFrame([r for r in pd.read_csv(run_dir / "grid.csv").to_dict("records")
                  if r["kind"] == "compound"]).to_csv(run_dir / "grid.csv", index=False)
    assert stage2_info(load_run(run_dir)).compare.kind == ["depth", "width", "resolution",
                                                          "compound"]
    none = stage2_factory(tmp_path / "n", compare_single=False, study=False)
    pd.read_csv(none / "grid.csv").head(5).to_csv(none / "grid.csv", index=False)
    assert stage2_info(load_run(none)).compare is None


def test_stage2_page_with_and_without_the_final_files(stage2_dir, tmp_path, stage2_factory):
    page = write_dashboard(stage2_dir).read_text()
    figs = figures(page)
    assert list(figs) == ["fig-grid", "fig-ratio", "fig-compare"]
    assert len(trace(figs["fig-grid"], "grid points")["x"]) == 5
    assert len(trace(figs["fig-ratio"], "measured MACs / base MACs")["x"]) == 4
    assert page.count("<tr>") == 1 + 4 and ">B3<" in page  # family header + rows
    running = stage2_factory(tmp_path / "running", family=False, coef=False, running=1)
    page = write_dashboard(running).read_text()
    assert list(figures(page)) == ["fig-grid", "fig-compare"]
    assert "family.csv not written yet" in page
    assert "Search in progress" in page


# ----------------------------------------------------------------------------- commands
def nas(*argv: str) -> int:
    """`nas ARGV` in-process: its exit code, whether returned or raised by argparse."""
    try:
        return main(list(argv))
    except SystemExit as e:
        return int(e.code)


def test_nas_dashboard_writes_the_page(stage1_dir, tmp_path, capsys):
    out = tmp_path / "page.html"
    assert nas("dashboard", str(stage1_dir), "-o", str(out)) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert out.is_file()


@pytest.mark.parametrize("case, message", [
    ("not_a_run", "is not a run folder"),
    ("empty", "has no trials yet"),
    ("running_only", "has no complete trial yet (1 RUNNING)"),
])
def test_nas_dashboard_errors_are_one_line_exit_2(case, message, tmp_path, stage1_factory,
                                                   capsys):
    run_dir = tmp_path / case
    if case == "not_a_run":
        run_dir.mkdir()
    else:
        stage1_factory(run_dir, [], running=1 if case == "running_only" else 0)
    assert nas("dashboard", str(run_dir)) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (run_dir / "dashboard.html").exists()


def test_nas_dashboard_watch_must_be_positive(stage1_dir, capsys):
    assert nas("dashboard", str(stage1_dir), "--watch", "0") == 2
    assert "`--watch > 0` must hold" in capsys.readouterr().err


def test_nas_results_table(stage1_dir, capsys):
    assert nas("results", str(stage1_dir), "--top", "2") == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if re.match(r"^\s+\d+\s", ln)]
    assert [ln.split()[0] for ln in lines] == ["3", "5"]
    assert ": 6 COMPLETE, 1 FAIL, 1 PRUNED, 1 RUNNING" in out.splitlines()[0]


def test_nas_results_csv_and_json_hold_every_column(stage1_dir, capsys):
    import io

    assert nas("results", str(stage1_dir), "--format", "csv") == 0
    df = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert df["number"].tolist() == [3, 5, 4, 1, 2, 0]
    assert "p_s6_layers" in df and "arch_hash" in df
    assert nas("results", str(stage1_dir), "--json", "--top", "1") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stage"] == 1 and data["states"]["RUNNING"] == 1
    assert [t["number"] for t in data["trials"]] == [3]
    assert data["trials"][0]["fail_reason"] is None


def test_nas_results_stage2(stage2_dir, capsys):
    assert nas("results", str(stage2_dir), "--top", "3", "--json") == 0
    trials = json.loads(capsys.readouterr().out)["trials"]
    assert [(t["number"], t["kind"]) for t in trials] == [(0, "compound"), (1, "compound"),
                                                          (3, "compound")]


@pytest.mark.parametrize("argv, message", [
    (["--top", "0"], "`--top >= 1` must hold"),
    (["--format", "xml"], "invalid choice: 'xml'"),
    (["--format", "json"], "invalid choice: 'json'"),  # one way to JSON: --json
    (["--format", "csv", "--json"], "argument --json: not allowed with argument --format"),
])
def test_nas_results_bad_input(argv, message, stage1_dir, capsys):
    assert nas("results", str(stage1_dir), *argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.slow
def test_nas_dashboard_watch_stops_cleanly_on_ctrl_c(stage1_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "watch.html"
    proc = subprocess.Popen(
        [sys.executable, "-m", "nas.cli", "dashboard", str(stage1_dir), "--watch", "5",
         "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 90
        while not out.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "no page was written"
            time.sleep(0.1)
        assert 'http-equiv="refresh" content="5"' in out.read_text()
        time.sleep(0.3)  # into the wait between pages
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert stdout.strip() == str(out)
    assert "http-equiv" not in out.read_text()  # the last page no longer reloads
