"""Accuracy evaluators: train a candidate briefly on a real proxy task (MnasNet Sec. 5).

The proxy evaluator retargets the candidate at the dataset (stem input channels, classes,
proxy resolution), trains it with the shared loop in :mod:`nas.train.loop`, and returns top-1
accuracy on a validation split held out from the training set; the test split is never used.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import torch

from space import ArchSpec, build

from .train import EpochResult, TrainConfig, fit
from .train.device import check_device_name, resolve_device


@dataclass(frozen=True)
class ProxyConfig:
    """The proxy task: what to train on and how. Defaults chosen by measurement (BENCHMARKS.md)."""

    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    resolution: int = 32
    train_samples: int | None = 6000
    val_samples: int = 2000
    # 2 epochs, SGD at 0.02 per 64 images after a 0.2-epoch warm-up, cosine. Without the
    # warm-up, at 0.05, EfficientNet-B0 itself collapsed on the proxy (0.20-0.39 over 3 seeds,
    # against 0.64-0.72) and more random candidates fell below 0.5 (BENCHMARKS.md).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=2, lr=0.02,
                                                                   warmup_epochs=0.2))
    # Batch-norm momentum (PyTorch convention) while training on the proxy task. The paper's
    # 0.01 (TF 0.99) needs thousands of steps before the running statistics are usable; a
    # proxy run has a few hundred, so eval accuracy would sit near chance. None keeps the spec's.
    bn_momentum: float | None = 0.1
    # Where trials train (nas.train.device): auto is a GPU when torch sees one. How, not what:
    # it may change on --resume (though a GPU's kernels round differently from the CPU's).
    device: str = "auto"

    def __post_init__(self) -> None:
        check_device_name(self.device)
        if not isinstance(self.resolution, int) or self.resolution < 8:
            raise ValueError(f"`proxy resolution >= 8` must hold, but got {self.resolution!r}; "
                             f"pass e.g. --proxy-resolution 32")
        if self.train_samples is not None and self.train_samples < 1:
            raise ValueError(f"`train_samples >= 1` must hold, but got {self.train_samples}; "
                             f"pass e.g. --train-samples 6000")
        if self.val_samples < 1:
            raise ValueError(f"`val_samples >= 1` must hold, but got {self.val_samples}")
        if self.bn_momentum is not None and not 0 < self.bn_momentum <= 1:
            raise ValueError(f"`0 < bn_momentum <= 1` must hold, but got {self.bn_momentum}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "train": self.train.to_dict()}  # plain dicts all the way down

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProxyConfig:
        d = dict(d)
        d["train"] = TrainConfig.from_dict(d.get("train", {}))
        return cls(**d)


@dataclass
class EvalResult:
    accuracy: float
    epochs: list[EpochResult]
    seconds: float
    images_per_sec: float
    seed: int


def trial_seed(base_seed: int | None, arch_hash: str) -> int:
    """Deterministic per-architecture seed: the same architecture in the same run trains
    identically, so a repeated sample can reuse the earlier result."""
    blob = f"{0 if base_seed is None else base_seed}:{arch_hash}".encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:4], "little")


def proxy_spec(spec: ArchSpec, *, in_channels: int, num_classes: int, resolution: int) -> ArchSpec:
    return spec.with_task(in_channels=in_channels, num_classes=num_classes, resolution=resolution)


def with_threads(proxy: ProxyConfig, cpus: float) -> ProxyConfig:
    """The proxy task for a trial given ``cpus`` CPUs (a Ray trial's share): torch threads
    follow the CPUs (at least one) unless ``--threads`` set them."""
    if proxy.train.threads is not None:
        return proxy
    return replace(proxy, train=replace(proxy.train, threads=max(1, int(cpus))))


def check_proxy_task(proxy: ProxyConfig) -> None:
    """Load ``proxy``'s dataset and check it holds the images the proxy asks for; raises
    (FileNotFoundError, ValueError, ...) with the fix. Run before a search starts, on every
    node that will train."""
    from .data import load_dataset
    from .data.proxy import check_sizes

    ds = load_dataset(proxy.dataset, data_dir=proxy.data_dir)
    check_sizes(ds, train_samples=proxy.train_samples, val_samples=proxy.val_samples)


def evaluate_proxy(spec: ArchSpec, proxy: ProxyConfig, *, seed: int,
                   on_epoch: Callable[[EpochResult], None] | None = None,
                   device: str | None = None) -> EvalResult:
    """Train ``spec`` on the proxy task; top-1 accuracy on the held-out validation split.

    ``device`` (e.g. ``"cuda"`` in a Ray trial given a GPU) overrides ``proxy.device``. The
    training and validation images move there once, as uint8, and are resized and normalized
    there batch by batch (:func:`nas.data.device_splits`)."""
    from .data import device_splits, load_dataset, proxy_data

    where = resolve_device(proxy.device if device is None else device)

    ds = load_dataset(proxy.dataset, data_dir=proxy.data_dir)
    data = proxy_data(ds, resolution=proxy.resolution, train_samples=proxy.train_samples,
                      val_samples=proxy.val_samples, seed=0)
    task_spec = proxy_spec(spec, in_channels=data.in_channels, num_classes=data.num_classes,
                           resolution=proxy.resolution)
    if proxy.bn_momentum is not None:
        task_spec = task_spec.replace(bn_momentum=proxy.bn_momentum)
    model = build(task_spec, seed=seed).to(where)
    train, val = device_splits(ds, data, device=where)
    t0 = time.perf_counter()
    # Dropout and drop-connect draw from torch's global generator: seed it from the trial, so the
    # result depends on (spec, proxy, seed) alone, not on what ran before in this process (a
    # Ray worker runs a different sequence of trials than a local run; a reused result assumes
    # retraining would give the same number).
    with torch.random.fork_rng(devices=[where.index] if where.type == "cuda" else []):
        torch.manual_seed(seed)
        result = fit(model, train, None, val, None, config=proxy.train, seed=seed,
                     on_epoch=on_epoch)
    return EvalResult(accuracy=result.accuracy, epochs=result.epochs,
                      seconds=time.perf_counter() - t0, images_per_sec=result.images_per_sec,
                      seed=seed)
