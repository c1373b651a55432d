"""The search engine both stages share.

- :func:`run_study` (:mod:`.driver`): the one study driver: run folder, lock, config, study,
  ask/tell on a backend, timeout, Ctrl-C, outputs after every trial, resume.
- :class:`TrialRunner` (:mod:`.trial`): one trial's life (propose, reuse, seed, train, score),
  the same for both stages and both backends; a stage implements :class:`Stage`.
- :mod:`.recorder`: the trial attributes every trial records, and what counts as finished.
- :data:`SAMPLERS`, :data:`PRUNERS` (:mod:`.registries`): the tables; a pruner row holds the
  local pruner and its Ray Tune scheduler.
- :class:`Ladder` (:mod:`.fidelity`): the fidelity ladder, successive halving over explicit
  rungs (epochs), one rule for the local pruner and the Ray scheduler.
- :class:`FinalistPlan` (:mod:`.finalists`): after the search, the top k distinct candidates
  retrained with s seeds as trials of the same study; :func:`finalist_table` and
  :func:`choose` give the per-seed table and the winner by mean reward; :func:`noise_verdict`
  whether the winner's lead over the runner-up is within the seeds' noise.
- :func:`open_session` (:mod:`.study`): create, join or reopen the study; several drivers of
  one database study (budget gate, heartbeats, reuse-key claims in :mod:`.claims`).
"""
from __future__ import annotations

from .driver import StudyRun, progress, resume_dir, run_study
from .fidelity import Ladder, ladder_of, parse_rungs
from .finalists import (FinalistPlan, FinalistRow, NoiseVerdict, choose, finalist_table,
                        is_finalist, noise_verdict, plan_of, search_count)
from .recorder import FINISHED, INTERRUPTED, finished_count, interrupted_numbers, node_name
from .registries import PRUNERS, SAMPLERS, PrunerInfo, SamplerInfo
from .study import StorageConfig, open_session, requeue_interrupted
from .trial import Candidate, Outcome, Stage, TrialRunner, tell

__all__ = ["StudyRun", "progress", "resume_dir", "run_study", "FINISHED", "INTERRUPTED",
           "finished_count", "interrupted_numbers", "node_name", "PRUNERS", "SAMPLERS",
           "PrunerInfo", "SamplerInfo", "StorageConfig", "open_session", "requeue_interrupted",
           "Candidate", "Outcome", "Stage", "TrialRunner", "tell", "Ladder", "ladder_of",
           "parse_rungs", "FinalistPlan", "FinalistRow", "choose", "finalist_table",
           "is_finalist", "plan_of", "search_count", "NoiseVerdict", "noise_verdict"]
