"""Fixtures shared across the test tree (keep this file small)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from nas.data import Dataset

# A search space of 1024 two-stage networks that train in milliseconds on synthetic data.
TINY_SPACE = """
name: tiny
stem: 8
head: 32
activation: relu
fixed: {dropout: 0.0, drop_connect: 0.0}
choices: {op: [dsconv, mbconv3], kernel: [3, 5], se_ratio: [0.0, 0.25], skip: [identity],
          filters: [1.0, 2.0], layers: [0, 1]}
stages:
  - [8, 1, 1]
  - [16, 1, 2]
"""


@pytest.fixture(scope="session")
def synthetic_ds() -> Dataset:
    """The default synthetic dataset: 10 classes, 1x16x16, 600 train / 200 test, learnable.

    Shared by every test (load_dataset caches it); treat its tensors as read-only.
    """
    from nas.data import load_dataset  # here, so tests that do not use it do not import it

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def tiny_space_text() -> str:
    """The tiny space's YAML (for fixtures wider than one test; else use tiny_space_file)."""
    return TINY_SPACE


@pytest.fixture
def tiny_space_file(tmp_path) -> str:
    """The tiny space written to ``tmp_path / "tiny.yaml"``; its path as a string."""
    f = tmp_path / "tiny.yaml"
    f.write_text(TINY_SPACE)
    return str(f)


def _entry_ms(key) -> float:
    """A made-up but fixed latency per table entry: 0.01 .. 1.00 ms."""
    import hashlib

    return (int(hashlib.md5(str(key).encode()).hexdigest(), 16) % 100 + 1) / 100


def _hand_table(space_file, *, resolution=32, space=None, overhead=0.05, **device):
    from nas.latency import LatencySettings
    from space.latency import LatencyTable, space_keys
    from space.search_space import load_space

    sp = load_space(space_file)
    return LatencyTable(space=space or sp.name, resolution=resolution,
                        device={**LatencySettings().device(), **device},
                        entries={str(k): _entry_ms(k) for k in space_keys(sp, resolution)},
                        overhead_ms=overhead)


@pytest.fixture(scope="session")
def hand_table():
    """``hand_table(space_file, *, resolution=32, space=None, overhead=0.05, **device)``: a
    latency table of the space with made-up fixed entries (0.01 .. 1 ms, different per entry),
    keyed by this machine's device (nas.latency.LatencySettings' defaults, ``device``
    overriding), so every prediction is an exact, known sum and nothing is timed."""
    return _hand_table
