"""space: frozen architecture specs, the builder, exact counting, compound scaling, the zoo.

``import space`` needs only torch (and fvcore when you call :func:`count_fvcore`).
"""
from __future__ import annotations

from .builder import ACTIVATIONS, BLOCKS, BlockArgs, Network, block_args, build
from .counting import (Counts, build_bytes, count, count_analytic, count_fvcore, count_params,
                       stage_table)
from .registry import Registry
from .scaling import compound, flops_factor, round_filters, round_repeats, scale
from .spec import (SCHEMA_VERSION, ArchSpec, SpecError, StageSpec, StemSpec, load_spec,
                   save_spec, spec_from_dict)
from .zoo import ZOO, get_model, list_models

__all__ = [
    "ACTIVATIONS", "BLOCKS", "BlockArgs", "Network", "block_args", "build",
    "Counts", "build_bytes", "count", "count_analytic", "count_fvcore", "count_params",
    "stage_table",
    "Registry",
    "compound", "flops_factor", "round_filters", "round_repeats", "scale",
    "SCHEMA_VERSION", "ArchSpec", "SpecError", "StageSpec", "StemSpec", "load_spec",
    "save_spec", "spec_from_dict",
    "ZOO", "get_model", "list_models",
]

from .export import (FORMATS, TimmArchDef, export_text, export_timm, tf_block_strings,
                     timm_block_string)
from .resolve import resolve_spec

__all__ += [
    "FORMATS", "TimmArchDef", "export_text", "export_timm", "tf_block_strings",
    "timm_block_string",
    "resolve_spec",
]
