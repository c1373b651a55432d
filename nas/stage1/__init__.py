"""Stage 1 (EfficientNet Sec. 4): the base network's search, laid out as stage 2's
:mod:`gridsearch`: its config (:mod:`.config`), its trial (:mod:`.stage`, ``Stage1``), its run
folder (:mod:`.outputs`: trials.csv, best.json, summary.json) and a latency search's set-up
(:mod:`.latency`). Its front door, ``run_search``, is :mod:`nas.search`."""
from __future__ import annotations

from space.lazy import exports, lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("config", ("SearchConfig",)),
    **exports("latency", ("LATENCY_FILE", "prepare_latency")),
    **exports("outputs", ("SearchResult", "best_trial")),
    **exports("stage", ("STUDY_NAME", "Stage1")),
})
