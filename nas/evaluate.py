"""Accuracy evaluators: train a candidate briefly on a real proxy task (MnasNet Sec. 5).

The proxy evaluator retargets the candidate at the dataset (stem input channels, classes,
proxy resolution), trains it with the shared loop in :mod:`nas.train.loop`, and returns top-1
accuracy on a validation split held out from the training set; the test split is never used.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace
from typing import Any, Callable

import torch

from space import ArchSpec, build

# the proxy task's settings live in the light nas.proxy (--help states their defaults)
from .proxy import SETTINGS_BEFORE, ProxyConfig, legacy_proxy, stable_train  # noqa: F401
from .train import EpochResult, fit
from .train.device import resolve_device


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


@dataclass
class ProxyRun:
    """A proxy training set up and not yet run: the model on its device, the training and
    validation splits there, and where it runs. :func:`train_proxy` runs it (as
    :func:`evaluate_proxy` does); a benchmark may run it with its own callbacks."""

    model: torch.nn.Module
    train: Any
    val: Any
    device: torch.device


def prepare_proxy(spec: ArchSpec, proxy: ProxyConfig, *, seed: int,
                  device: str | None = None) -> ProxyRun:
    """Build ``spec`` for the proxy task (its dataset's channels and classes, the proxy
    resolution and BN momentum, the recipe's initialisation) and load the splits on
    ``device`` (default ``proxy.device``)."""
    from .data import device_splits, load_dataset, proxy_data

    where = resolve_device(proxy.device if device is None else device)
    ds = load_dataset(proxy.dataset, data_dir=proxy.data_dir)
    data = proxy_data(ds, resolution=proxy.resolution, train_samples=proxy.train_samples,
                      val_samples=proxy.val_samples, seed=0)
    task_spec = proxy_spec(spec, in_channels=data.in_channels, num_classes=data.num_classes,
                           resolution=proxy.resolution)
    if proxy.bn_momentum is not None:
        task_spec = task_spec.replace(bn_momentum=proxy.bn_momentum)
    model = build(task_spec, seed=seed, zero_init_last=proxy.zero_init_last,
                  zero_init_head=proxy.zero_init_head).to(where)
    train, val = device_splits(ds, data, device=where)
    return ProxyRun(model=model, train=train, val=val, device=where)


def evaluate_proxy(spec: ArchSpec, proxy: ProxyConfig, *, seed: int,
                   on_epoch: Callable[[EpochResult], None] | None = None,
                   device: str | None = None) -> EvalResult:
    """Train ``spec`` on the proxy task; top-1 accuracy on the held-out validation split.

    ``device`` (e.g. ``"cuda"`` in a Ray trial given a GPU) overrides ``proxy.device``. The
    training and validation images move there once, as uint8, and are resized and normalized
    there batch by batch (:func:`nas.data.device_splits`)."""
    return train_proxy(prepare_proxy(spec, proxy, seed=seed, device=device), proxy, seed=seed,
                       on_epoch=on_epoch)


def train_proxy(run: ProxyRun, proxy: ProxyConfig, *, seed: int,
                on_epoch: Callable[[EpochResult], None] | None = None,
                on_step: Callable[[torch.nn.Module], None] | None = None) -> EvalResult:
    """Train a prepared proxy run (:func:`prepare_proxy`) with ``proxy.train``; ``on_step``
    runs after every optimizer step (a benchmark's EMA, say)."""
    t0 = time.perf_counter()
    # Dropout and drop-connect draw from torch's global generator: seed it from the trial, so the
    # result depends on (spec, proxy, seed) alone, not on what ran before in this process (a
    # Ray worker runs a different sequence of trials than a local run; a reused result assumes
    # retraining would give the same number).
    with torch.random.fork_rng(devices=[run.device.index] if run.device.type == "cuda" else []):
        torch.manual_seed(seed)
        result = fit(run.model, run.train, None, run.val, None, config=proxy.train, seed=seed,
                     on_epoch=on_epoch, on_step=on_step)
    return EvalResult(accuracy=result.accuracy, epochs=result.epochs,
                      seconds=time.perf_counter() - t0, images_per_sec=result.images_per_sec,
                      seed=seed)
