"""Stage 1 (EfficientNet Sec. 4): the base network's search. Its config
(:mod:`nas.stage1.config`) lives here; the stage itself is :mod:`nas.search` for now (issue 25
moves it here, beside the config, mirroring :mod:`gridsearch`)."""
from __future__ import annotations

from space.lazy import exports, lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("config", ("SearchConfig",)),
})
