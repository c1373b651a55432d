"""Several trials at once on one device (``--trials-per-device N``, the local backend).

One small proxy network cannot fill a GPU (a step is bound by the host's launch work, see
benchmarks/BENCHMARKS_train.md), and two single-thread trials on two CPU cores beat one
two-thread trial. So N worker processes (spawned, each with its own CUDA context or its own
share of the CPU threads) train N trials side by side, while this process stays the one that
talks to the study: one driver thread per worker asks for a trial, proposes it, hands the
network to its worker, and records each epoch the worker reports (the pruner answers "go on" or
"stop" before the worker trains the next epoch). The study is only touched under one lock,
never by a worker, so a run folder reads the same as with one trial at a time; only the order
in which the sampler sees results differs (as with ``--backend ray``).

Ctrl-C stops the workers; the trials they were training are recorded as interrupted, so
``--resume`` runs them again.
"""
from __future__ import annotations

import builtins
import copy
import logging
import multiprocessing as mp
import os
import signal
import threading
import time
from dataclasses import asdict
from typing import Any, Callable

import optuna

from nas.engine.recorder import INTERRUPTED, failure
from nas.engine.trial import Outcome, TrialRunner, tell

log = logging.getLogger(__name__)

__all__ = ["optimize_parallel"]


class _Stopped(BaseException):
    """This driver is shutting down (Ctrl-C): the trial is left to be recorded as interrupted
    (a BaseException, so the runner does not record it as the trial's failure)."""


def _remote_error(reason: str) -> Exception:
    """The worker's exception as it would read locally (``Type: message``)."""
    kind, _, message = reason.partition(": ")
    cls = getattr(builtins, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        cls = type(kind or "RuntimeError", (RuntimeError,), {})
    return cls(message)


def _worker(conn: Any, evaluate: Callable[..., Any], threads: int | None) -> None:
    """A worker process: train what the driver sends, one trial at a time, until told to quit."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver handles Ctrl-C and stops us
    from nas.evaluate import ProxyConfig, with_threads
    from nas.train import EpochResult
    from space import ArchSpec

    class Prune(Exception):
        pass

    while True:
        msg = conn.recv()
        if msg[0] == "quit":
            return
        _, spec, proxy, seed = msg
        proxy = ProxyConfig.from_dict(proxy)
        if threads is not None:
            proxy = with_threads(proxy, threads)

        def on_epoch(res: EpochResult) -> None:
            conn.send(("epoch", asdict(res)))
            if conn.recv() != "go":
                raise Prune

        try:
            r = evaluate(ArchSpec.from_dict(spec), proxy, seed=seed, on_epoch=on_epoch)
        except Prune:
            conn.send(("pruned",))
        except Exception as e:  # the driver records it as the trial's failure
            conn.send(("error", failure(e)))
        else:
            conn.send(("done", {"accuracy": r.accuracy, "seconds": r.seconds, "seed": r.seed,
                                "images_per_sec": r.images_per_sec,
                                "epochs": [asdict(e) for e in r.epochs]}))


class _Slot:
    """One worker process and the driver thread that feeds it."""

    def __init__(self, ctx: Any, evaluate: Callable[..., Any], threads: int | None,
                 lock: threading.Lock, stopping: threading.Event) -> None:
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child, evaluate, threads), daemon=True)
        self.proc.start()
        child.close()
        self.lock, self.stopping = lock, stopping
        self.live: optuna.Trial | None = None
        self.error: BaseException | None = None

    def _recv(self) -> Any:
        """The worker's next message, waited for without the lock."""
        self.lock.release()
        try:
            return self.conn.recv()
        except (EOFError, OSError):
            if self.stopping.is_set():
                raise _Stopped from None
            raise RuntimeError(f"worker process {self.proc.pid} died (exit code "
                               f"{self.proc.exitcode})") from None
        finally:
            self.lock.acquire()

    def evaluate(self, spec: Any, proxy: Any, *, seed: int,
                 on_epoch: Callable[[Any], None] | None = None) -> Any:
        """Train in the worker; ``on_epoch`` runs here, under the lock (it may stop the trial
        by raising, as in a local run)."""
        from nas.evaluate import EvalResult
        from nas.train import EpochResult

        self.conn.send(("run", spec.to_dict(), proxy.to_dict(), seed))
        stop: BaseException | None = None
        while True:
            msg = self._recv()
            if msg[0] == "epoch":
                try:
                    if stop is None and on_epoch is not None:
                        on_epoch(EpochResult(**msg[1]))
                except BaseException as e:  # the pruner said stop: tell the worker
                    stop = e
                self.conn.send("go" if stop is None else "stop")
            elif msg[0] == "pruned":
                raise stop if stop is not None else RuntimeError("worker stopped unasked")
            elif msg[0] == "error":
                raise _remote_error(msg[1])
            else:
                d = msg[1]
                return EvalResult(accuracy=d["accuracy"], seconds=d["seconds"], seed=d["seed"],
                                  images_per_sec=d["images_per_sec"],
                                  epochs=[EpochResult(**e) for e in d["epochs"]])

    def close(self) -> None:
        try:
            self.conn.send(("quit",))
        except (OSError, ValueError):
            pass
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()


def optimize_parallel(study: optuna.Study, runner: TrialRunner, *, trials: int,
                      n_trials: int | None, timeout: float | None,
                      after_trial: Callable[[Any], None]) -> bool:
    """Run up to ``n_trials`` trials, ``trials`` at a time, each in a worker process; start
    none after ``timeout`` seconds. True when interrupted (Ctrl-C)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    threads = None
    if runner.stage.proxy.train.threads is None:  # share the cores out, not oversubscribe them
        threads = max(1, (os.cpu_count() or 1) // trials)
    lock, stopping = threading.Lock(), threading.Event()
    ctx = mp.get_context("spawn")  # never fork a process holding torch threads or CUDA
    slots = [_Slot(ctx, runner.evaluate, threads, lock, stopping) for _ in range(trials)]
    asked = [0]

    def drive(slot: _Slot) -> None:
        mine = copy.copy(runner)
        mine.evaluate = slot.evaluate
        with lock:
            try:
                while not stopping.is_set() and (n_trials is None or asked[0] < n_trials) and \
                        (deadline is None or time.monotonic() < deadline):
                    slot.live = mine.ask(study)
                    if slot.live is None:  # a shared study's budget is spent
                        return
                    asked[0] += 1
                    try:
                        outcome = mine.run(slot.live)
                    except _Stopped:
                        return
                    if stopping.is_set():  # an outcome of the shutdown, not of the trial
                        return
                    frozen = tell(study, slot.live, outcome)
                    slot.live = None
                    after_trial(frozen)
            except BaseException as e:  # re-raised by the main thread
                slot.error = e
                stopping.set()

    workers = [threading.Thread(target=drive, args=(s,), daemon=True) for s in slots]
    interrupted = False
    try:
        for t in workers:
            t.start()
        for t in workers:
            while t.is_alive():
                t.join(timeout=0.2)  # short waits keep Ctrl-C deliverable
    except KeyboardInterrupt:
        interrupted = True
        stopping.set()
        for s in slots:
            s.proc.kill()
        for t in workers:
            t.join()
        for s in slots:
            if s.live is not None:
                tell(study, s.live, Outcome.failed(INTERRUPTED))
    finally:
        for s in slots:
            s.close()
    errors = [s.error for s in slots if s.error is not None]
    if errors and not interrupted:
        raise errors[0]
    return interrupted
