"""Stage 1: search a MnasNet-style space for a base network under a MACs target.

EfficientNet Sec. 4: "we develop our baseline network by leveraging a multi-objective neural
architecture search that optimizes both accuracy and FLOPS ... ACC(m) x [FLOPS(m)/T]^w".
Each trial samples an architecture (define-by-run), counts its MACs at the deployment
configuration (default 224 px, 3 channels, 1000 classes) with the analytic counter (equal to
fvcore; the winner is re-counted with fvcore), trains it on the proxy task, and reports the
reward per epoch so a pruner can stop hopeless trials. The best architecture is emitted as a
frozen spec: the run's B0.

Stage 1 lives in :mod:`nas.stage1`, laid out as stage 2's :mod:`gridsearch`: its config
(:mod:`nas.stage1.config`), its trial (:mod:`nas.stage1.stage`), its run folder
(:mod:`nas.stage1.outputs`) and a latency search's set-up (:mod:`nas.stage1.latency`). This
module is its front door, :func:`run_search` (the engine, :mod:`nas.engine`, runs the stage),
and names what callers import from it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from nas.backends import BackendConfig
from nas.engine import run_study
from nas.evaluate import evaluate_proxy
from nas.stage1.config import SearchConfig
from nas.stage1.latency import LATENCY_ATTR, LATENCY_FILE, prepare_latency  # noqa: F401
from nas.stage1.outputs import (BEST_FILE, TRIALS_TABLE, SearchResult,  # noqa: F401
                                best_trial, choice_verdict, cost_vs_target, finalists_summary)
from nas.stage1.stage import STUDY_NAME, Stage1
from space.deploy import Deployment  # noqa: F401 (re-exported)

__all__ = ["STUDY_NAME", "LATENCY_FILE", "SearchConfig", "SearchResult", "Stage1", "best_trial",
           "prepare_latency", "run_search"]


def run_search(config: SearchConfig, *, out: str | Path | None = None, resume: bool = False,
               storage: str | None = None, evaluate: Callable[..., Any] | None = None,
               backend: BackendConfig | None = None) -> SearchResult:
    """Run (or resume) stage 1 and write the run folder. ``backend`` says where the trials run
    (default: here, one at a time; see :mod:`nas.backends`); ``evaluate`` is injectable for
    tests (default: :func:`nas.evaluate.evaluate_proxy`)."""
    table = None
    if not resume and not (storage is not None and getattr(storage, "join", False)):
        config, table = prepare_latency(config)  # before the run folder: bad input writes nothing
    if config.evaluator == "supernet":  # issue 24: one trained supernet scores the search
        from nas.stage1.supernet_phase import SupernetStage

        stage = SupernetStage(Stage1(config, table=table), finalist_evaluate=evaluate)
        evaluate = stage.scorer
    else:
        stage = Stage1(config, table=table)
    if not resume:  # every --enqueue name resolves to a member, before the run folder exists
        for name in config.enqueue:
            stage.encode(name)
    return run_study(stage, out=out, resume=resume, storage=storage, backend=backend,
                     evaluate=evaluate or evaluate_proxy).result
