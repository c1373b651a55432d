"""The stage-2 driver with a fake evaluator: selection, outputs, resume, single-dimension runs
at the same measured MACs over seeds."""
from __future__ import annotations

import json
from pathlib import Path

import optuna
import pandas as pd
import pytest

from gridsearch.grid import PAPER, Grid, Point
from gridsearch.measure import MacsRatio
from gridsearch.plan import SINGLE_DIMENSION, plan
from gridsearch.search import STUDY_NAME, GridSearchConfig, run_gridsearch
from results.rundir import open_storage, storage_url
from results.store import GRID_COLUMNS
from space import compound, count_analytic, get_model, load_spec

# {1, 1.5, 2} x {1, 1.5} x {1, 1.5} with |product - 2| <= 0.25 keeps exactly
# (1, 1, 1.5), (1, 1.5, 1) and (2, 1, 1) (worked by hand in test_grid.py). On the tiny base they
# measure 2.2471, 2.4535 and 1.9311 times its MACs; with every score equal, the fewest MACs,
# (2, 1, 1), wins.
SMALL = Grid(step=0.5, tolerance=0.25, constraint="formula")
KEPT = [Point(1.0, 1.0, 1.5), Point(1.0, 1.5, 1.0), Point(2.0, 1.0, 1.0)]


def config(**kw) -> GridSearchConfig:
    kw.setdefault("grid", SMALL)
    kw.setdefault("family", (0, 2))
    kw.setdefault("finalists", 0)  # the tests that count trainings; finalists are tested below
    return GridSearchConfig(base="tiny", **kw)


def run(tmp_path: Path, base, evaluate, *, resume: bool = False, **kw):
    return run_gridsearch(config(**kw), out=tmp_path / "run", resume=resume, base=base,
                          evaluate=evaluate, count=count_analytic)


def test_plan_default_grid_and_given_coefficients() -> None:
    # a grid's comparison waits for its chosen point: only the grid is planned up front
    enum, jobs = plan(GridSearchConfig(grid=Grid(constraint="formula"), compare_single=True))
    assert enum.points_kept == len(jobs) == 109
    assert {j.kind for j in jobs} == {"compound"} and {j.replicate for j in jobs} == {0}
    assert len({j.key for j in jobs}) == len(jobs)
    b0 = MacsRatio(get_model("efficientnet-b0"), 1.0)
    enum, jobs = plan(GridSearchConfig(), measure=b0)  # the measured constraint, by default
    assert enum.grid.constraint == "measured" and enum.points_kept == len(jobs) == 102
    assert plan(GridSearchConfig(coefficients=PAPER)) == (None, [])
    _, jobs = plan(GridSearchConfig(coefficients=PAPER, compare_single=True, compare_seeds=2),
                   measure=b0)
    assert [(j.kind, j.replicate) for j in jobs] == [
        (k, r) for k in ("compound", *SINGLE_DIMENSION) for r in (0, 1)]
    assert jobs[0].point == jobs[1].point == PAPER and jobs[1].key == jobs[0].key + " #1"
    for j in jobs[2:]:  # each single point scales one coefficient alone, at B1's MACs
        assert sorted((j.point.alpha, j.point.beta, j.point.gamma))[:2] == [1.0, 1.0]
        assert b0(j.point) == pytest.approx(b0(PAPER), rel=0.1)


