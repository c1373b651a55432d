"""The study driver both stages run on: :func:`run_study`.

It opens (or, on ``--resume``, reopens) the run folder and holds its lock, writes
``config.json``, opens the Optuna study, lets the stage enqueue what it must, and runs the
trials on a backend (an :class:`.executor.Executor`, opened by name from the table the
backends register into, :mod:`nas.backends`): ask, propose, train, tell, until the stage's
budget or the timeout is spent or Ctrl-C. The pruner is built from the stage's fidelity ladder
(:mod:`.fidelity`). When the stage plans finalists (:mod:`.finalists`), a second phase then
enqueues them in the same study and runs them, unpruned and without the timeout.
After every trial the stage writes its outputs (so an interrupted run loses nothing finished)
and the progress bar and log advance; at the end the stage writes its final outputs and the
dashboard is drawn from the run folder.
"""
from __future__ import annotations

import logging
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna

from nas.evaluate import evaluate_proxy
from results.rundir import (CONFIG, STAGES, latest_run_dir, new_run_dir, read_config, run_lock,
                            stage_of, write_config)

from .executor import BackendConfig, Executor, open_backend
from .fidelity import ladder_of
from .finalists import (begun, enqueue_finalists, finalist_sources, plan_of, shortfall,
                        waiting_finalists)
from .recorder import finished_count
from .registries import PRUNERS
from .study import StorageConfig, StudySession, driver_seed, open_session, resolve_storage
from .trial import Stage, TrialRunner

log = logging.getLogger(__name__)

__all__ = ["StudyRun", "run_study", "resume_dir", "progress"]


@dataclass
class StudyRun:
    run_dir: Path
    study: optuna.Study
    interrupted: bool
    backend: dict[str, Any]


def resume_dir(stage: str, out: str | Path | None) -> Path:
    """The run folder ``--resume`` continues: ``out``, else the newest run of ``stage``. It
    must hold a run of that stage."""
    run_dir = Path(out) if out is not None else latest_run_dir(stage)
    found = stage_of(read_config(run_dir))
    if found != stage:
        what = STAGES.get(found).command if found in STAGES else "an unknown command"
        raise ValueError(f"{str(run_dir)!r} holds a {what} run, not a "
                         f"{STAGES.get(stage).command} run; pass the --out of a "
                         f"{STAGES.get(stage).command} run to --resume")
    return run_dir


def run_study(stage: Stage, *, out: str | Path | None = None, resume: bool = False,
              storage: str | StorageConfig | None = None, backend: BackendConfig | None = None,
              evaluate: Callable[..., Any] = evaluate_proxy) -> StudyRun:
    """Run (or resume) ``stage`` and write its run folder. ``storage`` is a URL or a
    :class:`nas.engine.study.StorageConfig` (study name, ``join``, heartbeat)."""
    backend = backend or BackendConfig()
    PRUNERS.get(stage.pruner)  # a bad name fails here, before anything is written
    device = backend.trial_device(stage.proxy.device)  # so does a device not here
    run_dir = resume_dir(stage.name, out) if resume else new_run_dir(out)
    if not resume and (run_dir / CONFIG).exists():
        raise ValueError(f"{str(run_dir)!r} already holds a run; pass --resume to continue it "
                         f"or choose another --out")
    with open_backend(backend) as executor:
        if evaluate is evaluate_proxy and stage.trains():  # fail fast, on every node
            executor.check_dataset(stage.proxy)
        with run_lock(run_dir, command=STAGES.get(stage.name).command), ExitStack() as stack:
            where = resolve_storage(storage, run_dir=run_dir, resume=resume,
                                    default=stage.study_name)
            stage.setup(run_dir, resume=resume)
            session = stack.enter_context(open_session(
                run_dir=run_dir, storage=where, stage=stage.name, directions=stage.directions,
                sampler=lambda driver: stage.make_sampler(driver_seed(stage.seed, driver)),
                pruner=PRUNERS.get(stage.pruner).local(ladder_of(stage)), resume=resume))
            study = session.study
            if session.driver:
                log.info("driver %d of this study: it samples with seed %s (drawn from --seed "
                         "%s and the driver's number), not replaying the first driver's "
                         "proposals", session.driver, driver_seed(stage.seed, session.driver),
                         stage.seed)
            write_config(run_dir, stage.name, {**stage.config_dict(), "storage": where.url,
                                               "study_name": where.study_name,
                                               "backend": backend.to_dict(),
                                               "device": {"requested": stage.proxy.device,
                                                          "resolved": device}})
            if session.created:
                study.set_user_attr("config", stage.config_dict())
            with session.mutex():  # two drivers of one study never enqueue the same points
                stage.prepare_study(study, resume=not session.created)
            n_trials, total, timeout = stage.budget(study)
            # the finalists were enqueued: search over (a stage whose trials are all enqueued,
            # stage 2, samples none, so what it enqueued after them still runs)
            if begun(study) and n_trials != 0 and not stage.enqueued_only:
                log.warning("the finalists have begun, so the search is closed: no more "
                            "%ss are sampled (start a new run for a longer search)",
                            stage.label)
                n_trials = 0
            session.total = total
            stage.log_plan(study, run_dir, n_trials)
            # optional stage hooks: work before the trials (a supernet's training), and the
            # finalists' own evaluator (trained from scratch when the search's is not)
            before = getattr(stage, "before_search", None)
            interrupted = bool(before is not None and before(study, run_dir))
            if not interrupted:
                interrupted = _drive(stage, study, run_dir, executor=executor,
                                     evaluate=evaluate, n_trials=n_trials, total=total,
                                     timeout=timeout, session=session)
            if not interrupted and plan_of(stage).enabled:
                interrupted = _finalists(stage, study, run_dir, executor=executor,
                                         evaluate=getattr(stage, "finalist_evaluate", None)
                                         or evaluate, session=session)
            if interrupted:
                log.warning("interrupted: finished %ss are kept; continue with %s --resume "
                            "--out %s", stage.label, STAGES.get(stage.name).command, run_dir)
            report = executor.report()
            stage.write_outputs(study, run_dir, final=True, interrupted=interrupted,
                                backend=report)
            if study.get_trials(deepcopy=False):
                _write_dashboard(run_dir)
    return StudyRun(run_dir=run_dir, study=study, interrupted=interrupted, backend=report)


