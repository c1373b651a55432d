"""How ``nas search --evaluator supernet`` trains and scores (issue 24): :class:`SupernetConfig`,
part of stage 1's :class:`nas.stage1.config.SearchConfig` and of the run's ``config.json``.

Light on purpose (no torch): ``nas search --help`` states these defaults. The phases that use
them are :mod:`nas.stage1.supernet_phase`; the supernet itself is :mod:`nas.supernet`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

__all__ = ["EVALUATORS", "SupernetConfig"]

# How a search trial is scored: ``proxy`` trains every candidate from scratch (MnasNet Sec. 5);
# ``supernet`` trains one weight-sharing supernet, then scores each candidate with the weights it
# inherits (Once-for-All, BigNAS). The finalists train stand-alone with either.
EVALUATORS = ("proxy", "supernet")


def _positive_int(name: str, value: Any, flag: str, example: int, *, low: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"`{name} >= {low}` must hold, but got {name}={value!r}; pass e.g. "
                         f"{flag} {example}")


@dataclass(frozen=True)
class SupernetConfig:
    """The supernet's training and scoring settings (the proxy task's dataset, resolution,
    training images and recipe are the search's own ``proxy``).

    ``epochs``: supernet training epochs over the proxy's training images, with the proxy's
    recipe (optimizer, learning rate, warm-up, schedule, label smoothing, clipping). Each step
    trains the largest, the smallest and ``n_random`` random members (the sandwich ``rule``,
    :data:`nas.supernet.SANDWICH_RULES`), the others distilled from the largest (``distill``,
    :data:`nas.supernet.DISTILL_LOSSES`). One epoch of the mnasnet space on 6,000 images at
    32 px took 65-94 CPU-seconds on one thread (benchmarks/BENCHMARKS_supernet.md); the default
    task, 12,000 at 24 px, has twice the steps.

    A candidate's score: batch norm recalibrated on ``calib_images`` fixed training images, then
    top-1 on ``score_val_samples`` images of the validation split (None: all of it; fewer score
    faster, and the finalists are trained stand-alone anyway)."""

    epochs: int = 3
    n_random: int = 2
    calib_images: int = 512
    score_val_samples: int | None = None
    distill: str = "kl"
    rule: str = "extremes"

    def __post_init__(self) -> None:
        _positive_int("supernet_epochs", self.epochs, "--supernet-epochs", 3)
        _positive_int("supernet_random", self.n_random, "--supernet-random", 2, low=0)
        _positive_int("calib_images", self.calib_images, "--calib-images", 512)
        if self.score_val_samples is not None:
            _positive_int("score_val_samples", self.score_val_samples, "--score-val-samples",
                          500)

    def scored_images(self, val_images: int) -> int:
        """How many of a ``val_images``-image validation split a candidate is scored on."""
        return min(self.score_val_samples or val_images, val_images)

    @property
    def calib_batches(self) -> tuple[int, int]:
        """(batches, batch size) the calibration images come in: batches of at most 128."""
        batches = -(-self.calib_images // 128)
        return batches, -(-self.calib_images // batches)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> SupernetConfig:
        return cls(**(d or {}))