def test_selects_best_accuracy_and_writes_the_run_folder(tmp_path, tiny_base,
                                                          fake_evaluator) -> None:
    # the wide point (beta 1.5) scores best
    ev = fake_evaluator(score=lambda spec, proxy: 0.9 if spec.stages[1].out_channels > 16
                        else 0.5)
    res = run(tmp_path, tiny_base, ev)
    d = res.run_dir
    assert len(ev.calls) == 3
    coef = json.loads((d / "coefficients.json").read_text())
    assert (coef["alpha"], coef["beta"], coef["gamma"]) == (1.0, 1.5, 1.0)
    assert coef["selected_by"] == "accuracy" and coef["accuracy"] == 0.9
    assert coef["grid"] == {"alpha_range": [1.0, 2.0], "beta_range": [1.0, 1.5],
                            "gamma_range": [1.0, 1.5], "step": 0.5, "points_total": 12,
                            "points_kept": 3, "constraint": "formula", "goal_ratio": 2.0}
    assert coef["tolerance"] == 0.25 and coef["product"] == 2.25 and coef["complete"]
    assert coef["constraint"] == "formula"
    # fvcore re-counts the chosen point itself: the figure the analytic counter promised
    assert coef["fvcore"]["macs"] == coef["macs"] and coef["fvcore"]["equals_analytic"]
    assert coef["fvcore"]["ratio"] == pytest.approx(coef["macs_ratio"])
    wide = res.family[1]  # phi 1 with the chosen coefficients: the winning point itself
    assert coef["macs"] == wide.meta["macs"] == count_analytic(wide).macs
    assert coef["macs_ratio"] == pytest.approx(wide.meta["macs"] / count_analytic(tiny_base).macs)
    assert coef["formula_ratio"] == 2.25 and coef["compare_single"] is None
    assert coef["base"]["macs"] == count_analytic(tiny_base).macs

    grid = pd.read_csv(d / "grid.csv")
    assert list(grid.columns[:len(GRID_COLUMNS)]) == GRID_COLUMNS
    assert list(grid["state"]) == ["COMPLETE"] * 3
    assert sorted(zip(grid["alpha"], grid["beta"], grid["gamma"])) == [
        (p.alpha, p.beta, p.gamma) for p in KEPT]
    assert set(grid["proxy_resolution"]) == {32, 48}  # 32 * 1.5^1 for gamma 1.5
    assert (grid["macs_ratio"] > 1).all() and (grid["formula_ratio"] == grid["product"]).all()
    assert pd.read_parquet(d / "grid.parquet").shape == grid.shape

    assert [s.name for s in res.family] == ["tiny-b0", "tiny-b1", "tiny-b2"]
    assert load_spec(d / "family" / "b2.json").stages[1].out_channels == 40  # 16*2.25 -> 40
    assert load_spec(d / "base.json") == tiny_base
    fam = pd.read_csv(d / "family.csv")
    assert list(fam["phi"]) == [0, 1, 2] and fam["paper_name"].isna().all()
    assert json.loads((d / "config.json").read_text())["stage"] == 2


def test_ties_go_to_fewer_macs_and_reward_selection(tmp_path, tiny_base, fake_evaluator) -> None:
    res = run(tmp_path / "a", tiny_base, fake_evaluator())  # every point scores 0.5
    grid = pd.read_csv(res.run_dir / "grid.csv")
    fewest = grid.loc[grid["macs"].idxmin()]
    assert (res.coefficients["alpha"], res.coefficients["beta"], res.coefficients["gamma"]) == \
        (fewest["alpha"], fewest["beta"], fewest["gamma"])

    # accuracy rises with MACs a little: accuracy picks the largest, reward (w = -0.07) need not
    def score(spec, proxy):
        return 0.5 + 1e-9 * count_analytic(spec).macs
    res = run(tmp_path / "b", tiny_base, fake_evaluator(score=score), select="reward")
    grid = pd.read_csv(res.run_dir / "grid.csv")
    best = grid.loc[grid["reward"].idxmax()]
    assert res.coefficients["selected_by"] == "reward"
    assert res.coefficients["alpha"] == best["alpha"] and res.coefficients["beta"] == best["beta"]
    t = count_analytic(tiny_base).macs * 2
    assert best["reward"] == pytest.approx(best["accuracy"] * (best["macs"] / t) ** -0.07)


def test_identical_trainings_are_shared(tmp_path, tiny_base, fake_evaluator) -> None:
    # The chosen (2, 1, 1) has repeats (2, 4). Depth-only solved for its MACs is the first
    # depth with ceil(d) = 2 and ceil(2 d) = 4: d = 1.500001, the same network, trained once.
    ev = fake_evaluator()
    res = run(tmp_path, tiny_base, ev, compare_single=True, compare_seeds=1)
    grid = pd.read_csv(res.run_dir / "grid.csv")
    assert len(grid) == 6 and (grid["state"] == "COMPLETE").all()
    assert len(ev.calls) == 5 == len(set(ev.calls))
    depth = grid[grid["kind"] == "depth"].iloc[0]
    assert depth["alpha"] == 1.500001
    chosen = grid[(grid["kind"] == "compound") & (grid["alpha"] == 2.0)]["number"].iloc[0]
    assert depth["reused_from"] == chosen and depth["arch_hash"] == grid.set_index(
        "number").loc[chosen, "arch_hash"]
    kinds = [c["kind"] for c in res.coefficients["compare_single"]]
    assert kinds == ["depth", "width", "resolution"]


