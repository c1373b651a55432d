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


# ----------------------------------------------------------------------------- what it reads
def _copy(run_dir, tmp_path):
    import shutil

    dst = tmp_path / run_dir.name
    shutil.copytree(run_dir, dst)
    return dst


def _rewrite_summary(run_dir, change):
    import json

    path = run_dir / "summary.json"
    summary = json.loads(path.read_text())
    change(summary)
    path.write_text(json.dumps(summary))
    return summary


def test_the_finalists_statistics_are_summary_jsons_not_recomputed(run_with_finalists, tmp_path):
    """Mean, std, order, completeness, B0 and verdict are what summary.json says: a block
    edited by hand is what the page shows (the per-seed dots still come from the trials)."""
    from results.stage1_dashboard import stage1_info
    from results.stage1.finalists import FROM_SUMMARY
    from results.store import load_run

    run_dir = _copy(run_with_finalists, tmp_path)
    before = stage1_info(load_run(run_dir))

    def edit(summary):
        block = summary["finalists"]
        block["table"] = block["table"][::-1]  # the other finalist first
        block["table"][0].update(mean=0.123, std=None, seeds_done=1)
        block["table"][1].update(mean=0.456, std=0.0789)
        block["verdict"]["text"] = "a verdict written by hand"

    summary = _rewrite_summary(run_dir, edit)
    info = stage1_info(load_run(run_dir))
    assert info.finalists_from == FROM_SUMMARY
    table = summary["finalists"]["table"]
    assert [f.trial for f in info.finalists] == [r["trial"] for r in table]
    first, second = info.finalists
    assert (first.mean, math.isnan(first.std), first.complete) == (0.123, True, False)
    assert (second.mean, second.std, second.complete) == (0.456, 0.0789, True)
    assert info.verdict.text == "a verdict written by hand"
    assert info.b0 == summary["best"]["trial"]
    # the raw per-seed values are the trials', unchanged by the edit
    old = {f.trial: f for f in before.finalists}
    assert all(f.rewards == old[f.trial].rewards and f.seeds == old[f.trial].seeds
               for f in info.finalists)


def test_a_folder_without_the_block_falls_back_to_the_trials_and_says_so(run_with_finalists,
                                                                         tmp_path):
    from results.dashboard import write_dashboard
    from results.stage1_dashboard import stage1_info
    from results.stage1.finalists import FROM_TRIALS
    from results.store import load_run
    from space.stats import mean_std

    run_dir = _copy(run_with_finalists, tmp_path)
    _rewrite_summary(run_dir, lambda s: (s.pop("finalists"), s.pop("best")))
    info = stage1_info(load_run(run_dir))
    assert info.finalists_from == FROM_TRIALS and info.verdict is None and info.b0 is None
    df = load_run(run_dir).trials
    sources = sorted(int(v) for v in df[df.finalist].finalist_of.unique())
    assert [f.trial for f in info.finalists] == sources  # trial order, no ranking
    for f in info.finalists:
        runs = df[df.finalist & (df.finalist_of == f.trial)].sort_values("finalist_seed")
        assert f.rewards == pytest.approx(list(runs.reward))
        assert (f.mean, f.std) == pytest.approx(mean_std(list(runs.reward)))
        assert f.complete
    page = write_dashboard(run_dir).read_text()
    assert "has no finalists block" in page and "B0: finalist trial" not in page


def test_the_legacy_02_block_is_read_and_01_has_no_finalists(tmp_path):
    import json
    from pathlib import Path

    from results.stage1_dashboard import stage1_info
    from results.stage1.finalists import FROM_SUMMARY
    from results.store import load_run

    fixtures = Path(__file__).parents[1] / "fixtures"
    run_dir = _copy(fixtures / "legacy-0.2" / "s1", tmp_path)
    block = json.loads((run_dir / "summary.json").read_text())["finalists"]
    assert "verdict" not in block  # 0.2 wrote no verdict
    info = stage1_info(load_run(run_dir))
    assert info.finalists_from == FROM_SUMMARY and info.verdict is None
    assert [(f.trial, f.mean, f.std, f.complete) for f in info.finalists] == [
        (r["trial"], r["mean"], r["std"], r["seeds_done"] == block["seeds"])
        for r in block["table"]]
    assert info.b0 == 0  # summary.json's best, chosen_by finalists
    assert info.finalists[0].rewards == pytest.approx([block["table"][0]["mean"]] * 2)
    old = stage1_info(load_run(_copy(fixtures / "legacy-0.1" / "s1", tmp_path / "01")))
    assert (old.finalists, old.finalists_from, old.b0) == ([], "", None)


def test_the_engine_and_the_dashboards_share_one_mean_std():
    from nas.engine import finalists
    from space.stats import mean_std

    assert finalists.mean_std is mean_std
    assert mean_std([]) == pytest.approx((math.nan, math.nan), nan_ok=True)
    assert mean_std([2.0])[0] == 2.0 and math.isnan(mean_std([2.0])[1])
    assert mean_std([1.0, 2.0, 6.0]) == pytest.approx((3.0, math.sqrt(7.0)))