def _finalists(stage: Stage, study: optuna.Study, run_dir: Path, *, executor: Executor,
               evaluate: Callable[..., Any], session: StudySession) -> bool:
    """The finalists' phase (:mod:`.finalists`): enqueue the finalist runs still missing and
    run every enqueued one, unpruned; True when interrupted."""
    plan = plan_of(stage)
    with session.mutex():  # two drivers of one study never enqueue the same runs
        added = enqueue_finalists(study, plan)
    trials = study.get_trials(deepcopy=False)
    fewer = shortfall(trials, plan, label=stage.label)
    if fewer is not None:  # fewer distinct finished networks than --finalists asks for
        log.warning("%s", fewer)
    todo = waiting_finalists(study)
    if todo == 0:
        return False
    log.info("finalists: %d run(s) to train (%d enqueued now): the top %d distinct %ss x %d "
             "seed(s), at the top rung", todo, added, len(finalist_sources(trials)),
             stage.label, plan.seeds)
    session.total = None  # the phase runs what is enqueued (TrialRunner.enqueued_only)
    return _drive(stage, study, run_dir, executor=executor, evaluate=evaluate, n_trials=todo,
                  total=todo, timeout=None, session=session, finalists=True,
                  description=f"stage {stage.name} finalists")


def _drive(stage: Stage, study: optuna.Study, run_dir: Path, *, executor: Executor,
           evaluate: Callable[..., Any], n_trials: int | None, total: int | None,
           timeout: float | None, session: StudySession | None = None,
           finalists: bool = False, description: str | None = None) -> bool:
    runner = TrialRunner(stage, evaluate, session=session, enqueued_only=finalists,
                         on_start=lambda trial: stage.write_outputs(study, run_dir, final=False))
    done0 = finished_count(study) if finalists else 0
    with progress(total, description or f"stage {stage.name}") as bar:
        def after_trial(trial: optuna.trial.FrozenTrial) -> None:
            stage.write_outputs(study, run_dir, final=False)
            text = stage.progress_text(study)
            bar.advance(finished_count(study) - done0, text)
            log.info("%s%s", stage.describe(trial), f" ({text})" if text else "")

        bar.advance(finished_count(study) - done0, stage.progress_text(study))
        if n_trials == 0:
            return False
        return executor.optimize(study, runner, n_trials=n_trials, timeout=timeout,
                                 after_trial=after_trial, run_dir=run_dir,
                                 prune=not finalists)


def _write_dashboard(run_dir: Path) -> None:
    from results.dashboard import write_dashboard

    try:
        write_dashboard(run_dir)
    except Exception as e:  # a dashboard must never lose a finished search
        log.warning("dashboard not written: %s", e)


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