def test_interrupt_then_resume_never_retrains_a_finished_point(tmp_path, tiny_base,
                                                                fake_evaluator) -> None:
    first = fake_evaluator(raise_on_call=3)
    res = run(tmp_path, tiny_base, first, compare_single=True, compare_seeds=1)
    assert res.interrupted and len(first.calls) == 2
    coef = json.loads((res.run_dir / "coefficients.json").read_text())
    assert coef["complete"] is False and coef["points_done"] == 2
    states = pd.read_csv(res.run_dir / "grid.csv")["state"].tolist()
    assert states.count("COMPLETE") == 2 and states.count("INTERRUPTED") == 1

    # a driver killed mid-trial leaves a RUNNING trial behind
    study = optuna.load_study(study_name=STUDY_NAME,
                              storage=open_storage(storage_url(res.run_dir, None)))
    stale = study.ask()
    assert stale.number == 3

    second = fake_evaluator()
    res2 = run(tmp_path, tiny_base, second, resume=True, compare_single=True, compare_seeds=1)
    assert not res2.interrupted and res2.coefficients["complete"]
    # 5 distinct trainings in all (see test_identical_trainings_are_shared); 2 were done before
    assert len(second.calls) == 3
    assert not set(first.calls) & set(second.calls)
    grid = pd.read_csv(res2.run_dir / "grid.csv")
    done = grid[grid["state"] == "COMPLETE"]
    assert len(done) == 6 and not done.duplicated(["kind", "alpha", "beta", "gamma"]).any()

    third = fake_evaluator()
    run(tmp_path, tiny_base, third, resume=True, compare_single=True, compare_seeds=1)
    assert third.calls == []


def test_a_kill_in_the_comparison_loses_no_finished_seed(tmp_path, tiny_base,
                                                        fake_evaluator) -> None:
    # 3 grid trainings, then the comparison over 2 seeds: compound #1, width #0 #1, resolution
    # #0 #1 (depth #0 and #1 are the compound's own networks and seeds, reused): 8 trainings
    # for 10 trials.
    first = fake_evaluator(raise_on_call=6)
    res = run(tmp_path, tiny_base, first, compare_single=True, compare_seeds=2)
    assert res.interrupted and len(first.calls) == 5
    done = json.loads((res.run_dir / "compare_single.json").read_text())
    assert not done["complete"] and sum(r["seeds"] for r in done["variants"]) == 5
    second = fake_evaluator()
    res = run(tmp_path, tiny_base, second, resume=True, compare_single=True, compare_seeds=2)
    assert not res.interrupted and len(second.calls) == 3
    summary = json.loads((res.run_dir / "compare_single.json").read_text())
    assert summary["complete"] and [r["seeds"] for r in summary["variants"]] == [2, 2, 2, 2]
    grid = pd.read_csv(res.run_dir / "grid.csv")
    done = grid[grid["state"] == "COMPLETE"]
    assert len(done) == 10 and not done.duplicated(["kind", "alpha", "beta", "gamma",
                                                    "replicate"]).any()


def test_resume_may_reselect_but_not_retrain(tmp_path, tiny_base, fake_evaluator) -> None:
    def score(spec, proxy):
        return 0.5 + 1e-9 * count_analytic(spec).macs
    run(tmp_path, tiny_base, fake_evaluator(score=score))
    again = fake_evaluator()
    res = run(tmp_path, tiny_base, again, resume=True, select="reward", family=(0, 4))
    assert again.calls == [] and res.coefficients["selected_by"] == "reward"
    assert (res.run_dir / "family" / "b4.json").is_file()


def test_given_coefficients_train_nothing_unless_compared(tmp_path, tiny_base,
                                                          fake_evaluator) -> None:
    ev = fake_evaluator()
    res = run(tmp_path, tiny_base, ev, coefficients=PAPER, family=(0, 3))
    assert ev.calls == []
    coef = res.coefficients
    assert coef["selected_by"] == "given" and coef["accuracy"] is None
    assert coef["grid"] is None and coef["tolerance"] is None
    scaled = res.family[1]
    assert coef["macs_ratio"] == pytest.approx(scaled.meta["macs"] / count_analytic(tiny_base).macs)
    assert pd.read_csv(res.run_dir / "grid.csv").empty


