"""Training splits that live on the training device: uint8 images, turned into model input there.

:class:`ImageSplit` holds a split as the dataset stores it (uint8 ``(N, C, H, W)`` at the
dataset's size, labels int64), moved to the device once. Each batch is gathered, resized and
normalized *there*, in batched tensor ops (the same :func:`~nas.data.proxy._to_tensor` the
float tensors of :func:`~nas.data.proxy.proxy_data` are made with; the proxy task has no
augmentation), so a step does no host work on the data and never waits for a copy.
:class:`TensorSplit` wraps tensors already prepared (``ProxyData.train_x``) in the same face.

On the CPU both give the same batches bit for bit (tests/nas/test_device.py): resizing and the
normalizing multiply-add act on each image alone. Kept as uint8 at 28 px, Fashion-MNIST takes
a fifth of the memory of its float32 tensors at 32 px (1/256 at 224 px), so large training sets
fit on a GPU.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .datasets import Dataset
from .proxy import ProxyData, _to_tensor

__all__ = ["ImageSplit", "TensorSplit", "device_splits"]


@dataclass(frozen=True, eq=False)
class ImageSplit:
    """uint8 images and labels on one device; :meth:`batch` gives model input at
    ``resolution``, normalized with ``mean``/``std`` (per channel, [0, 1] pixel units)."""

    images: torch.Tensor
    labels: torch.Tensor
    resolution: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise TypeError(f"ImageSplit.images must be uint8 (N, C, H, W), but got "
                            f"{self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: torch.device | str) -> ImageSplit:
        """This split on ``device`` (itself when already there): one copy, at the start."""
        device = torch.device(device)
        if self.images.device == device:
            return self
        return ImageSplit(self.images.to(device), self.labels.to(device), self.resolution,
                          self.mean, self.std)

    def batch(self, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Float32 model input and labels of the images at ``idx`` (on this split's device)."""
        return (_to_tensor(self.images[idx], resolution=self.resolution, mean=self.mean,
                           std=self.std), self.labels[idx])


@dataclass(frozen=True, eq=False)
class TensorSplit:
    """Model input prepared beforehand (float32 ``(N, C, R, R)``) and labels."""

    x: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.x.device

    def to(self, device: torch.device | str) -> TensorSplit:
        device = torch.device(device)
        if self.x.device == device:
            return self
        return TensorSplit(self.x.to(device), self.labels.to(device))

    def batch(self, idx: torch.Tensor | slice) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[idx], self.labels[idx]


def device_splits(ds: Dataset, data: ProxyData, *,
                  device: torch.device | str = "cpu") -> tuple[ImageSplit, ImageSplit]:
    """The (train, val) splits of ``data`` as :class:`ImageSplit` on ``device``: the same images,
    resolution and statistics as ``data.train_x``/``data.val_x``, kept as uint8."""
    if data.dataset != ds.name:
        raise ValueError(f"the proxy data were built from {data.dataset!r}, not {ds.name!r}; "
                         f"pass the dataset they came from")
    return tuple(ImageSplit(ds.train_images[index], ds.train_labels[index], data.resolution,
                            data.mean, data.std).to(device)
                 for index in (data.train_index, data.val_index))  # type: ignore[return-value]
