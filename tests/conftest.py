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