@pytest.mark.parametrize("zoo", ["efficientnet-b0", "mobilenet-v2", "resnet-50"])
def test_compare_single_trains_at_the_compound_points_measured_macs(tmp_path, zoo,
                                                                     fake_evaluator) -> None:
    base = get_model(zoo)
    # accuracy rises with MACs, so a single network a little larger than compound scores higher
    ev = fake_evaluator(score=lambda spec, proxy: 0.5 + 1e-12 * count_analytic(
        spec.with_task(resolution=spec.resolution)).macs)
    res = run(tmp_path, base, ev, coefficients=PAPER, compare_single=True, compare_seeds=2,
              family=(0, 1))
    compound_macs = res.family[1].meta["macs"]  # the given point at phi 1
    assert res.coefficients["macs"] == compound_macs
    summary = json.loads((res.run_dir / "compare_single.json").read_text())
    assert summary["compound_macs"] == compound_macs and summary["complete"]
    rows = {r["kind"]: r for r in summary["variants"]}
    assert list(rows) == ["compound", "depth", "width", "resolution"]
    for kind in SINGLE_DIMENSION:
        r = rows[kind]
        coef = {"depth": r["alpha"], "width": r["beta"], "resolution": r["gamma"]}[kind]
        assert coef > 1 and sorted((r["alpha"], r["beta"], r["gamma"]))[:2] == [1.0, 1.0]
        assert abs(r["macs"] / compound_macs - 1) <= 0.1  # within --tolerance of compound
        assert r["within_tolerance"] and r["macs_vs_compound"] == pytest.approx(
            r["macs"] / compound_macs - 1)
        assert r["macs"] == count_analytic(compound(base, r["alpha"], r["beta"], r["gamma"],
                                                    1.0)).macs
        assert r["seeds"] == 2 and len(r["trials"]) == 2
    assert len(ev.calls) == 8  # 4 networks x 2 seeds, nothing shared
    single = {c["kind"]: c for c in res.coefficients["compare_single"]}
    assert single["width"]["accuracy"] == rows["width"]["accuracy_mean"]
    table = pd.read_csv(res.run_dir / "compare_single.csv")
    assert list(table["kind"]) == list(rows) and table["verdict"].notna().sum() == 3


def test_a_failing_point_is_recorded_and_the_grid_goes_on(tmp_path, tiny_base,
                                                          fake_evaluator) -> None:
    def score(spec, proxy):
        if proxy.resolution == 48:
            raise RuntimeError("out of memory")
        return 0.7
    res = run(tmp_path, tiny_base, fake_evaluator(score=score))
    grid = pd.read_csv(res.run_dir / "grid.csv")
    failed = grid[grid["state"] == "FAIL"]
    assert len(failed) == 1 and "out of memory" in failed["fail_reason"].iloc[0]
    assert res.coefficients["gamma"] == 1.0 and res.coefficients["complete"] is False


def test_bad_config_is_refused_before_anything_is_written(tmp_path, tiny_base) -> None:
    with pytest.raises(ValueError, match="phi >= 0"):
        config(phi=-1)
    with pytest.raises(KeyError, match="known: accuracy, reward"):
        config(select="loss")
    with pytest.raises(ValueError, match="leaves no point"):
        run_gridsearch(config(grid=Grid(step=0.5, tolerance=0.1, alpha_range=(1.0, 1.5))),
                       out=tmp_path / "run", base=tiny_base)
    assert not (tmp_path / "run").exists()


def test_compare_single_may_be_added_on_resume(tmp_path, tiny_base, fake_evaluator) -> None:
    first = fake_evaluator()
    run(tmp_path, tiny_base, first)
    second = fake_evaluator()
    res = run(tmp_path, tiny_base, second, resume=True, compare_single=True, compare_seeds=1)
    # depth-only equals the chosen compound point, already trained; width and resolution are new
    assert len(first.calls) == 3 and len(second.calls) == 2
    assert [c["kind"] for c in res.coefficients["compare_single"]] == ["depth", "width",
                                                                       "resolution"]


def test_resume_refuses_a_stage_1_folder(tmp_path, tiny_base) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"target_macs": 400000000}')
    with pytest.raises(ValueError, match="not a gridsearch run"):
        run(tmp_path, tiny_base, None, resume=True)


def test_points_train_with_proxy_batch_norm_momentum(tmp_path, tiny_base, fake_evaluator) -> None:
    seen = []

    def score(spec, proxy):
        seen.append(spec.bn_momentum)
        return 0.5
    res = run(tmp_path, tiny_base.replace(bn_momentum=0.01), fake_evaluator(score=score))
    assert seen == [0.1] * 3  # trained with 0.1 ...
    assert {s.bn_momentum for s in res.family} == {0.01}  # ... emitted with the base's


