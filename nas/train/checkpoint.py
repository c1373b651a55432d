"""``nas train`` checkpoints: one file per finished epoch, written atomically, read back checked.

``checkpoints/epoch-NNNN.pt`` holds the spec JSON and its ``arch_hash``, the epoch, the model,
optimizer and EMA states, the torch RNG state(s), the TrainConfig it was trained under, the data
settings (incl. normalization), the job and the metrics history. :func:`load_checkpoint` refuses
a file that is not one, or whose spec does not hash to the ``arch_hash`` it records.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from space import ArchSpec, build
from space.io import atomic_write

CHECKPOINT_FORMAT = "efficientnas-train-checkpoint"
CHECKPOINT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
_CKPT_NAME = re.compile(r"^epoch-(\d{4,})\.pt$")


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``data`` holds what is needed to rebuild the inputs: dataset,
    data_dir, resolution, train_samples, val_samples, seed, mean, std, classes.

    Not frozen: it carries the state dicts ``torch.load`` returned (tensors, and the optimizer's
    nested dicts), handed as they are to ``load_state_dict``; freezing the holder would not make
    them immutable, and copying them into read-only mappings would cost memory for nothing.
    """

    path: Path
    spec: ArchSpec
    arch_hash: str
    epoch: int
    model: dict[str, torch.Tensor]
    ema: dict[str, Any] | None
    optimizer: dict[str, Any]
    rng: dict[str, Any]
    train: dict[str, Any]
    data: dict[str, Any]
    job: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)

    def weights(self, which: str = "ema") -> dict[str, torch.Tensor]:
        """``ema`` (the averaged weights, falling back to raw when the run kept none) or ``raw``."""
        if which not in ("ema", "raw"):
            raise ValueError(f"weights must be 'ema' or 'raw', but got {which!r}")
        if which == "ema" and self.ema is not None:
            return self.ema["module"]
        return self.model


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return run_dir / CHECKPOINT_DIR / f"epoch-{epoch:04d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CKPT_NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` atomically (a killed run never leaves half a checkpoint)."""
    full = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **state}
    return atomic_write(path, lambda tmp: torch.save(full, tmp))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """A checkpoint file, or the newest checkpoint of a ``nas train`` run folder.

    Raises FileNotFoundError when there is none, ValueError for a file that is not a checkpoint
    or whose spec does not hash to the ``arch_hash`` it records.
    """
    p = Path(path)
    if p.is_dir():
        found = list_checkpoints(p)
        if not found:
            raise FileNotFoundError(f"no checkpoint in {str(p)!r} (expected "
                                    f"{CHECKPOINT_DIR}/epoch-NNNN.pt); pass a checkpoint file or "
                                    f"a folder written by nas train --out")
        p = found[-1]
    elif not p.is_file():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist; pass a .pt file or a "
                                f"folder written by nas train --out")
    try:
        raw = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors have no common base class
        raise ValueError(f"{str(p)!r} is not a nas train checkpoint ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''}); pass a file written by "
                         f"nas train") from None
    if not isinstance(raw, dict) or raw.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{str(p)!r} is not a nas train checkpoint (format "
                         f"{raw.get('format') if isinstance(raw, dict) else type(raw).__name__!r}"
                         f", expected {CHECKPOINT_FORMAT!r}); pass a file written by nas train")
    if raw.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{str(p)!r}: checkpoint version {raw.get('version')!r} is not "
                         f"{CHECKPOINT_VERSION}, which this efficientnas reads")
    spec = ArchSpec.from_dict(raw["spec"])
    if spec.arch_hash() != raw["arch_hash"]:
        raise ValueError(f"{str(p)!r}: its spec hashes to {spec.arch_hash()} but the checkpoint "
                         f"records arch_hash {raw['arch_hash']}; the file was edited or corrupted")
    return Checkpoint(path=p, spec=spec, arch_hash=raw["arch_hash"], epoch=int(raw["epoch"]),
                      model=raw["model"], ema=raw.get("ema"), optimizer=raw["optimizer"],
                      rng=raw["rng"], train=raw["train"], data=raw["data"], job=raw["job"],
                      history=list(raw.get("history", [])))


def check_same_spec(ckpt: Checkpoint, spec: ArchSpec, *, given: str) -> None:
    """The checkpoint must hold the architecture ``spec`` describes; say which hashes differ."""
    if ckpt.arch_hash == spec.arch_hash():
        return
    mine, theirs = ckpt.spec.to_dict(include_meta=False), spec.to_dict(include_meta=False)
    differ = [k for k in mine if k != "name" and mine[k] != theirs.get(k)]
    raise ValueError(f"checkpoint {str(ckpt.path)!r} is from another spec: it holds "
                     f"{ckpt.spec.name!r} with arch_hash {ckpt.arch_hash}, but {given!r} gives "
                     f"{spec.name!r} with arch_hash {spec.arch_hash()} (fields that differ: "
                     f"{', '.join(differ) or 'none'}); pass the model the run was trained from, "
                     f"or start a new run with another --out")


def check_classes(ckpt: Checkpoint, *, dataset: str, num_classes: int) -> None:
    if ckpt.spec.num_classes != num_classes:
        raise ValueError(f"dataset {dataset!r} has {num_classes} classes, but checkpoint "
                         f"{str(ckpt.path)!r} was trained for {ckpt.spec.num_classes} (on "
                         f"{ckpt.data.get('dataset')!r}); pass --dataset "
                         f"{ckpt.data.get('dataset')} or a checkpoint trained on {dataset!r}")


def model_from_checkpoint(ckpt: Checkpoint, *, weights: str = "ema") -> nn.Module:
    """The checkpoint's network in eval mode, with its EMA (default) or raw weights, on the CPU."""
    model = build(ckpt.spec)
    model.load_state_dict(ckpt.weights(weights))
    return model.eval()


# --------------------------------------------------------------------------- RNG state
def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)
