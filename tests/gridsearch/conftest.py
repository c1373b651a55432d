"""A tiny base network and a fake evaluator that counts its calls, for the stage-2 tests."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest

from space import ArchSpec, StageSpec, StemSpec


@pytest.fixture
def tiny_base() -> ArchSpec:
    """Two MBConv stages, 0.4 MMACs at 32 px: scaling, counting and training take milliseconds."""
    return ArchSpec(
        name="tiny-b0", stem=StemSpec(8),
        stages=(StageSpec("mbconv", 1, 3, 1, 8, 1.0, 0.25),
                StageSpec("mbconv", 2, 3, 2, 16, 3.0, 0.25)),
        head_channels=32, in_channels=1, num_classes=10, resolution=32)


@dataclass
class FakeResult:
    accuracy: float
    images_per_sec: float = 1000.0


@dataclass
class FakeEvaluator:
    """Scores a scaled spec by ``score(spec, proxy)``; records every call; may raise on call k."""

    score: Callable[[ArchSpec, Any], float] = lambda spec, proxy: 0.5
    raise_on_call: int | None = None
    calls: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, spec: ArchSpec, proxy: Any, *, seed: int,
                 on_epoch: Any = None) -> FakeResult:
        if self.raise_on_call is not None and len(self.calls) + 1 == self.raise_on_call:
            raise KeyboardInterrupt
        self.calls.append((spec.arch_hash(), proxy.resolution))
        return FakeResult(self.score(spec, proxy))


@pytest.fixture
def fake_evaluator() -> type[FakeEvaluator]:
    return FakeEvaluator
