"""The stage-1 dashboard's finalists: computed from a real run folder (compute, then draw)."""
from __future__ import annotations

import math

import pytest


@pytest.fixture(scope="module")
def run_with_finalists(tmp_path_factory, tiny_space_text, search_factory):
    return search_factory(tmp_path_factory.mktemp("fin"), tiny_space_text, "run",
                          target_macs=2_000_000, sampler="random", finalists=2,
                          finalist_seeds=3)


def test_the_dashboard_shows_the_finalists_with_their_spread(run_with_finalists):
    from results.stage1_dashboard import fig_finalists, stage1_info
    from results.store import load_run
    from space import load_spec

    run = load_run(run_with_finalists)
    info = stage1_info(run)
    assert len(info.finalists) == 2 and info.finalist_seeds == 3
    df = run.trials
    # the search's points are the search trials only; the finalists are drawn apart
    assert sorted(info.points.number) == sorted(
        df[(~df.finalist) & (df.state == "COMPLETE")].number)
    meta = load_spec(run_with_finalists / "best.json").meta
    assert info.finalists[0].trial == meta["trial"]  # best mean first, and it is B0
    for f, row in zip(info.finalists, meta["finalists"]):
        assert f.trial == row["trial"] and f.complete and f.seeds == [0, 1, 2]
        assert f.rewards == pytest.approx([r["reward"] for r in row["runs"]])
        assert f.mean == pytest.approx(row["mean"]) and f.std == pytest.approx(row["std"])
        assert f.search_reward == pytest.approx(row["search_reward"])
        assert math.isfinite(f.std) and f.std > 0  # the seeds differ
    fig = fig_finalists(info)
    means = next(t for t in fig.data if t.name == "mean ± std")
    assert list(means.error_y.array) == pytest.approx([f.std for f in info.finalists])
    page = (run_with_finalists / "dashboard.html").read_text()
    assert "fig-finalists" in page and "B0: finalist trial" in page


def test_nas_results_marks_b0_and_the_finalist_runs(run_with_finalists, capsys):
    import json

    import pandas as pd

    from nas.cli import main as nas
    from space import load_spec

    meta = load_spec(run_with_finalists / "best.json").meta
    b0 = meta["trial"]
    summary = json.loads((run_with_finalists / "summary.json").read_text())
    assert nas(["results", str(run_with_finalists), "--json", "--top", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    df = pd.read_csv(run_with_finalists / "trials.csv").set_index("number")
    role = {t["number"]: t["role"] for t in data["trials"]}
    assert role[b0] == "B0" and data["chosen_trial"] == b0
    assert data["verdict"] == summary["finalists"]["verdict"]
    for n, r in role.items():
        if df.finalist[n]:
            src = int(df.finalist_of[n])
            which = "B0" if src == b0 else f"trial {src}"
            assert r == f"finalist run of {which}, seed {int(df.finalist_seed[n])}"
        elif n != b0:
            assert r == ("finalist" if n in set(df.finalist_of.dropna()) else "")
    assert nas(["results", str(run_with_finalists), "--top", "20"]) == 0
    out = capsys.readouterr().out
    assert f"finalist run of B0, seed 0" in out
    assert f"B0 = trial {b0}: mean reward {meta['reward']:.4f} over 3 seeds" in out
    assert f"choice: {summary['finalists']['verdict']['text']}" in out
