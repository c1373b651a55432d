"""Random, tiny, valid ArchSpecs for hypothesis, shared by the space tests as a fixture.

Tests draw with ``data.draw(arch_specs)`` (``@given(data=st.data())``): the project runs pytest
with ``--import-mode=importlib``, where test modules cannot import helper modules beside them.

Every field the builder and counters branch on is drawn: block type, kernel 1/3/5/7, stride,
channels, expansion and SE ratios, skip, stem max-pool, head None or a width, odd resolutions,
in_channels 1 or 3, num_classes. Sizes stay tiny so that an fvcore trace takes milliseconds.
"""
from __future__ import annotations

import pytest
from hypothesis import strategies as st

from space.spec import ACTIVATIONS, BLOCK_TYPES, ArchSpec, StageSpec, StemSpec

KERNELS = (1, 3, 5, 7)
# Expansion ratios each block type accepts (spec.StageSpec.validate); 2.5 exercises rounding.
EXPAND_RATIOS = {"mbconv": (1.0, 0.5, 2.0, 2.5, 3.0, 6.0), "bottleneck": (0.25, 0.5, 1.0)}


@st.composite
def stage_specs(draw: st.DrawFn) -> StageSpec:
    block = draw(st.sampled_from(BLOCK_TYPES))
    return StageSpec(
        block=block,
        repeats=draw(st.integers(1, 2)),
        kernel=draw(st.sampled_from(KERNELS)),
        stride=draw(st.sampled_from((1, 2))),
        out_channels=draw(st.integers(1, 12)),
        expand_ratio=draw(st.sampled_from(EXPAND_RATIOS.get(block, (1.0,)))),
        se_ratio=draw(st.sampled_from((0.0, 0.25, 0.5, 1.0))),
        skip=draw(st.sampled_from(("identity", "none"))),
    )


@st.composite
def arch_spec_strategy(draw: st.DrawFn) -> ArchSpec:
    return ArchSpec(
        name=draw(st.sampled_from(("random", "r2", "net"))),
        stem=StemSpec(channels=draw(st.integers(1, 8)), kernel=draw(st.sampled_from(KERNELS)),
                      stride=draw(st.sampled_from((1, 2))), maxpool=draw(st.booleans())),
        stages=tuple(draw(st.lists(stage_specs(), min_size=1, max_size=3))),
        head_channels=draw(st.one_of(st.none(), st.integers(1, 16))),
        activation=draw(st.sampled_from(ACTIVATIONS)),
        dropout=draw(st.sampled_from((0.0, 0.2))),
        drop_connect=draw(st.sampled_from((0.0, 0.2))),
        in_channels=draw(st.sampled_from((1, 3))),
        num_classes=draw(st.integers(1, 10)),
        resolution=draw(st.integers(8, 24)),
    )


@pytest.fixture(scope="session")
def arch_specs() -> st.SearchStrategy[ArchSpec]:
    return arch_spec_strategy()
