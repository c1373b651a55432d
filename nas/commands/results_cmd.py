"""``nas results RUN_DIR``: the best trials of a run folder of either stage.

The trials come from :func:`results.store.load_run`, which reads the Optuna study itself, so
this prints what the study holds even while the search is still running. ``--format csv``
writes every column of the trial table (results/store.py documents them); ``--json`` prints one
JSON object: the run's summary (``run_dir``, ``stage``, ``source``, ``states``), its ``trials``,
the top K with every column, and ``latency``: summary.json's latency block (the device, the
table, B0's predicted and measured latency) in a run that predicts latency, else null. The
table shows each trial's predicted latency and B0's measured one where the run has them.

Each row says what it is (``role``: ``B0``, or stage 2's ``chosen``; ``finalist`` for a search
trial retrained as a finalist; ``finalist run of trial N, seed i`` for one of those
retrainings), and the lines under the table say what the run chose: B0's finalists' mean
apart from its search score, or stage 2's point, and whether that choice is within the seeds'
noise (``choice: ...``, as the run wrote it). ``--json`` adds ``chosen_trial`` and ``verdict``.

``--copy-to URL`` moves a finished run's study into a database (Optuna's ``copy_study``): the
study is copied under ``--study-name`` (default: the run folder's name), the run's
``config.json`` then names the new storage, and the journal file is kept as it was. From then
on ``nas results``, ``--resume`` and more drivers (``--join``) use the database.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any, Callable

from .common import latency_line

NAME = "results"
HELP = "print the best trials of a run folder (stage 1 or 2) as a table, CSV (--format) or JSON"

# Columns of the table format per stage: (column, header).
TABLE_COLUMNS: dict[int, tuple[tuple[str, str], ...]] = {
    1: (("number", "trial"), ("role", "role"), ("reward", "reward"), ("accuracy", "accuracy"),
        ("macs", "MACs"),
        ("latency_ms", "latency"), ("params", "params"), ("duration_s", "time"),
        ("arch_hash", "arch"), ("node", "node")),
    2: (("number", "trial"), ("role", "role"), ("kind", "kind"), ("alpha", "alpha"),
        ("beta", "beta"),
        ("gamma", "gamma"), ("phi", "phi"), ("accuracy", "accuracy"), ("macs", "MACs"),
        ("params", "params"), ("reward", "reward"), ("duration_s", "time"), ("node", "node")),
}


# Columns shown only where a trial has a value.
OPTIONAL_COLUMNS = ("latency_ms", "role")
# How each stage names the trial it chose.
CHOSEN_NAME = {1: "B0", 2: "chosen"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run folder of `nas search` or "
                        "`gridsearch` (its --out)")
    parser.add_argument("--top", type=int, default=10, metavar="K",
                        help="how many of the best COMPLETE trials to print (default 10); "
                             "stage 1 ranks by reward, stage 2 as its --select (accuracy)")
    parser.add_argument("--copy-to", metavar="URL", help="copy the run's study into this "
                        "database (e.g. postgresql://user:password@host:5432/db) and point the "
                        "run folder at it; the run must not be running")
    parser.add_argument("--study-name", help="the copy's name with --copy-to (default: the run "
                        "folder's name)")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--format", default="table", choices=list(FORMATS),
                     help="table (default) or csv (every column)")
    out.add_argument("--json", action="store_true",
                     help='print one JSON object: {"run_dir", "stage", "source", "states", '
                          '"trials": [the top K, every column], "latency": summary.json\'s '
                          'latency block or null}')


def _cell(key: str, v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if key == "role":
        return str(v)
    if key == "macs":
        return f"{float(v) / 1e6:,.1f}M"
    if key == "params":
        return f"{float(v) / 1e6:.2f}M"
    if key == "latency_ms":
        return f"{float(v):.3g} ms"
    if key == "duration_s":
        return f"{float(v):.1f}s"
    if key in ("reward", "accuracy"):
        return f"{float(v):.4f}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _shown(key: str, run: Any, top: Any) -> bool:
    """Whether the table shows a column: not one the run never fills (latency in a MACs-only
    search), nor roles where every row shown is a plain search trial."""
    if key not in top.columns:
        return False
    if key == "role":
        return bool((top["role"] != "").any())
    return key not in OPTIONAL_COLUMNS or bool(run.trials[key].notna().any())


def _table(run: Any, top: Any) -> None:
    from rich import box
    from rich.table import Table

    from nas.commands.show import console

    states = ", ".join(f"{n} {s}" for s, n in sorted(run.states().items()))
    table = Table(title=f"best {len(top)} trials", box=box.SIMPLE)
    cols = [(k, h) for k, h in TABLE_COLUMNS[run.stage] if _shown(k, run, top)]
    for k, h in cols:
        table.add_column(h, justify="left" if k in ("kind", "arch_hash", "node", "role")
                         else "right")
    for _, row in top.iterrows():
        table.add_row(*(_cell(k, row[k]) for k, _ in cols))
    out = console()
    out.print(f"stage {run.stage} run {run.run_dir}: {states}")
    out.print(table)
    for line in _choice_lines(run):
        out.print(line, markup=False, soft_wrap=True)
    summary = _summary(run)
    line = latency_line(summary.get("latency"))
    if line is not None:
        out.print(f"B0 (trial {(summary.get('best') or {}).get('trial', '?')}): {line}")
    if run.source != "study":
        out.print(f"(read from {run.source}: the study storage {run.storage} could not be read)")


def _records(top: Any) -> list[dict[str, Any]]:
    """JSON-safe rows: NaN/NA become null, numpy scalars become Python numbers."""
    rows = json.loads(top.to_json(orient="records"))
    return [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in r.items()} for r in rows]


def _summary(run: Any) -> dict[str, Any]:
    """summary.json ({} while the run has not written it)."""
    from results.rundir import SUMMARY

    return run.read_json(SUMMARY) or {}


def _choice_file(run: Any) -> dict[str, Any]:
    """The file that says what the run chose: summary.json (stage 1) or coefficients.json
    (stage 2); {} while it is not written."""
    return (run.read_json("coefficients.json") if run.stage == 2 else _summary(run)) or {}


def _choice_lines(run: Any) -> list[str]:
    """What the run chose, each number labelled, and whether the choice is within the noise."""
    from results.store import choice_verdict, chosen_trial

    chosen = chosen_trial(run)
    if chosen is None:
        return []
    got = _choice_file(run)
    if run.stage == 2:
        lines = [f"chosen point: trial {chosen}, alpha {got['alpha']:g} beta {got['beta']:g} "
                 f"gamma {got['gamma']:g} (chosen by {got.get('chosen_by', '?')})"]
    else:
        from .search import best_line

        lines = [best_line(got)]
    verdict = choice_verdict(got.get("finalists"))
    if verdict is not None:
        lines.append(f"choice: {verdict.text}")
    return lines


def _with_roles(run: Any, top: Any) -> Any:
    """``top`` with a ``role`` column (:func:`results.store.trial_roles` over the whole run,
    so a search trial is marked a finalist even when its finalist runs are not in ``top``)."""
    from results.store import chosen_trial, trial_roles

    roles = dict(zip((int(n) for n in run.trials["number"]),
                     trial_roles(run.trials, chosen=chosen_trial(run),
                                 chosen_name=CHOSEN_NAME[run.stage])))
    return top.assign(role=[roles.get(int(n), "") for n in top["number"]])


def _json(run: Any, top: Any) -> None:
    from results.store import chosen_trial

    verdict = (_choice_file(run).get("finalists") or {}).get("verdict")
    print(json.dumps({"run_dir": str(run.run_dir), "stage": run.stage, "source": run.source,
                      "states": run.states(), "trials": _records(_with_roles(run, top)),
                      "latency": _summary(run).get("latency"),
                      "chosen_trial": chosen_trial(run), "verdict": verdict}))


def _csv(run: Any, top: Any) -> None:
    del run
    top.to_csv(sys.stdout, index=False)


FORMATS: dict[str, Callable[[Any, Any], None]] = {
    "table": lambda run, top: _table(run, _with_roles(run, top)), "csv": _csv}


def run(args: argparse.Namespace) -> int:
    from results.store import load_run, ranking, top_trials

    if args.top < 1:
        raise ValueError(f"`--top >= 1` must hold, but got --top {args.top}; pass e.g. --top 10")
    if args.study_name is not None and args.copy_to is None:
        raise ValueError("--study-name names the copy of --copy-to; add --copy-to URL")
    if args.copy_to is not None:
        copy_to(args.run_dir, args.copy_to, study_name=args.study_name)
    run_ = load_run(args.run_dir)
    top = top_trials(run_.trials, args.top, by=ranking(run_))
    (_json if args.json else FORMATS[args.format])(run_, top)
    return 0


def copy_to(run_dir: str, url: str, *, study_name: str | None = None) -> str:
    """Copy the run's study into the database ``url`` and point config.json at it; the name
    of the copy. Holding the run folder's lock, so no driver is running it."""
    from pathlib import Path

    import optuna

    from results.rundir import (STAGES, StorageError, is_database, open_storage, read_config,
                                redact, run_lock, stage_of, storage_url, write_config)
    from results.store import load_run

    folder = Path(run_dir)
    run_ = load_run(folder)  # a search run folder, else one line
    if run_.source != "study":
        raise ValueError(f"{run_dir!r} has no study to copy (read from {run_.source}); pass "
                         f"the folder of a run whose study is readable")
    if not is_database(url):
        raise ValueError(f"--copy-to {url!r} is not a database URL; pass e.g. "
                         f"postgresql://user:password@host:5432/db")
    config = read_config(folder)
    stage = stage_of(config) or str(run_.stage)
    name = study_name or folder.resolve().name
    with run_lock(folder, command="nas results --copy-to"):
        src = open_storage(storage_url(folder, config.get("storage")))
        from_name = config.get("study_name") or STAGES.get(stage).study_name
        running = optuna.load_study(study_name=from_name, storage=src).get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        if running:
            raise ValueError(f"{run_dir!r} has {len(running)} RUNNING trial(s); finish the "
                             f"run (or --resume it) before --copy-to")
        dst = open_storage(url)
        try:
            if name in optuna.get_all_study_names(dst):
                raise ValueError(f"study {name!r} already exists in {redact(url)}; pass "
                                 f"another --study-name")
            optuna.copy_study(from_study_name=from_name, from_storage=src, to_storage=dst,
                              to_study_name=name)
            copied = optuna.load_study(study_name=name, storage=dst)
            copied.set_user_attr("stage", stage)  # what --join checks (0.1 studies lack it)
            n = len(copied.get_trials(deepcopy=False))
        except optuna.exceptions.OptunaError as e:
            raise StorageError(f"copying to {redact(url)} failed: {e}") from None
        finally:
            dst.engine.dispose()
        write_config(folder, stage, {**config, "storage": url, "study_name": name})
    print(f"copied {n} trials of study {from_name!r} to {redact(url)} as {name!r}; "
          f"{run_dir} now reads it from there", file=sys.stderr)
    return name
