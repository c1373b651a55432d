"""The ``ray`` backend: the searches' trials as Ray Tune trials, on this machine or a cluster.

Design: an ask/tell driver. The Optuna study in the run folder stays the one source of truth;
Ray Tune only runs the training. :class:`StudySearcher` is a Tune ``Searcher`` whose
``suggest`` asks the study for a trial and proposes and records its candidate exactly as a local
trial does (:meth:`nas.engine.TrialRunner.begin`, the same step for both stages); the Tune trial
then trains it on a worker (:func:`train_trial`, which calls the same evaluator,
``nas.evaluate.evaluate_proxy``, at the candidate's own proxy task) and reports the reward
ACC x (MACs/T)^w after every epoch. Those reports go into the Optuna trial through the runner's
own steps (learning curve, intermediate values; ``node``), and the finished Tune trial is told to
the study as COMPLETE, PRUNED or FAIL, so the run folder is written by the same code as a local
run's. Stage 2's enqueued grid points go the same way, without early stopping.

One Optuna trial is one Tune trial. Multi-fidelity: the pruner's row in
:data:`nas.engine.PRUNERS` names its Tune scheduler, built from the stage's ladder (``asha``:
the engine's own rung rule, :func:`nas.engine.fidelity.rung_scheduler`, against the study's rung
values; ``hyperband``: Tune's ASHA; ``median`` the median stopping rule, ``none`` FIFO); a trial
the scheduler stops is told PRUNED. The finalists' phase runs FIFO. A trial whose worker dies (process killed, node lost) is started again by Tune, up to ``--max-retries`` times, with the same parameters and seed; the Optuna trial
records ``retries`` and ``retry_errors``, and a trial that runs out of retries is FAIL with the
reason. An exception inside training (a NaN loss, out of memory) is not retried: it is recorded as
FAIL, as in a local run. A repeated architecture reuses the earlier result without a Tune trial.

Datasets: each node that runs trials reads the dataset itself, from the same path
(``--data-dir``) as the driver; nothing is shipped through Ray. Before the first trial a tiny task
on every such node loads the dataset, and the search stops with one error naming each node that
cannot (and why). ``synthetic`` needs no files.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
import ray
from ray import tune

from nas.engine.executor import BackendConfig
from nas.engine.fidelity import ladder_of
from nas.engine.recorder import failure, node_name
from nas.engine.registries import PRUNERS
from nas.engine.trial import TrialRunner
from nas.proxy import ProxyConfig
from space import ArchSpec

from .ray_searcher import RetryCallback, StudySearcher

log = logging.getLogger(__name__)

# Quieter Tune: we log one line per trial ourselves (a user's own setting wins).
_TUNE_ENV = {"RAY_AIR_NEW_OUTPUT": "0", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}

def node_label(node_id: str) -> str:
    """What the ``node`` column holds for a Ray trial: host name and the Ray node id's start."""
    return f"{node_name()}/{node_id[:8]}"


# ------------------------------------------------------------------------------- session
@contextmanager
def session(config: BackendConfig) -> Iterator[RayExecutor]:
    """Connect to the cluster at ``config.address`` (or ``RAY_ADDRESS``), else start Ray here;
    on exit, disconnect (and stop what was started here). Reuses an existing connection."""
    for k, v in _TUNE_ENV.items():
        os.environ.setdefault(k, v)
    owned = False
    if not ray.is_initialized():
        address = config.address or os.environ.get("RAY_ADDRESS") or None
        kwargs: dict[str, Any] = {"address": address, "logging_level": logging.WARNING}
        if address is None:
            kwargs["include_dashboard"] = False
        try:
            if address is not None:
                _check_reachable(address)  # Ray itself waits minutes on a dead address
            ray.init(**kwargs)
        except (ConnectionError, TimeoutError, RuntimeError) as e:
            if address is None:
                raise
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConnectionError(f"--address {address}: cannot connect to a Ray cluster there "
                                  f"({first}); start one with `ray start --head`, check the "
                                  f"address and RAY_AUTH_TOKEN, or drop --address (and unset "
                                  f"RAY_ADDRESS) to run Ray on this machine") from None
        owned = True
    try:
        yield RayExecutor(config)
    finally:
        if owned:
            ray.shutdown()