def test_dashboard_shows_the_seeds_and_the_ratio_against_two_to_the_phi(tmp_path, tiny_base,
                                                                        fake_evaluator) -> None:
    from results.stage2_dashboard import ratio_note, stage2_info
    from results.store import load_run

    res = run(tmp_path, tiny_base, fake_evaluator(), compare_single=True, compare_seeds=2,
              family=(0, 3))
    info = stage2_info(load_run(res.run_dir))
    c = info.compare
    assert c.kind == ["compound", "depth", "width", "resolution"] and c.seeds == [2, 2, 2, 2]
    assert c.std == [0.0] * 4  # the fake evaluator scores every seed 0.5
    assert c.verdict[0] == "" and all(v.startswith("within the noise") for v in c.verdict[1:])
    fam = pd.read_csv(res.run_dir / "family.csv")
    assert info.ratio.vs_nominal == pytest.approx(list(fam["ratio_vs_nominal"]))
    assert info.ratio.rounding == "paper"
    note = ratio_note(info.ratio)
    assert f"phi 1: x{fam['macs_ratio'][1]:.3f} vs 2 ({fam['ratio_vs_nominal'][1] - 1:+.1%})" \
        in note and "--rounding nearest" in note


def _lucky_wide(first: dict[str, int]):
    """An evaluator whose wide point (beta 1.5) is lucky once: 0.95 at its first training (the
    grid's), 0.80 at every other seed; the deep point (alpha 2) scores 0.85 (+ a little seed
    noise), the rest 0.5."""
    from types import SimpleNamespace

    def FakeResult(accuracy):  # noqa: N802 - stands in for the evaluator's result
        return SimpleNamespace(accuracy=accuracy, images_per_sec=1000.0)

    def evaluate(spec, proxy, *, seed, on_epoch=None):
        h = spec.arch_hash()
        first[h] = first.get(h, 0) + 1
        if spec.stages[1].out_channels > 16:
            return FakeResult(0.95 if first[h] == 1 else 0.80)
        if spec.stages[1].repeats > 2:
            return FakeResult(0.85 + (seed % 7) * 1e-4)
        return FakeResult(0.5)
    return evaluate


def test_finalists_choose_the_best_mean_not_the_lucky_seed(tmp_path, tiny_base) -> None:
    lucky = run(tmp_path / "grid", tiny_base, _lucky_wide({}))
    assert (lucky.coefficients["alpha"], lucky.coefficients["beta"]) == (1.0, 1.5)  # by luck
    calls: dict[str, int] = {}
    res = run(tmp_path / "fin", tiny_base, _lucky_wide(calls), finalists=2, finalist_seeds=3)
    coef = res.coefficients
    assert (coef["alpha"], coef["beta"], coef["gamma"]) == (2.0, 1.0, 1.0)
    assert coef["chosen_by"] == "finalists" and coef["complete"]
    fin = coef["finalists"]
    assert (fin["k"], fin["seeds"], fin["complete"]) == (2, 3, True)
    rows = {(r["alpha"], r["beta"]): r for r in fin["rows"]}
    assert set(rows) == {(1.0, 1.5), (2.0, 1.0)}  # the top 2 of the grid by reward
    wide, deep = rows[(1.0, 1.5)], rows[(2.0, 1.0)]
    assert wide["grid_accuracy"] == 0.95 and wide["accuracy_mean"] == pytest.approx(0.80)
    assert wide["accuracy_std"] == pytest.approx(0.0) and wide["done"] == 3
    deep_acc = [x["accuracy"] for x in deep["runs"]]
    assert len(deep_acc) == 3 and deep["accuracy_mean"] == pytest.approx(sum(deep_acc) / 3)
    assert fin["winner"] == deep["trial"] == coef["trial"]
    assert sum(calls.values()) == 3 + 2 * 3  # the grid, then 2 finalists x 3 seeds
    grid = pd.read_csv(res.run_dir / "grid.csv")
    assert grid["finalist"].sum() == 6 and set(grid[grid["finalist"]]["finalist_seed"]) == {
        0, 1, 2}
    # resumed: nothing trains again, and the choice stays the finalists'
    again: dict[str, int] = {}
    res = run(tmp_path / "fin", tiny_base, _lucky_wide(again), resume=True, finalists=2,
              finalist_seeds=3)
    assert again == {} and res.coefficients["chosen_by"] == "finalists"


