"""Fixtures for the stage-1 engine tests (the ladder, the finalists): a tiny config factory on
the tiny space (tests/conftest.py), and fake evaluators whose accuracies are known."""
from __future__ import annotations

import pytest

@pytest.fixture
def tiny_config(tiny_space_file):
    """``tiny_config(**overrides)``: a stage-1 SearchConfig on the tiny space and synthetic
    data (no finalists unless asked for)."""
    from nas.evaluate import ProxyConfig
    from nas.search import SearchConfig
    from nas.train import TrainConfig
    from space.deploy import Deployment

    def make(*, epochs=2, **kw):
        proxy = ProxyConfig(dataset="synthetic", resolution=16, train_samples=120,
                            val_samples=60, train=TrainConfig(epochs=epochs, batch_size=32,
                                                              lr=0.05, threads=1))
        base = dict(target_macs=2_000_000, space=tiny_space_file, trials=4, timeout=None,
                    sampler="random", seed=0, proxy=proxy, deploy=Deployment(resolution=32),
                    pruner="none", finalists=0)
        base.update(kw)
        return SearchConfig(**base)

    return make


class CurveEvaluator:
    """A fake evaluate_proxy: accuracy grows with epochs towards a level set by the
    architecture (``level(spec)``), plus ``noise`` x a number drawn from the seed; records
    every call (arch hash, seed); raises KeyboardInterrupt at call ``interrupt_on``."""

    def __init__(self, *, level=None, noise=0.0, interrupt_on=None):
        self.calls: list[tuple[str, int]] = []
        self.level = level or (lambda spec: 0.3 + (int(spec.arch_hash(), 16) % 600) / 1000)
        self.noise, self.interrupt_on = noise, interrupt_on

    def __call__(self, spec, proxy, *, seed, on_epoch=None, **kw):
        import random

        from nas.evaluate import EvalResult
        from nas.train import EpochResult

        if len(self.calls) == self.interrupt_on:
            raise KeyboardInterrupt
        self.calls.append((spec.arch_hash(), seed))
        level = self.level(spec) + self.noise * random.Random(seed).uniform(-1, 1)
        epochs = []
        n = proxy.train.epochs
        for e in range(1, n + 1):
            r = EpochResult(epoch=e, train_loss=1.0, val_accuracy=level * e / n, lr=0.1,
                            seconds=0.0, images_per_sec=0.0)
            epochs.append(r)
            if on_epoch:
                on_epoch(r)
        return EvalResult(accuracy=level, epochs=epochs, seconds=0.0, images_per_sec=0.0,
                          seed=seed)


@pytest.fixture
def curve_evaluator():
    return CurveEvaluator

