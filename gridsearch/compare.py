"""Compound against single-dimension scaling over seeds (EfficientNet Fig. 3 / Table 3), honestly.

The paper shows compound scaling beating depth-, width- and resolution-only scaling at equal
FLOPS. ``--compare-single`` repeats that on the user's data: all four networks at the same
measured MACs (:func:`gridsearch.measure.solve_single`), each trained with the same number of
seeds. This module turns their accuracies into a table: per variant the mean and the sample
standard deviation over seeds, and against the compound point the difference of means, Welch's
t, its degrees of freedom, a two-sided p-value and a verdict. A difference counts as beyond the
noise when p < :data:`ALPHA`; with one seed on either side there is no spread to compare with,
and the verdict says so instead of guessing.

The p-value is Student's t distribution's, from the regularized incomplete beta function
(:func:`t_sf_two_sided`), so no SciPy is needed.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

__all__ = ["ALPHA", "Summary", "Welch", "summarize", "welch", "t_sf_two_sided", "verdict",
           "compare_rows"]

ALPHA = 0.05  # the two-sided significance level a difference must reach to exceed the noise


class Summary(NamedTuple):
    n: int
    mean: float
    std: float  # sample std (ddof 1); NaN with one value


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return Summary(n, mean, std)


class Welch(NamedTuple):
    diff: float  # mean(a) - mean(b)
    t: float
    df: float
    p: float  # two-sided


def welch(a: Summary, b: Summary) -> Welch | None:
    """Welch's unequal-variance t-test of ``a`` against ``b``; None when either has fewer
    than two values (no spread to compare the difference with)."""
    if a.n < 2 or b.n < 2:
        return None
    diff = a.mean - b.mean
    va, vb = a.std ** 2 / a.n, b.std ** 2 / b.n
    se2 = va + vb
    if se2 == 0:  # both spreads are zero: any difference is exact, none is noise
        return Welch(diff, math.copysign(math.inf, diff) if diff else 0.0, math.inf,
                     0.0 if diff else 1.0)
    t = diff / math.sqrt(se2)
    df = se2 ** 2 / (va ** 2 / (a.n - 1) + vb ** 2 / (b.n - 1))
    return Welch(diff, t, df, t_sf_two_sided(t, df))


def t_sf_two_sided(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom:
    ``I_{df / (df + t^2)}(df / 2, 1 / 2)``."""
    if not df > 0:
        raise ValueError(f"`df > 0` must hold, but got df={df!r}")
    if math.isinf(t):
        return 0.0
    return _betainc(df / 2.0, 0.5, df / (df + t * t))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) (continued fraction, after
    Numerical Recipes' betai/betacf)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float, *, eps: float = 1e-15, iters: int = 500) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((qam + m2) * (a + m2)),
                    -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            return h
    return h  # converged to float precision long before for the df a comparison has


def verdict(test: Welch | None, kind: str) -> str:
    """One phrase: which of compound and ``kind`` is better, or that the seeds cannot tell."""
    if test is None:
        return "cannot tell: needs at least 2 seeds each (--compare-seeds)"
    if test.p >= ALPHA:
        return f"within the noise (p = {test.p:.2g} >= {ALPHA:g})"
    better = "compound" if test.diff > 0 else f"{kind}-only"
    return f"{better} is better beyond the noise (p = {test.p:.2g} < {ALPHA:g})"


def compare_rows(accuracies: dict[str, Sequence[float]], extra: dict[str, dict[str, Any]]
                 ) -> list[dict[str, Any]]:
    """compare_single.csv's rows: one per variant (``compound`` first), with ``extra`` (its
    coefficients and MACs) merged in, and each single variant tested against compound."""
    comp = summarize(accuracies.get("compound", ()))
    rows = []
    for kind, values in accuracies.items():
        s = summarize(values)
        row: dict[str, Any] = {"kind": kind, **extra.get(kind, {}), "seeds": s.n,
                               "accuracy_mean": s.mean, "accuracy_std": s.std,
                               "accuracies": list(values)}
        if kind != "compound":
            test = welch(comp, s)
            row.update({"diff_vs_compound": comp.mean - s.mean if s.n and comp.n else math.nan,
                        "welch_t": test.t if test else math.nan,
                        "welch_df": test.df if test else math.nan,
                        "p_value": test.p if test else math.nan,
                        "verdict": verdict(test, kind)})
        rows.append(row)
    return rows
