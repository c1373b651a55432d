"""The held-out validation split: stratified, disjoint, seeded (MnasNet Sec. 6).

Every candidate of a search is scored on the same images held out of the *training* set, so
the test set stays untouched until the final network is trained.
"""
from __future__ import annotations

import torch


def _check_int(name: str, value: object, lo: int, hi: int, fix: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"`{lo} <= {name} <= {hi}` must hold, but got {name}={value!r}; {fix}")
    return value


def _stratified_pick(labels: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """Sorted indices of ``k`` labels drawn per class in proportion to class size.

    Largest-remainder rounding in integers: each class gets floor(k * n_c / n) and the leftover
    goes to the largest remainders (ties: lower class first), so a class never gets more than it
    has.
    """
    n = len(labels)
    classes, counts = torch.unique(labels, return_counts=True)
    quota = counts * k // n
    remainder = counts * k % n
    quota[torch.argsort(-remainder, stable=True)[: k - int(quota.sum())]] += 1
    by_class = torch.argsort(labels, stable=True).split(counts.tolist())
    picked = [members[torch.randperm(len(members), generator=g)[:m]]
              for members, m in zip(by_class, quota.tolist())]
    return torch.cat(picked).sort().values


def _split(labels: torch.Tensor, val_size: int,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    val_idx = _stratified_pick(labels, val_size, g)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    return keep.nonzero().squeeze(1), val_idx


def holdout_split(labels: torch.Tensor, *, val_size: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint, sorted ``(train_idx, val_idx)`` over ``labels`` (the *training* labels),
    ``val_idx`` stratified by class. The same seed gives the same split; ``seed`` is required
    because every candidate of a search must be scored on the same validation images."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise TypeError(f"labels must be a 1-D integer tensor, but got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)} "
                        f"{tuple(getattr(labels, 'shape', ()))}")
    n = len(labels)
    _check_int("val_size", val_size, 1, n - 1,
               f"the training set has {n} images; pass e.g. --val-samples {max(1, n // 10)}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, but got {seed!r}")
    return _split(labels, val_size, torch.Generator().manual_seed(seed))
