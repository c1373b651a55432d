"""The ``local`` backend: trials in this process, one at a time, by Optuna's ask and tell (or
``--trials-per-device N`` at a time, each in a worker process: :mod:`.pool`)."""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import optuna
from optuna.trial import FrozenTrial

from nas.engine.executor import BackendConfig
from nas.engine.recorder import INTERRUPTED
from nas.engine.trial import Outcome, TrialRunner, tell
from nas.proxy import ProxyConfig

__all__ = ["LocalExecutor", "session"]


@contextmanager
def session(config: BackendConfig) -> Iterator[LocalExecutor]:
    yield LocalExecutor(config)


class LocalExecutor:
    def __init__(self, config: BackendConfig) -> None:
        self.config = config

    def check_dataset(self, proxy: ProxyConfig) -> None:
        from nas.evaluate import check_proxy_task

        check_proxy_task(proxy)

    def optimize(self, study: optuna.Study, runner: TrialRunner, *, n_trials: int | None,
                 timeout: float | None, after_trial: Callable[[FrozenTrial], None],
                 run_dir: Path | None = None, prune: bool = True) -> bool:
        """Run up to ``n_trials`` trials, starting none after ``timeout`` seconds; True when
        interrupted (Ctrl-C). An interrupted trial is recorded as such, so ``--resume`` runs
        it again. (``prune``: the runner itself never prunes a finalist, so it is not
        needed here.)"""
        if self.config.trials_per_device > 1:
            from .pool import optimize_parallel

            return optimize_parallel(study, runner, trials=self.config.trials_per_device,
                                     n_trials=n_trials, timeout=timeout, after_trial=after_trial)
        deadline = None if timeout is None else time.monotonic() + timeout
        asked = 0
        live = None
        try:
            while (n_trials is None or asked < n_trials) and \
                    (deadline is None or time.monotonic() < deadline):
                live = runner.ask(study)
                if live is None:  # a shared study's budget is spent
                    break
                asked += 1
                outcome = runner.run(live)
                frozen = tell(study, live, outcome)
                live = None
                after_trial(frozen)
        except KeyboardInterrupt:
            if live is not None:
                tell(study, live, Outcome.failed(INTERRUPTED))
            return True
        return False

    def report(self) -> dict[str, Any]:
        return {"name": "local", "trials_per_device": self.config.trials_per_device}
