"""The accuracy/MACs Pareto front (MnasNet Sec. 3: the multi-objective search "finds
Pareto-optimal solutions"): the models no other model beats on both axes.

Pure arithmetic on (accuracy, macs) pairs, so the front can be checked on hand-made points and
drawn by anything. Accuracy is better when higher, MACs when lower. The second coordinate may be
any cost that is better when lower: a latency run's front is over (accuracy, latency_ms).

Semantics, stated once:

* ``p`` dominates ``q`` when ``p`` is at least as accurate *and* at most as costly, and strictly
  better on one of the two.
* The front is every point no other point dominates.
* **Ties**: of two points with equal MACs only the more accurate can be on the front; of two
  with equal accuracy only the cheaper one.
* **Duplicates** (equal on both axes) do not dominate each other: all copies are on the front
  or none is. A search that evaluates one architecture twice shows it twice.
* Non-finite coordinates (NaN, inf) are an error: filter unfinished trials out first.
"""
from __future__ import annotations

import math
from typing import Sequence


def dominates(p: tuple[float, float], q: tuple[float, float]) -> bool:
    """Whether ``p = (accuracy, macs)`` dominates ``q``."""
    return p[0] >= q[0] and p[1] <= q[1] and (p[0] > q[0] or p[1] < q[1])


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the non-dominated ``(accuracy, macs)`` points, cheapest first (ties in MACs
    by index). O(n log n): sort by MACs, and keep a point when it is more accurate than every
    strictly cheaper point and as accurate as the best point of its own MACs."""
    for i, (acc, macs) in enumerate(points):
        if not (math.isfinite(acc) and math.isfinite(macs)):
            raise ValueError(f"pareto_front needs finite (accuracy, macs) points, but point {i} is "
                             f"({acc!r}, {macs!r}); drop unfinished trials before calling it")
    order = sorted(range(len(points)), key=lambda i: (points[i][1], i))
    front: list[int] = []
    best_cheaper = -math.inf  # best accuracy among points strictly cheaper than the group
    k = 0
    while k < len(order):
        macs = points[order[k]][1]
        group = []
        while k < len(order) and points[order[k]][1] == macs:
            group.append(order[k])
            k += 1
        top = max(points[i][0] for i in group)
        if top > best_cheaper:
            front.extend(i for i in group if points[i][0] == top)
            best_cheaper = top
    return front
