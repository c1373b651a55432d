"""Run folders, study storage, resume and progress: shared by stage 1 and stage 2.

A run folder holds ``config.json`` (the settings it was started with), the Optuna study
(``study.journal``, an Optuna JournalStorage file, unless ``--storage URL`` names another
storage) and the outputs each stage writes. ``--resume`` reopens the same study: finished trials
are kept and never re-run; trials left RUNNING by a killed driver, or interrupted by Ctrl-C, are
marked failed and enqueued again with the same parameters.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import optuna
from optuna.trial import TrialState

log = logging.getLogger(__name__)

JOURNAL = "study.journal"
CONFIG = "config.json"
INTERRUPTED = "interrupted"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def new_run_dir(out: str | Path | None, *, root: str | Path = "runs") -> Path:
    if out is not None:
        return Path(out)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    p = Path(root) / stamp
    n = 1
    while p.exists():
        p = Path(root) / f"{stamp}-{n}"
        n += 1
    return p


def latest_run_dir(root: str | Path = "runs", *, marker: str = CONFIG) -> Path:
    runs = sorted((p for p in Path(root).glob("*") if (p / marker).exists()),
                  key=lambda p: p.stat().st_mtime)
    if not runs:
        raise FileNotFoundError(f"--resume found no run folder under {str(root)!r}; pass "
                                f"--out DIR naming the run to resume")
    return runs[-1]


def storage_url(run_dir: Path, storage: str | None) -> str:
    return storage if storage else f"journal:{run_dir / JOURNAL}"


def make_storage(url: str) -> optuna.storages.BaseStorage | str:
    """``journal:PATH`` -> an Optuna JournalStorage file; anything else is passed to Optuna
    (``sqlite:///...``, ``postgresql://...``)."""
    if url.startswith("journal:"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    return url


def check_resume_config(saved: Mapping[str, Any], given: Mapping[str, Any],
                        explicit: Sequence[str], *, mutable: Sequence[str]) -> None:
    """A resumed run keeps its settings; an explicitly given flag that differs is an error."""
    for key in explicit:
        if key in mutable or key not in saved:
            continue
        if saved[key] != given.get(key):
            flag = "--" + key.replace("_", "-")
            raise ValueError(f"{flag} {given.get(key)!r} differs from the resumed run's "
                             f"{saved[key]!r}; a resumed run keeps its settings: drop {flag} "
                             f"or start a new run with another --out")


def load_config(run_dir: Path) -> dict[str, Any]:
    p = run_dir / CONFIG
    if not p.exists():
        raise FileNotFoundError(f"{str(run_dir)!r} is not a run folder (no {CONFIG}); pass the "
                                f"--out of an earlier run to --resume")
    return json.loads(p.read_text())


def open_study(*, run_dir: Path, storage: str | None, study_name: str, directions: list[str],
               sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
               resume: bool) -> optuna.Study:
    url = storage_url(run_dir, storage)
    st = make_storage(url)
    exists = study_name in {s.study_name for s in optuna.get_all_study_summaries(st)}
    if exists and not resume:
        raise ValueError(f"study {study_name!r} already exists in {url}; pass --resume to "
                         f"continue it or --out NEW_DIR for a new run")
    if resume and not exists:
        raise ValueError(f"--resume found no study {study_name!r} in {url}")
    study = optuna.create_study(storage=st, study_name=study_name, directions=directions,
                                sampler=sampler, pruner=pruner, load_if_exists=resume)
    if resume:
        requeue_interrupted(study)
    return study


def requeue_interrupted(study: optuna.Study) -> int:
    """Fail trials a dead driver left RUNNING, and enqueue every interrupted trial again."""
    done = set(study.user_attrs.get("requeued", []))
    n = 0
    for t in study.get_trials(deepcopy=False):
        stale = t.state == TrialState.RUNNING
        interrupted = t.state == TrialState.FAIL and t.user_attrs.get("fail_reason") == INTERRUPTED
        if not (stale or interrupted) or t.number in done:
            continue
        if stale:
            study._storage.set_trial_user_attr(t._trial_id, "fail_reason", INTERRUPTED)
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number},
                                skip_if_exists=False)
        done.add(t.number)
        n += 1
    if n:
        study.set_user_attr("requeued", sorted(done))
        log.info("resume: %d interrupted trial(s) enqueued again", n)
    return n


def finished_count(study: optuna.Study) -> int:
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED)
               if t.user_attrs.get("fail_reason") != INTERRUPTED)


def node_name() -> str:
    return os.environ.get("EFFICIENTNAS_NODE", socket.gethostname())


@contextmanager
def progress(total: int | None, description: str) -> Iterator[Any]:
    """A rich progress bar (trials done, elapsed, best so far); silent when not a terminal."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn)

    console = Console(stderr=True)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), TextColumn("{task.fields[best]}"), console=console,
                   disable=not console.is_terminal, transient=False)
    with bar:
        task = bar.add_task(description, total=total, best="")

        class Handle:
            def advance(self, completed: int, best: str) -> None:
                bar.update(task, completed=completed, best=best)

        yield Handle()
