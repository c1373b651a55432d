"""ONNX export of a spec's network with a dynamic batch, verified in ONNX Runtime.

Needs the optional extra ``efficientnas[onnx]`` (onnx, onnxscript, onnxruntime); without it
:func:`export_onnx` raises a one-line ImportError saying how to install it. The export goes
through ``torch.onnx.export`` (the torch.export-based exporter), with the batch dimension
declared dynamic, and is then run in ONNX Runtime on two batch sizes and compared with torch's
outputs (:data:`ATOL`, :data:`RTOL`).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from space.builder import build
from space.spec import ArchSpec

log = logging.getLogger(__name__)

__all__ = ["ATOL", "RTOL", "ONNX_HINT", "OnnxCheck", "calibrate_bn", "export_onnx",
           "export_onnx_module", "require_onnx", "verify_onnx"]

ONNX_HINT = ("install the onnx extra: pip install 'efficientnas[onnx]' "
             "(onnx, onnxscript, onnxruntime)")

# float32 through a few dozen conv/BN layers: ONNX Runtime fuses BN into the convs and reorders
# sums, so logits differ from torch's by ~1e-5; 1e-4 absolute + 1e-3 relative states that bound.
ATOL = 1e-4
RTOL = 1e-3


def require_onnx() -> None:
    """Raise a one-line ImportError saying how to install the onnx extra when it is missing."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxscript", "onnxruntime") if importlib.util.find_spec(m) is None]
    if missing:
        err = ImportError(f"{', '.join(missing)} not installed; {ONNX_HINT}")
        err.name = missing[0]
        raise err


def export_onnx_module(module: nn.Module, example: torch.Tensor, path: str | Path, *,
                       opset: int = 18) -> Path:
    """Write ``module`` (eval mode) to ``path``: input ``input`` shaped like ``example`` but with
    a dynamic batch dimension, output ``output``."""
    require_onnx()
    path = Path(path)
    batch = torch.export.Dim("batch", min=1, max=4096)
    module.eval()
    # The exporter logs a warning per torchvision op it skips, a FutureWarning from pytree and
    # every optimizer pass at INFO; none of it concerns these networks.
    quiet = [logging.getLogger(n) for n in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)
            program = torch.onnx.export(module, (example,), dynamo=True, opset_version=opset,
                                        input_names=["input"], output_names=["output"],
                                        dynamic_shapes=({0: batch},), external_data=False,
                                        verbose=False, report=False)
            program.save(str(path))
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)
    return path


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Set every BatchNorm's running statistics from one batch (and leave ``model`` in eval).

    A freshly initialised network in eval mode uses running var 1 where the true variance is far
    smaller, so its activations shrink by ~100x per stage and the logits are ~1e-14: a
    comparison of such outputs would pass whatever the export did. With statistics from a real
    batch the logits are O(1), so the tolerance means something.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average: one batch sets the statistics outright
    model.train()
    with torch.no_grad():
        model(x)
    for m, momentum in zip(bns, saved):
        m.momentum = momentum
    return model.eval()


@dataclass(frozen=True)
class OnnxCheck:
    """How far ONNX Runtime's outputs were from torch's over the batch sizes tried."""

    batches: tuple[int, ...]
    max_abs_diff: float
    max_abs_output: float
    within_tolerance: bool
    atol: float = ATOL
    rtol: float = RTOL


def verify_onnx(model: nn.Module, path: str | Path, *, in_channels: int, resolution: int,
                batches: tuple[int, ...] = (1, 3), seed: int = 0) -> OnnxCheck:
    """Run the exported file in ONNX Runtime and compare with torch's outputs."""
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    gen = torch.Generator().manual_seed(seed)
    worst, largest, ok = 0.0, 0.0, True
    model.eval()
    for b in batches:
        x = torch.randn(b, in_channels, resolution, resolution, generator=gen)
        with torch.inference_mode():
            want = model(x).numpy()
        got = session.run(None, {name: x.numpy()})[0]
        if got.shape != want.shape:
            raise RuntimeError(f"ONNX output shape {got.shape} differs from torch's {want.shape}")
        worst = max(worst, float(np.max(np.abs(got - want))))
        largest = max(largest, float(np.max(np.abs(want))))
        ok = ok and bool(np.allclose(got, want, atol=ATOL, rtol=RTOL))
    return OnnxCheck(tuple(batches), worst, largest, ok)


def export_onnx(spec: ArchSpec, path: str | Path, *, resolution: int | None = None,
                seed: int = 0, verify: bool = True) -> OnnxCheck | None:
    """Export ``spec``'s network (weights from ``seed``, BN statistics from one random batch,
    see :func:`calibrate_bn`) to ``path`` and verify it in ONNX Runtime.

    A verification outside tolerance raises RuntimeError (a bug, not bad input). The file is
    written beside ``path`` and renamed into place once verified, so a failed or interrupted
    export leaves nothing at ``path``.
    """
    size = int(resolution or spec.resolution)
    model = build(spec, seed=seed)
    example = torch.randn(2, spec.in_channels, size, size)
    calibrate_bn(model, torch.randn(8, spec.in_channels, size, size,
                                    generator=torch.Generator().manual_seed(seed)))
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")  # renamed into place only once verified
    try:
        export_onnx_module(model, example, tmp)
        check = (verify_onnx(model, tmp, in_channels=spec.in_channels, resolution=size)
                 if verify else None)
        if check is not None and not check.within_tolerance:
            raise RuntimeError(f"ONNX Runtime's outputs differ from torch's by up to "
                               f"{check.max_abs_diff:.3g} (tolerance atol={ATOL}, rtol={RTOL})")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return check
