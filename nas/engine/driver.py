"""The study driver both stages run on: :func:`run_study`.

It opens (or, on ``--resume``, reopens) the run folder and holds its lock, writes
``config.json``, opens the Optuna study, and runs the stage's phases (:mod:`.phases`) in order:
the search (what the stage enqueues, then what its sampler proposes, until the stage's budget
or the timeout is spent), the finalists (:mod:`.finalists`: enqueued in the same study and run
unpruned, without the timeout), and any phase of the stage's own (stage 2's single-dimension
comparison). Each phase's trials run on a backend (an :class:`.executor.Executor`, opened by
name from the table the backends register into, :mod:`nas.backends`): ask, propose, train,
tell; Ctrl-C stops the run after the phase it interrupts. The pruner is built from the
stage's fidelity ladder (:mod:`.fidelity`). After every trial the stage writes its outputs (so
an interrupted run loses nothing finished) and the progress bar and log advance; at the end
the stage writes its final outputs, which give the stage's result (:attr:`StudyRun.result`),
and the dashboard is drawn from the run folder.
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
from .finalists import FINALIST_ATTRS
from .recorder import finished_count
from .registries import PRUNERS
from .session import StudySession
from .study import StorageConfig, driver_seed, open_session, resolve_storage
from .trial import Batch, Stage, TrialRunner

log = logging.getLogger(__name__)

__all__ = ["StudyRun", "run_study", "resume_dir", "progress"]


@dataclass
class StudyRun:
    """What :func:`run_study` returns: the run folder, the study, whether a phase was
    interrupted, the backend's report, and ``result``, the stage's result (what its final
    :meth:`Stage.write_outputs` returned)."""

    run_dir: Path
    study: optuna.Study
    interrupted: bool
    backend: dict[str, Any]
    result: Any = None


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
                pruner=PRUNERS.get(stage.pruner).local(ladder_of(stage)), resume=resume,
                carry=(*stage.enqueue_attrs, *FINALIST_ATTRS)))
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
            interrupted = False
            for phase in stage.phases:  # in order; each plans only what is left (resume)
                batch = phase.plan(stage, study, session, run_dir)
                if batch is not None:  # work before its trials first (a supernet's training)
                    interrupted = bool(batch.before is not None and batch.before())
                    if not interrupted:
                        interrupted = _drive(stage, study, run_dir, batch, executor=executor,
                                             evaluate=batch.evaluate or evaluate,
                                             session=session)
                if interrupted:
                    break
            if interrupted:
                log.warning("interrupted: finished %ss are kept; continue with %s --resume "
                            "--out %s", stage.label, STAGES.get(stage.name).command, run_dir)
            report = executor.report()
            result = stage.write_outputs(study, run_dir, final=True, interrupted=interrupted,
                                         backend=report)
            if study.get_trials(deepcopy=False):
                _write_dashboard(run_dir)
    return StudyRun(run_dir=run_dir, study=study, interrupted=interrupted, backend=report,
                    result=result)


def _drive(stage: Stage, study: optuna.Study, run_dir: Path, batch: Batch, *,
           executor: Executor, evaluate: Callable[..., Any], session: StudySession) -> bool:
    """Run one phase's :class:`Batch` on the executor; True when interrupted."""
    # a sampled phase shares the stage's budget with the study's other drivers; an enqueued
    # one runs what waits (TrialRunner.enqueued_only)
    session.total = None if batch.enqueued_only else batch.total
    runner = TrialRunner(stage, evaluate, session=session, enqueued_only=batch.enqueued_only,
                         on_start=lambda trial: stage.write_outputs(study, run_dir, final=False),
                         stop=batch.stop)
    done0 = finished_count(study) if batch.enqueued_only else 0
    with progress(batch.total, batch.description or f"stage {stage.name}") as bar:
        def after_trial(trial: optuna.trial.FrozenTrial) -> None:
            stage.write_outputs(study, run_dir, final=False)
            text = stage.progress_text(study)
            bar.advance(finished_count(study) - done0, text)
            log.info("%s%s", stage.describe(trial), f" ({text})" if text else "")

        bar.advance(finished_count(study) - done0, stage.progress_text(study))
        if batch.n_trials == 0:
            return False
        return executor.optimize(study, runner, n_trials=batch.n_trials, timeout=batch.timeout,
                                 after_trial=after_trial, run_dir=run_dir, prune=batch.prune)


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
