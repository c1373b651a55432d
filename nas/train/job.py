"""A ``nas train`` job: what the user asked for, the checks a resume makes, what it resolves to.

:class:`TrainJob` is the job as given (``None`` fields mean "the recipe's default");
:func:`prepare` resolves it to a :class:`Setup` (spec retargeted at the dataset, recipe,
TrainConfig, device, proxy tensors). A resumed run keeps its meaning: :func:`check_resume_job`
refuses a changed setting, except the run's length (``--epochs``, see :func:`check_resume_epochs`)
and how it runs (:data:`RESUME_MUTABLE`).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from space import ArchSpec, resolve_spec

from .device import check_device_name, resolve_device
from .loop import TrainConfig
from .recipes import Recipe, make_recipe

CONFIG_FILE = "config.json"
DEFAULT_MAX_VAL_SAMPLES = 5000
MIN_DEFAULT_RESOLUTION = 32


@dataclass(frozen=True)
class TrainJob:
    """One ``nas train`` run as the user asked for it. ``None`` means "the default":
    the recipe's epochs/batch size/EMA decay; resolution ``min(spec.resolution, max(32, image
    size))``; all training images; ``min(5000, n // 10)`` held-out validation images.
    ``ema_decay=0`` turns the weight average off."""

    model: str
    dataset: str = "fashion-mnist"
    data_dir: str | None = None
    recipe: str = "fast"
    epochs: int | None = None
    batch_size: int | None = None
    resolution: int | None = None
    train_samples: int | None = None
    val_samples: int | None = None
    ema_decay: float | None = None
    seed: int = 0
    channels_last: bool = True
    precision: str = "fp32"  # a key of nas.train.config.PRECISION_DTYPES
    # How, not what: these may change on --resume.
    device: str = "auto"
    compile: str = "off"  # a key of nas.train.config.COMPILE_MODES
    threads: int | None = None
    keep: int = 3

    def __post_init__(self) -> None:
        # The rest (epochs, batch size, samples, decay) is checked where it is used.
        check_device_name(self.device)
        for name, minimum, example in (("keep", 1, 3), ("threads", 1, 1), ("resolution", 8, 32),
                                       ("val_samples", 1, 5000)):
            value = getattr(self, name)
            if value is None and name != "keep":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"`{name} >= {minimum}` must hold, but got {name}={value!r}; "
                                 f"pass e.g. {flag} {example}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainJob:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


RESUME_MUTABLE = ("device", "threads", "keep", "compile")
# The run's length may change on --resume; check_resume_epochs says how far.
RESUME_REPLANNED = ("epochs",)
FLAG_NAMES = {"channels_last": "--no-channels-last"}


def check_resume_job(saved: TrainJob, job: TrainJob) -> None:
    """A resumed run keeps its meaning; every setting but device/threads/keep/compile and the run's
    length (epochs) must match. The model is checked by architecture hash against the
    checkpoint instead (see :func:`~nas.train.checkpoint.check_same_spec`), so another path to
    the same spec is fine."""
    for f in dataclasses.fields(TrainJob):
        if f.name in RESUME_MUTABLE or f.name in RESUME_REPLANNED or f.name == "model":
            continue
        have, want = getattr(saved, f.name), getattr(job, f.name)
        if have != want:
            flag = FLAG_NAMES.get(f.name, "--" + f.name.replace("_", "-"))
            raise ValueError(f"{flag} {want!r} differs from the resumed run's {have!r}; a resumed "
                             f"run keeps its settings: drop {flag} or start a new run with "
                             f"another --out")


def check_resume_epochs(*, done: int, epochs: int) -> None:
    """``--resume --epochs N`` re-plans the schedule to end at N, continuing from the newest
    checkpoint; it cannot take back epochs already trained. ``N == done`` trains nothing more
    and evaluates the test split again."""
    if epochs < done:
        raise ValueError(f"`--epochs >= {done}` (the epochs already trained) must hold on "
                         f"--resume, but got --epochs {epochs}; pass --epochs {done} or more, "
                         f"or start a new run with another --out")


def load_job(run_dir: str | Path) -> TrainJob:
    p = Path(run_dir) / CONFIG_FILE
    if not p.is_file():
        raise FileNotFoundError(f"--resume: {str(run_dir)!r} is not a nas train run folder (no "
                                f"{CONFIG_FILE}); pass the --out of an earlier nas train run")
    return TrainJob.from_dict(json.loads(p.read_text())["job"])


# --------------------------------------------------------------------------- devices
def pick_device(name: str) -> torch.device:
    """The device ``--device`` names here (:func:`nas.train.device.resolve_device`)."""
    return resolve_device(name)


# --------------------------------------------------------------------------- setup
@dataclass(frozen=True)
class Setup:
    """Everything a job resolves to before training starts."""

    spec: ArchSpec
    recipe: Recipe
    train: TrainConfig
    ema_decay: float | None
    device: torch.device
    dataset: Any  # nas.data.Dataset
    data: Any  # nas.data.ProxyData


def default_resolution(spec: ArchSpec, image_size: int) -> int:
    """The spec's resolution, but no larger than the images (or 32, if they are smaller)."""
    return min(spec.resolution, max(MIN_DEFAULT_RESOLUTION, image_size))


def prepare(job: TrainJob) -> Setup:
    """Resolve the model, data, recipe and device of ``job`` (raises on any bad input)."""
    from nas.data import load_dataset, proxy_data

    base = resolve_spec(job.model)
    device = pick_device(job.device)
    ds = load_dataset(job.dataset, data_dir=job.data_dir)
    if len(ds.test_labels) == 0:  # refused here, before any training or checkpoint
        raise ValueError(f"nas train reports top-1 on the untouched test split, but dataset "
                         f"{ds.name!r} has none; add PATH/test/<class>/ (or PATH/val/) images "
                         f"laid out like PATH/train/")
    resolution = job.resolution or default_resolution(base, ds.image_size)
    n = len(ds.train_labels)
    val_samples = job.val_samples or max(1, min(DEFAULT_MAX_VAL_SAMPLES, n // 10))
    data = proxy_data(ds, resolution=resolution, train_samples=job.train_samples,
                      val_samples=val_samples, seed=job.seed)
    task = base.with_task(in_channels=ds.in_channels, num_classes=ds.num_classes,
                          resolution=resolution)
    recipe = make_recipe(job.recipe, task, batch_size=job.batch_size, epochs=job.epochs)
    train = dataclasses.replace(recipe.train, threads=job.threads,
                                channels_last=job.channels_last, precision=job.precision,
                                compile=job.compile)
    ema_decay = recipe.ema_decay if job.ema_decay is None else (job.ema_decay or None)
    return Setup(spec=recipe.spec, recipe=recipe, train=train, ema_decay=ema_decay,
                 device=device, dataset=ds, data=data)
