"""``synthetic[:k=v,...]``: a tiny learnable dataset made in memory, for tests and smoke runs.

The same arguments give the same images, so ``load_dataset(ds.name)`` remakes a dataset.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from space.errors import UnknownNameError

from .datasets import DATASETS, Dataset, DatasetLoader

SYNTHETIC_DEFAULTS = {"classes": 10, "channels": 1, "size": 16, "train": 600, "test": 200,
                      "seed": 0}
_SYNTHETIC_SHIFT = 2  # pixels, circular: models must tolerate small translations
_SYNTHETIC_NOISE = 1.2  # Gaussian std, in units of the templates' std


def synthetic_dataset(*, classes: int = 10, channels: int = 1, size: int = 16, train: int = 600,
                      test: int = 200, seed: int = 0) -> Dataset:
    """A small learnable dataset made in memory, the same for the same arguments.

    Each class has a smooth random template (a 4x4 field upsampled to ``size``); a sample is its
    class template at a random contrast, circularly shifted by up to two pixels, plus Gaussian
    noise. At the defaults, with 200 images held out, a three-conv strided CNN reaches 55-70%
    validation accuracy after one epoch of the other 400 (chance: 10%) and about 90% after five;
    the noise keeps models off 100%, so better models can still score higher.
    """
    for key, value, minimum in (("classes", classes, 2), ("channels", channels, 1),
                                ("size", size, 4), ("train", train, 2), ("test", test, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ValueError(f"synthetic: `{key} >= {minimum}` must hold, but got {key}={value!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"synthetic: `seed >= 0` must hold, but got seed={seed!r}")
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(classes, channels, 4, 4, generator=g) * 2 - 1
    templates = F.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    templates = templates / templates.flatten(1).std(dim=1).clamp_min(1e-6)[:, None, None, None]

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        labels = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]
        contrast = 0.7 + 0.6 * torch.rand(n, 1, 1, 1, generator=g)
        x = templates[labels] * contrast
        shifts = torch.randint(-_SYNTHETIC_SHIFT, _SYNTHETIC_SHIFT + 1, (n, 2), generator=g)
        for dy, dx in shifts.unique(dim=0).tolist():
            rows = ((shifts[:, 0] == dy) & (shifts[:, 1] == dx)).nonzero().squeeze(1)
            x[rows] = torch.roll(x[rows], shifts=(dy, dx), dims=(2, 3))
        x = x + _SYNTHETIC_NOISE * torch.randn(x.shape, generator=g)
        images = (128 + 25 * x).round().clamp(0, 255).to(torch.uint8)  # ~0.1% clipped
        return images, labels

    train_images, train_labels = make(train)
    test_images, test_labels = make(test)
    settings = {"classes": classes, "channels": channels, "size": size, "train": train,
                "test": test, "seed": seed}
    options = ",".join(f"{k}={v}" for k, v in settings.items() if v != SYNTHETIC_DEFAULTS[k])
    name = f"synthetic:{options}" if options else "synthetic"  # load_dataset(name) remakes it
    return Dataset(name=name, classes=tuple(f"class{k}" for k in range(classes)),
                   train_images=train_images, train_labels=train_labels,
                   test_images=test_images, test_labels=test_labels)


def _load_synthetic(arg: str | None, data_dir: Path | None) -> Dataset:
    if data_dir is not None:
        raise ValueError(f"synthetic data is generated in memory, but got --data-dir {data_dir}; "
                         f"drop --data-dir")
    options: dict[str, int] = {}
    for item in (arg or "").split(","):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if key not in SYNTHETIC_DEFAULTS or not eq:
            raise UnknownNameError(f"synthetic: unknown option {item!r}; known: "
                           + ", ".join(f"{k}={v}" for k, v in SYNTHETIC_DEFAULTS.items())
                           + " (e.g. synthetic:classes=4,size=8)")
        try:
            options[key] = int(value)
        except ValueError:
            raise ValueError(f"synthetic: {key} must be an integer, but got {value!r}") from None
    return synthetic_dataset(**options)


DATASETS.add("synthetic", DatasetLoader(
    load=_load_synthetic,
    form="synthetic[:classes=10,channels=1,size=16,train=600,test=200,seed=0]",
    help="a tiny learnable dataset generated in memory (for tests and smoke runs)"))