def _check_reachable(address: str, timeout: float = 10.0) -> None:
    """Raise ConnectionError unless something listens at ``[ray://]host:port`` (other forms,
    such as ``auto``, are left to Ray)."""
    import socket

    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"nothing answers at {host}:{port}: {e}") from None


def _nodes_for_trials(config: BackendConfig) -> list[dict[str, Any]]:
    """Alive nodes that can hold one trial (enough CPUs, and GPUs if asked for)."""
    out = []
    for n in ray.nodes():
        res = n.get("Resources", {})
        if n.get("Alive") and res.get("CPU", 0) >= config.cpus_per_trial and \
                res.get("GPU", 0) >= config.gpus_per_trial:
            out.append(n)
    return out


def _probe_dataset(proxy: ProxyConfig) -> str | None:
    """Runs on a node: None when the proxy task's dataset loads there and is big enough, else
    why not."""
    try:
        from nas.evaluate import check_proxy_task

        check_proxy_task(proxy)
    except Exception as e:
        return f"{type(e).__name__}: {e}".splitlines()[0]
    return None


class RayExecutor:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config
        self.searcher: StudySearcher | None = None

    def check_dataset(self, proxy: ProxyConfig, *, timeout: float = 300.0) -> None:
        """Load the dataset on every node that can run a trial; one error naming each node
        that cannot."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        nodes = _nodes_for_trials(self.config)
        if not nodes:
            total = ray.cluster_resources()
            raise ValueError(f"no Ray node can hold one trial: each needs "
                             f"{self.config.cpus_per_trial} CPU(s) and "
                             f"{self.config.gpus_per_trial} GPU(s), but the cluster has "
                             f"{total.get('CPU', 0)} CPU(s) and {total.get('GPU', 0)} GPU(s) "
                             f"in all; lower --cpus-per-trial/--gpus-per-trial or add nodes")
        probe = ray.remote(num_cpus=0)(_probe_dataset)
        refs = {}
        for n in nodes:
            where = f"{node_label(n['NodeID'])} ({n.get('NodeManagerAddress', '?')})"
            strategy = NodeAffinitySchedulingStrategy(node_id=n["NodeID"], soft=False)
            refs[where] = probe.options(scheduling_strategy=strategy).remote(proxy)
        problems = []
        for where, ref in refs.items():
            try:
                err = ray.get(ref, timeout=timeout)
            except ray.exceptions.GetTimeoutError:
                err = f"no answer within {timeout:.0f} s"
            except ray.exceptions.RayError as e:
                err = (f"cannot run efficientnas there ({str(e).strip().splitlines()[0]}); "
                       f"install it on every node, or submit with ray job submit "
                       f"--working-dir .")
            if err is not None:
                problems.append(f"node {where}: {err}")
        if problems:
            path = proxy.data_dir or "its default folder"
            raise FileNotFoundError(
                f"dataset {proxy.dataset!r} (data dir {path}) cannot be read on "
                f"{len(problems)} of {len(nodes)} Ray node(s): {'; '.join(problems)}; every node "
                f"that runs trials reads the dataset from the same path: copy it there or put "
                f"it on a shared filesystem (or use --dataset synthetic)")
        log.info("dataset %r readable on all %d Ray node(s)", proxy.dataset, len(nodes))

    def optimize(self, study: optuna.Study, runner: TrialRunner, *, n_trials: int | None,
                 timeout: float | None,
                 after_trial: Callable[[optuna.trial.FrozenTrial], None],
                 run_dir: Path | None = None, prune: bool = True) -> bool:
        """Run the study's trials (stage 1's or stage 2's) as Tune trials; True when
        interrupted before the budget ran out. ``prune=False`` (the finalists' phase) runs
        every trial to the top rung (FIFO)."""
        c = self.config
        stage = runner.stage
        searcher = StudySearcher(study, runner, n_trials=n_trials, timeout=timeout,
                                 after_trial=after_trial, max_retries=c.max_retries)
        self.searcher = searcher
        scheduler = PRUNERS.get(stage.pruner if prune else "none").ray(ladder_of(stage), study)
        trainable = tune.with_resources(
            tune.with_parameters(train_trial, evaluate=runner.evaluate,
                                 objective=stage.objective),
            {"cpu": c.cpus_per_trial, "gpu": c.gpus_per_trial})
        storage = Path(run_dir or Path.cwd()).resolve() / "ray"
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                        num_samples=-1, max_concurrent_trials=c.workers,
                                        metric="reward", mode="max", reuse_actors=True,
                                        trial_name_creator=_trial_name,
                                        trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=time.strftime(f"{study.study_name}-%Y%m%d-%H%M%S"),
                storage_path=str(storage),
                verbose=0, callbacks=[RetryCallback(searcher)],
                failure_config=tune.FailureConfig(max_failures=c.max_retries)))
        log.info("ray: %s, %s trial(s) at a time, %g CPU(s) and %g GPU(s) per trial, up to %d "
                 "retries per trial", _describe_cluster(),
                 c.workers if c.workers else "as many", c.cpus_per_trial, c.gpus_per_trial,
                 c.max_retries)
        interrupted = False
        try:
            tuner.fit()
        except KeyboardInterrupt:
            interrupted = True
        left = searcher.close()
        return interrupted or left or not searcher.finished

    def report(self) -> dict[str, Any]:
        s = self.searcher
        out: dict[str, Any] = self.config.to_dict()
        try:
            out["nodes"] = len([n for n in ray.nodes() if n.get("Alive")])
        except Exception:
            pass
        if s is not None:
            out["retries"] = sum(s.retries.values())
            out["retried_trials"] = {str(k): v for k, v in sorted(s.retries.items())}
            out["failed_after_retries"] = sorted(s.exhausted)
        return out


def _trial_name(trial: Any) -> str:
    """Tune's name for a trial: the Optuna trial number it trains (the folder under ray/)."""
    return f"trial-{trial.config['number']}-{trial.trial_id}"


def _describe_cluster() -> str:
    res = ray.cluster_resources()
    nodes = len([n for n in ray.nodes() if n.get("Alive")])
    return f"{nodes} node(s), {res.get('CPU', 0):g} CPU(s), {res.get('GPU', 0):g} GPU(s)"


# ------------------------------------------------------------------------------ trainable
def train_trial(config: dict[str, Any], *, evaluate: Callable[..., Any],
                objective: Any) -> None:
    """One Tune trial: train the candidate in ``config`` and report the reward per epoch.

    Torch threads follow the CPUs Ray gave the trial (unless ``--threads`` set them); with a GPU
    the model trains there. An exception in training is reported (``fail_reason``), not
    raised, so Tune does not retry it; only a dead worker is retried.
    """
    from nas.evaluate import ProxyConfig, with_threads
    from nas.train.device import trial_device

    ctx = ray.get_runtime_context()
    node = node_label(ctx.get_node_id())
    given = ctx.get_assigned_resources()
    # the trial's own proxy task (stage 2's points each train at their own resolution)
    proxy = with_threads(ProxyConfig.from_dict(config["proxy"]), given.get("CPU", 1.0))
    # the GPU Ray gave this trial (CUDA_VISIBLE_DEVICES names it), unless the run asked for the CPU
    proxy = replace(proxy, device=trial_device(proxy.device, gpus=given.get("GPU", 0)))
    spec = ArchSpec.from_dict(config["spec"])
    cost = float(config["cost"])  # what the objective scores: MACs, or predicted ms
    last = {"epoch": 0}

    def on_epoch(res: Any) -> None:
        last["epoch"] = res.epoch
        tune.report({"reward": objective.reward(res.val_accuracy, cost), "epoch": res.epoch,
                     "accuracy": res.val_accuracy, "images_per_sec": res.images_per_sec,
                     "node": node, "node_id": ctx.get_node_id()})

    try:
        evaluate(spec, proxy, seed=int(config["seed"]), on_epoch=on_epoch)
    except Exception as e:  # recorded by the driver as FAIL, as in a local run
        tune.report({"reward": float("nan"), "epoch": last["epoch"] + 1, "node": node,
                     "node_id": ctx.get_node_id(),
                     "fail_reason": failure(e)})
