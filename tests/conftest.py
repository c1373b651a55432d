"""Fixtures shared across the test tree (keep this file small)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from nas.data import Dataset


@pytest.fixture(scope="session")
def synthetic_ds() -> Dataset:
    """The default synthetic dataset: 10 classes, 1x16x16, 600 train / 200 test, learnable.

    Shared by every test (load_dataset caches it); treat its tensors as read-only.
    """
    from nas.data import load_dataset  # here, so tests that do not use it do not import it

    return load_dataset("synthetic")
