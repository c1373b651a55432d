"""The search engine both stages share.

- :func:`run_study` (:mod:`.driver`): the one study driver: run folder, lock, config, study,
  ask/tell on a backend, timeout, Ctrl-C, outputs after every trial, resume.
- :class:`TrialRunner` (:mod:`.trial`): one trial's life (propose, reuse, seed, train, score),
  the same for both stages and both backends; a stage implements :class:`Stage`.
- :class:`Executor`, :class:`BackendConfig`, :data:`BACKENDS` (:mod:`.executor`): what the
  driver runs trials on; the backends (:mod:`nas.backends`) import the engine and register into
  the table, the engine names none of them.
- :mod:`.phases`: what one run_study call runs, in order: a stage declares its phases
  (:data:`SEARCH`, :data:`FINALISTS`, and a phase of its own, a :class:`Phase`), each plans
  from the study what is left to run (a :class:`Batch`), so a resumed run goes the same way.
- :mod:`.recorder`: the trial attributes every trial records, and what counts as finished.
- :data:`SAMPLERS`, :data:`PRUNERS` (:mod:`.registries`): the tables; a pruner row holds the
  local pruner and its Ray Tune scheduler.
- :class:`Ladder` (:mod:`.fidelity`): the fidelity ladder, successive halving over explicit
  rungs (epochs), one rule for the local pruner and the Ray scheduler.
- :class:`FinalistPlan` (:mod:`.finalists`): after the search, the top k distinct candidates
  retrained with s seeds as trials of the same study; :func:`finalist_table` gives the
  per-seed table, :func:`choose` the winner by mean reward (or accuracy), the one chooser of
  both stages, and :func:`chosen` the stage's chosen trial (else its search's best);
  :func:`noise_verdict` whether the winner's lead over the runner-up is within the seeds'
  noise.
- :func:`open_session` (:mod:`.study`): create, join or reopen the study; several drivers of
  one database study (budget gate, heartbeats, reuse-key claims in :mod:`.claims`), each
  holding it through a :class:`StudySession` (:mod:`.session`; interrupted trials requeued
  there).
"""
from __future__ import annotations

from space.lazy import exports, lazy_exports

# name -> the module that defines it, imported on first use (so --help needs no torch)
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("driver", ("StudyRun", "progress", "resume_dir", "run_study")),
    **exports("executor", ("BACKENDS", "BackendConfig", "Executor", "open_backend")),
    **exports("fidelity", ("Ladder", "ladder_of", "parse_rungs")),
    **exports("finalists", ("FinalistPlan", "FinalistRow", "NoiseVerdict", "choose", "chosen",
                            "finalist_table", "is_finalist", "noise_verdict", "plan_of",
                            "search_count")),
    **exports("phases", ("FINALISTS", "SEARCH", "FinalistsPhase", "SearchPhase")),
    **exports("recorder", ("FINISHED", "INTERRUPTED", "finished_count", "interrupted_numbers",
                           "node_name")),
    **exports("registries", ("PRUNERS", "SAMPLERS", "PrunerInfo", "SamplerInfo")),
    **exports("session", ("StudySession", "requeue_interrupted")),
    **exports("study", ("StorageConfig", "open_session")),
    **exports("trial", ("Batch", "Candidate", "Outcome", "Phase", "Stage", "TrialRunner",
                        "tell")),
})
