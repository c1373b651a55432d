"""Batch-norm recalibration and scoring by inheritance (issue 24, phase 2).

A member's running statistics in the supernet are a blend over every member trained, so they
fit none: Once-for-All resets them and recomputes them for each sub-network on 2,000 training
images before measuring it (Cai et al., ICLR 2020, Sec. 3.3; ``set_running_statistics``), and
BigNAS calibrates the same way (Yu et al., ECCV 2020, Sec. 3.4). :func:`recalibrate_bn` does
this for any module (the supernet's active member or a network from ``space.build``): the same
batches give the same statistics in both, so the extracted network scores as the member does.
:func:`score_candidate` is the phase-2 evaluator: inherit, recalibrate, measure validation
accuracy.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from nas.train.loop import as_split, evaluate
from space.spec import ArchSpec

from .network import SuperNet


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[Any]) -> nn.Module:
    """Reset every batch norm's running statistics and recompute them as the cumulative average
    (``momentum=None``) over ``batches`` (input tensors, or ``(input, labels)`` pairs).

    Only the batch norms run in training mode: dropout and stochastic depth stay off, so the
    statistics depend on the weights and the batches alone. Each batch norm's momentum and the
    model's train/eval mode are restored afterwards. Returns ``model``.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    was_training = model.training
    momenta = [bn.momentum for bn in bns]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    seen = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            model(x)
            seen += 1
    finally:
        for bn, m in zip(bns, momenta):
            bn.momentum = m
        model.train(was_training)
    if seen == 0:
        raise ValueError("recalibrate_bn needs at least one batch, but got none; pass e.g. "
                         "calibration_batches(train, num_batches=4)")
    return model


def calibration_batches(train: Any, *, num_batches: int = 4, batch_size: int = 128,
                        seed: int = 0) -> list[torch.Tensor]:
    """``num_batches`` input batches of ``batch_size`` training images (``train`` a split or
    ``(x, y)`` tensors), drawn once without replacement with ``seed``: every candidate is
    recalibrated on the same images."""
    split = as_split(*train) if isinstance(train, tuple) else as_split(train)
    n = len(split)
    need = num_batches * batch_size
    if num_batches < 1 or batch_size < 1:
        raise ValueError(f"`num_batches >= 1` and `batch_size >= 1` must hold, but got "
                         f"num_batches={num_batches}, batch_size={batch_size}; pass e.g. 4 and 128")
    if need > n:
        raise ValueError(f"calibration needs {need} training images ({num_batches} batches of "
                         f"{batch_size}), but the split holds {n}; pass fewer or smaller batches")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:need]
    out = []
    for idx in order.split(batch_size):
        out.append(split.batch(idx.to(split.device))[0])
    return out


def validation_subset(val_split: Any, num_images: int, *, seed: int = 0) -> Any:
    """``num_images`` images of ``val_split`` (a split or ``(x, y)`` tensors), drawn once without
    replacement with ``seed``, as a split: a cheaper validation set for search-time scoring,
    the same images for every candidate (what it costs in rank agreement with the full split:
    benchmarks/BENCHMARKS_supernet.md). The finalists are trained and measured stand-alone."""
    split = as_split(*val_split) if isinstance(val_split, tuple) else as_split(val_split)
    n = len(split)
    if isinstance(num_images, bool) or not isinstance(num_images, int) \
            or not 1 <= num_images <= n:
        raise ValueError(f"`1 <= num_images <= {n}` (the validation images) must hold, but got "
                         f"num_images={num_images!r}; pass e.g. {min(n, 500)}")
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:num_images]
    from nas.data.ondevice import TensorSplit

    return TensorSplit(*split.batch(idx.sort().values.to(split.device)))


def score_candidate(supernet: SuperNet, spec: ArchSpec, *, calib_batches: Iterable[Any],
                    val_split: Any, batch_size: int = 100) -> float:
    """Validation top-1 accuracy of ``spec`` with the weights it inherits from ``supernet``:
    activate it, recalibrate batch norm on ``calib_batches``, evaluate on ``val_split`` (a
    split, or ``(x, y)`` tensors), in the supernet's layout (:meth:`SuperNet.set_channels_last`).
    Leaves ``spec`` active with its recalibrated statistics, and the supernet in the mode it
    was in. Evaluation batches of 100 scored 15-35% faster than 500 on one CPU thread at 32 px
    (benchmarks/BENCHMARKS_supernet.md).

    What it costs is the images it runs, calibration and validation alike (about 1 ms an image
    for a mid-sized mnasnet member on one CPU thread): fewer calibration batches
    (:func:`calibration_batches`) and a validation subset (:func:`validation_subset`) are the
    levers. It runs under ``torch.inference_mode``, and each layer's sliced weight is made once
    per candidate (:class:`~nas.supernet.elastic.ElasticConvBN`), not once per batch.
    """
    if batch_size < 1:
        raise ValueError(f"`batch_size >= 1` must hold, but got batch_size={batch_size}; pass "
                         f"e.g. 100")
    was_training = supernet.training
    with torch.inference_mode():
        supernet.set_active(spec)
        recalibrate_bn(supernet, calib_batches)
        device = next(supernet.parameters()).device
        val = (as_split(*val_split) if isinstance(val_split, tuple) else val_split).to(device)
        n = len(val)
        supernet.eval()
        correct = torch.zeros((), dtype=torch.int64, device=device)
        try:
            for i in range(0, n, batch_size):
                xb, yb = val.batch(torch.arange(i, min(i + batch_size, n), device=device))
                # topk, as nas.train.evaluate counts a hit (ties broken alike)
                correct += supernet(xb).topk(1, dim=1).indices[:, 0].eq(yb).sum()
        finally:
            supernet.train(was_training)
    return int(correct) / max(n, 1)