def test_the_comparison_follows_the_finalists_winner(tmp_path, tiny_base) -> None:
    res = run(tmp_path, tiny_base, _lucky_wide({}), finalists=2, finalist_seeds=2,
              compare_single=True, compare_seeds=2)
    summary = json.loads((res.run_dir / "compare_single.json").read_text())
    compound = summary["variants"][0]
    assert (compound["alpha"], compound["beta"], compound["gamma"]) == (2.0, 1.0, 1.0)
    assert summary["complete"] and [r["seeds"] for r in summary["variants"]] == [2, 2, 2, 2]


def test_rungs_race_the_points_and_bad_finalists_are_refused(tmp_path, tiny_base) -> None:
    from gridsearch.search import Stage2

    two_epochs = config().proxy.__class__(train=config().proxy.train.__class__(epochs=2))
    stage = Stage2(config(rungs=(1, 2), proxy=two_epochs), base=tiny_base)
    assert (stage.pruner, stage.reports_epochs, stage.ladder.rungs) == ("asha", True, (1, 2))
    assert stage.ladder.reduction_factor == 3  # gridsearch keeps the best third by default
    halves = config(rungs=(1, 2), proxy=two_epochs, reduction_factor=2)
    assert Stage2(halves, base=tiny_base).ladder.reduction_factor == 2
    assert GridSearchConfig.from_dict(halves.to_dict()) == halves  # recorded, read back
    old = {k: v for k, v in halves.to_dict().items() if k != "reduction_factor"}
    assert GridSearchConfig.from_dict(old).reduction_factor == 3  # a run from before it
    with pytest.raises(ValueError, match="`reduction_factor >= 2` must hold"):
        config(reduction_factor=1)
    assert Stage2(config(), base=tiny_base).pruner == "none"
    with pytest.raises(ValueError, match="needs --epochs 2"):
        config(rungs=(1, 2))
    with pytest.raises(ValueError, match="rungs must increase"):
        config(rungs=(2, 1))
    with pytest.raises(ValueError, match="`finalists >= 0` must hold"):
        config(finalists=-1)
    assert not config(coefficients=PAPER, finalists=4).finalist_plan().enabled


def test_raced_points_may_stop_early_but_the_compared_networks_train_fully(tmp_path,
                                                                           tiny_base) -> None:
    from types import SimpleNamespace

    from nas.evaluate import ProxyConfig
    from nas.train import TrainConfig

    epochs_run: list[int] = []

    def evaluate(spec, proxy, *, seed, on_epoch=None):  # worse the more MACs, per epoch
        acc = 1.0 - count_analytic(spec.with_task(resolution=proxy.resolution)).macs / 1e7
        n = 0
        for e in range(1, proxy.train.epochs + 1):
            n = e
            on_epoch(SimpleNamespace(epoch=e, val_accuracy=acc))
        epochs_run.append(n)
        return SimpleNamespace(accuracy=acc, images_per_sec=1000.0)

    proxy = ProxyConfig(train=TrainConfig(epochs=2))
    res = run(tmp_path, tiny_base, evaluate, rungs=(1, 2), proxy=proxy, compare_single=True,
              compare_seeds=2, grid=Grid(step=0.5, tolerance=0.25))  # 4 measured points
    grid = pd.read_csv(res.run_dir / "grid.csv")
    points = grid[(grid["kind"] == "compound") & (grid["replicate"] == 0)]
    assert len(points) == 4 and (points["state"] == "PRUNED").sum() >= 1  # raced
    compared = grid[(grid["kind"] != "compound") | (grid["replicate"] > 0)]
    assert len(compared) == 1 + 3 * 2 and (compared["state"] == "COMPLETE").all()
    assert res.coefficients["complete"]  # a stopped point is done, not missing
    chosen = points[(points["alpha"] == res.coefficients["alpha"])
                    & (points["beta"] == res.coefficients["beta"])
                    & (points["gamma"] == res.coefficients["gamma"])]
    assert chosen["state"].tolist() == ["COMPLETE"]


def test_a_kill_in_the_finalists_loses_no_finished_seed(tmp_path, tiny_base,
                                                        fake_evaluator) -> None:
    # 3 grid trainings, then 2 finalists x 2 seeds: killed during the 2nd finalist training
    first = fake_evaluator(raise_on_call=5)
    res = run(tmp_path, tiny_base, first, finalists=2, finalist_seeds=2)
    assert res.interrupted and len(first.calls) == 4
    coef = json.loads((res.run_dir / "coefficients.json").read_text())
    assert coef["chosen_by"] == "grid" and not coef["complete"]
    assert sum(r["done"] for r in coef["finalists"]["rows"]) == 1
    second = fake_evaluator()
    res = run(tmp_path, tiny_base, second, resume=True, finalists=2, finalist_seeds=2)
    assert not res.interrupted and len(second.calls) == 3  # the 3 seeds still missing
    fin = res.coefficients["finalists"]
    assert fin["complete"] and [r["done"] for r in fin["rows"]] == [2, 2]
    assert res.coefficients["chosen_by"] == "finalists"


