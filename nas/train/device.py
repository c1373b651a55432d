"""Where training runs: one meaning of ``--device`` for ``nas search``, ``gridsearch`` and
``nas train``.

``auto`` is a CUDA GPU when torch sees one, else the CPU; ``cpu``; ``cuda`` (the current GPU);
``cuda:N`` (GPU N of those torch sees). :func:`check_device_name` checks the spelling only (a
config may name a GPU this machine lacks: ``--resume --device cpu`` moves such a run here);
:func:`resolve_device` checks that the device exists here and returns it with an index.
A Ray trial trains on the GPU Ray gave it (:func:`trial_device`).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DEVICE_KINDS", "check_device_name", "resolve_device", "trial_device"]

# the kinds of device a run may ask for (what each means: the module docstring)
DEVICE_KINDS = ("auto", "cpu", "cuda")
_NAME = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")
_FIX = "pass --device auto, cpu, cuda or cuda:N"


def check_device_name(name: object) -> str:
    """``name`` if it is spelled as a device (``auto``, ``cpu``, ``cuda``, ``cuda:N``)."""
    m = _NAME.match(name) if isinstance(name, str) else None
    if m is None or (m.group(2) is not None and m.group(1) != "cuda"):
        raise ValueError(f"unknown device {name!r}; {_FIX}")
    return name  # type: ignore[return-value]


def resolve_device(name: str) -> torch.device:
    """The device ``name`` means on this machine, with an index for a GPU (for its RNG state);
    ValueError when it is not here."""
    import torch  # here: checking a name (a config, --help) needs no torch

    kind, _, index = check_device_name(name).partition(":")
    if kind == "auto":
        kind = "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name} needs a CUDA GPU, but torch sees none "
                         f"(torch.cuda.is_available() is False); pass --device auto or cpu")
    count = torch.cuda.device_count()
    n = int(index) if index else torch.cuda.current_device()
    if n >= count:
        raise ValueError(f"--device {name}: torch sees {count} GPU(s), cuda:0 to "
                         f"cuda:{count - 1}; pass --device cuda:0 or auto")
    return torch.device("cuda", n)


def trial_device(name: str, *, gpus: float) -> str:
    """The device a Ray trial trains on: the GPU Ray gave it (Ray sets CUDA_VISIBLE_DEVICES, so
    it is ``cuda``), unless the run asked for the CPU; without a GPU, the CPU."""
    check_device_name(name)
    return "cuda" if gpus > 0 and name != "cpu" else "cpu"
