"""space: frozen architecture specs, the builder, exact counting, compound scaling, the zoo.

``import space`` imports nothing heavy: each name below is imported from its module on first use
(PEP 562), so ``from space.objective import CONSTRAINTS`` (a ``--help``) needs no torch, while
``from space import build`` imports torch as it always did (and fvcore when you call
:func:`count_fvcore`).
"""
from __future__ import annotations

from .lazy import exports, lazy_exports

# name -> the module that defines it: the package's public API, in one place
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), {
    **exports("builder", ("ACTIVATIONS", "BLOCKS", "BlockArgs", "Network", "block_args",
                          "build")),
    **exports("counting", ("Counts", "build_bytes", "count", "count_analytic", "count_fvcore",
                           "count_params", "stage_table")),
    **exports("registry", ("Registry",)),
    **exports("scaling", ("compound", "flops_factor", "round_filters", "round_repeats",
                          "scale")),
    **exports("spec", ("SCHEMA_VERSION", "ArchSpec", "SpecError", "StageSpec", "StemSpec",
                       "load_spec", "save_spec", "spec_from_dict")),
    **exports("zoo", ("ZOO", "get_model", "list_models")),
    **exports("export", ("FORMATS", "TimmArchDef", "export_text", "export_timm",
                         "tf_block_strings", "timm_block_string")),
    **exports("resolve", ("resolve_spec",)),
})