def test_dashboard_shows_the_finalists_and_only_grid_points_on_the_grid(tmp_path,
                                                                        tiny_base) -> None:
    from results.stage2_dashboard import fig_finalists, stage2_info
    from results.store import load_run

    res = run(tmp_path, tiny_base, _lucky_wide({}), finalists=2, finalist_seeds=3,
              compare_single=True, compare_seeds=2)
    info = stage2_info(load_run(res.run_dir))
    assert len(info.grid.number) == 3 and info.pending == 0  # not the 6 finalist runs, nor #1
    f = info.finalists
    assert f.label == ["alpha 2 beta 1 gamma 1", "alpha 1 beta 1.5 gamma 1"] and f.winner == 0
    assert f.grid_accuracy[1] == 0.95 and f.mean[1] == pytest.approx(0.80) and f.seeds == 3
    assert f.done == [3, 3]
    trace = fig_finalists(info).data[0]
    assert list(trace.y) == f.mean and list(trace.error_y.array) == pytest.approx(f.std)


def _two_close_points(first: dict[str, int], *, wobble: float):
    """An evaluator where the deep point (alpha 2) scores 0.85 and the wide one (beta 1.5)
    0.84 at their grid training; their finalist seeds add +wobble, -wobble, 0 in turn; the rest
    score 0.5."""
    from types import SimpleNamespace

    def evaluate(spec, proxy, *, seed, on_epoch=None):
        h = spec.arch_hash()
        i = first.get(h, 0)
        first[h] = i + 1
        offset = (wobble, -wobble, 0.0)[(i - 1) % 3] if i else 0.0
        if spec.stages[1].out_channels > 16:
            return SimpleNamespace(accuracy=0.84 + offset, images_per_sec=1000.0)
        if spec.stages[1].repeats > 2:
            return SimpleNamespace(accuracy=0.85 + offset, images_per_sec=1000.0)
        return SimpleNamespace(accuracy=0.5, images_per_sec=1000.0)
    return evaluate


