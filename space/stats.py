"""The seed statistic both stages and the dashboards share: mean and sample standard deviation.

It lives in space/ (the ground floor) so that the engine (:mod:`nas.engine.finalists`, which
records the finalists' mean and std) and the dashboards (:mod:`results`, which may import only
space/) use the one function, never a copy.
"""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["mean_std"]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (n - 1): both NaN for no values, the std NaN for
    one."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    if n == 1:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