@pytest.mark.parametrize("wobble, within", [(0.05, True), (0.001, False)])
def test_the_chosen_point_says_whether_it_is_within_noise(tmp_path, tiny_base, capsys, wobble,
                                                          within) -> None:
    from gridsearch.cli import _report
    from results.stage2_dashboard import stage2_info
    from results.store import load_run

    res = run(tmp_path, tiny_base, _two_close_points({}, wobble=wobble), finalists=2,
              finalist_seeds=3)
    coef = json.loads((res.run_dir / "coefficients.json").read_text())
    assert (coef["alpha"], coef["beta"]) == (2.0, 1.0)  # the deep point: mean 0.85
    v = coef["finalists"]["verdict"]
    rows = {r["trial"]: r for r in coef["finalists"]["rows"]}
    wide = next(n for n, r in rows.items() if r["beta"] == 1.5)
    # means 0.85 and 0.84; each seed's std is sqrt((w^2 + w^2) / 2) = w, so the spread is
    # sqrt(2) w: 0.0707 (> 0.01: within noise) or 0.0014 (< 0.01: a clear lead)
    assert (v["chosen"], v["runner_up"], v["measure"]) == (coef["trial"], wide, "accuracy")
    assert v["lead"] == pytest.approx(0.01) and v["spread"] == pytest.approx(2 ** 0.5 * wobble)
    assert v["within_noise"] is within
    assert v["text"].startswith(
        "the chosen point (alpha 2, beta 1, gamma 1) and point alpha 1, beta 1.5, gamma 1 "
        f"(trial {wide}) are within noise (0.01 apart in mean accuracy, combined seed std 0.071)"
        if within else
        "the chosen point (alpha 2, beta 1, gamma 1) leads point alpha 1, beta 1.5, gamma 1 "
        f"(trial {wide}) by 0.01 in mean accuracy, more than their combined seed std 0.0014")
    _report(res)
    assert f"choice: {v['text']}" in capsys.readouterr().out.splitlines()
    info = stage2_info(load_run(res.run_dir))
    assert info.verdict.text == v["text"] and info.verdict.within_noise is within
    # nas results marks the chosen point and its finalist runs, and says the same
    from nas.cli import main as nas

    assert nas(["results", str(res.run_dir), "--json", "--top", "20"]) == 0
    data = json.loads(capsys.readouterr().out)
    role = {t["number"]: t["role"] for t in data["trials"]}
    assert role[coef["trial"]] == "chosen" and role[wide] == "finalist"
    assert sum(r.startswith("finalist run of chosen, seed ") for r in role.values()) == 3
    assert data["verdict"] == v
    assert nas(["results", str(res.run_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert f"chosen point: trial {coef['trial']}, alpha 2 beta 1 gamma 1 (chosen by finalists)" \
        in out and f"choice: {v['text']}" in out


def test_a_single_finalist_point_has_no_runner_up(tmp_path, tiny_base) -> None:
    res = run(tmp_path, tiny_base, _two_close_points({}, wobble=0.01), finalists=1,
              finalist_seeds=2)
    v = res.coefficients["finalists"]["verdict"]
    assert (v["runner_up"], v["lead"], v["spread"], v["within_noise"]) == (None,) * 4
    assert "no runner-up" in v["text"]


def test_the_comparison_is_a_phase_of_one_run_and_the_result_a_value(tmp_path, tiny_base,
                                                                      fake_evaluator) -> None:
    """Stage 2 declares its phases; one run_study call runs the grid, the finalists and the
    single-dimension comparison in one session of the study (one driver, not a second
    resumed pass), and returns the stage's result as a value."""
    from nas.engine import run_study
    from gridsearch.search import GridSearchResult, Stage2
    from space import count_analytic

    stage = Stage2(config(compare_single=True, compare_seeds=1), base=tiny_base,
                   count=count_analytic)
    assert [p.name for p in stage.phases] == ["search", "finalists", "compare-single"]
    done = run_study(stage, out=tmp_path / "run", evaluate=fake_evaluator())
    assert isinstance(done.result, GridSearchResult) and not done.interrupted
    assert done.result.run_dir == done.run_dir
    assert [c["kind"] for c in done.result.coefficients["compare_single"]] == [
        "depth", "width", "resolution"]
    assert done.study.user_attrs["drivers"] == 1
    assert len(done.study.get_trials()) == 6
    assert not hasattr(stage, "coefficients") and not hasattr(stage, "family")


def test_the_finalists_block_reads_one_snapshot_of_a_shared_study(tmp_path, tiny_base) -> None:
    """With two drivers, a finalist seed can complete between two reads of the study. The
    finalists block must choose from the rows it wrote: a winner read later, complete there but
    not in the rows, crashed a driver of tests/nas/test_postgres.py (a KeyError from the
    verdict)."""
    import copy

    from optuna.trial import TrialState

    from gridsearch.outputs import _finalists_summary, coefficients_summary

    cfg = config(finalists=2, finalist_seeds=3)
    res = run(tmp_path / "fin", tiny_base, _lucky_wide({}), finalists=2, finalist_seeds=3)
    study = optuna.load_study(study_name=STUDY_NAME,
                              storage=open_storage(storage_url(res.run_dir, None)))
    after = study.get_trials(deepcopy=False)
    winner = res.coefficients["finalists"]["winner"]
    before = copy.deepcopy(after)  # the winner's last seed still training
    last = max((t for t in before if t.user_attrs.get("finalist_of") == winner),
               key=lambda t: t.number)
    last.state, last.datetime_complete = TrialState.RUNNING, None

    class Racing:  # the first read is from before that seed finished, every later one after
        def __init__(self) -> None:
            self.reads = 0

        def get_trials(self, deepcopy=False, states=None):
            self.reads += 1
            got = before if self.reads == 1 else after
            return [t for t in got if states is None or t.state in states]

    fin = _finalists_summary(Racing(), cfg)
    assert fin["complete"] is False and fin["winner"] != winner  # the rows' own winner
    assert fin["verdict"]["chosen"] == fin["winner"]
    # coefficients.json's chosen point and its finalists block come from one read too
    racing = Racing()
    racing.user_attrs = {}
    enum, jobs = plan(cfg, measure=MacsRatio(tiny_base, cfg.phi))
    coef = coefficients_summary(racing, cfg, tiny_base, count_analytic(tiny_base), enum, jobs,
                                count=count_analytic)
    assert racing.reads == 1
    assert coef["chosen_by"] == "finalists" and coef["complete"] is False
    assert coef["trial"] == coef["finalists"]["winner"] == fin["winner"]
