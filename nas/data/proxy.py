"""The tensors a training run sees: the proxy task (train/val) and the untouched test split.

Images are resized to the run's resolution and normalized per channel with the statistics of
the training images chosen; :func:`proxy_data` is memoized, so trials at equal settings share
tensors (treat them as read-only).
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .datasets import Dataset, _load_cached
from .splits import _check_int, _split, _stratified_pick

logger = logging.getLogger(__name__)

_PROXY_CACHE_SIZE = 4


@dataclass(frozen=True, eq=False, repr=False)
class ProxyData:
    """The proxy task of one search: float32 ``(n, C, R, R)`` tensors normalized per channel with
    ``mean``/``std`` of the training subset (in [0, 1] pixel units), plus provenance:
    ``train_index``/``val_index`` index ``Dataset.train_images`` and never overlap."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    resolution: int
    in_channels: int
    num_classes: int
    train_index: torch.Tensor
    val_index: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    dataset: str
    seed: int

    def __repr__(self) -> str:
        return (f"ProxyData({self.dataset!r}, train={len(self.train_y)}, val={len(self.val_y)}, "
                f"{self.in_channels}x{self.resolution}x{self.resolution}, "
                f"{self.num_classes} classes, seed={self.seed})")


# --------------------------------------------------------------------------- tensors
def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std in [0, 1] units. Sums run over float32 chunks of raw pixel
    values (integers below 2**24, so exact) into float64, never copying a whole large uint8 set
    as floats."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(4096):
        x = chunk.to(torch.float32)
        total += x.sum(dim=(0, 2, 3), dtype=torch.float64)
        squares += x.square_().sum(dim=(0, 2, 3), dtype=torch.float64)
    count = images.numel() / images.shape[1]
    mean = total / count
    std = (squares / count - mean * mean).clamp_min(0).sqrt()
    if bool((std < 1e-3).any()):  # in pixel units: less than a thousandth of one grey level
        raise ValueError(f"the training images are constant in channel(s) "
                         f"{(std < 1e-3).nonzero().squeeze(1).tolist()}; nothing to learn there")
    return tuple((mean / 255).tolist()), tuple((std / 255).tolist())


def _to_tensor(images: torch.Tensor, *, resolution: int, mean: tuple[float, ...],
               std: tuple[float, ...]) -> torch.Tensor:
    x = images.to(torch.float32)
    if x.shape[-1] != resolution and len(x):
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                          antialias=resolution < x.shape[-1])
    # (x / 255 - mean) / std as one in-place multiply-add (interpolation commutes with it).
    scale = 1 / (255 * torch.tensor(std, dtype=torch.float64))
    shift = torch.tensor(mean, dtype=torch.float64) * 255 * scale
    shape = (1, -1, 1, 1)
    return x.mul_(scale.float().view(shape).to(x.device)).sub_(
        shift.float().view(shape).to(x.device))


def check_sizes(ds: Dataset, *, train_samples: int | None, val_samples: int) -> None:
    """Raise ValueError unless ``ds`` holds ``val_samples`` + ``train_samples`` training images
    (checked before a search starts, so a too-large ``--train-samples`` is one clear error
    rather than every trial failing)."""
    n = len(ds.train_labels)
    _check_int("val_samples", val_samples, 1, n - 1,
               f"{ds.name} has {n} training images; pass e.g. --val-samples {max(1, n // 10)}")
    if train_samples is not None:
        _check_int("train_samples", train_samples, 1, n - val_samples,
                   f"at most {n - val_samples} remain after holding out val_samples="
                   f"{val_samples} of {n}; pass a smaller --train-samples, or none for all")


def proxy_data(ds: Dataset, *, resolution: int, train_samples: int | None, val_samples: int,
               seed: int) -> ProxyData:
    """The proxy task for stage 1 (MnasNet section 6).

    ``val_samples`` images are held out of ``ds``'s *training* split (stratified,
    :func:`holdout_split` with ``seed``); ``train_samples`` more are drawn stratified from the
    rest (None: all of the rest). Images are resized to ``resolution`` (bilinear, antialiased
    when shrinking) and normalized with the per-channel mean/std of the chosen training images,
    taken at the dataset's own size so that :func:`test_data` can reuse them at any resolution.
    The validation split does not depend on ``train_samples`` or ``resolution``.

    Results are memoized on (ds identity, arguments), so trials at equal settings share tensors.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from load_dataset), but got {type(ds).__name__}")
    _check_int("resolution", resolution, 1, 4096, "pass e.g. --resolution 32")
    check_sizes(ds, train_samples=train_samples, val_samples=val_samples)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, but got {seed!r}")
    return _proxy_cached(ds, resolution, train_samples, val_samples, seed)


@functools.lru_cache(maxsize=_PROXY_CACHE_SIZE)
def _proxy_cached(ds: Dataset, resolution: int, train_samples: int | None, val_samples: int,
                  seed: int) -> ProxyData:
    g = torch.Generator().manual_seed(seed)  # the same stream as holdout_split(seed=seed)
    pool, val_index = _split(ds.train_labels, val_samples, g)
    if train_samples is None or train_samples == len(pool):
        train_index = pool
    else:
        train_index = pool[_stratified_pick(ds.train_labels[pool], train_samples, g)]
    mean, std = _channel_stats(ds.train_images[train_index])
    prepared = [_to_tensor(ds.train_images[idx], resolution=resolution, mean=mean, std=std)
                for idx in (train_index, val_index)]
    proxy = ProxyData(train_x=prepared[0], train_y=ds.train_labels[train_index],
                      val_x=prepared[1], val_y=ds.train_labels[val_index],
                      resolution=resolution, in_channels=ds.in_channels,
                      num_classes=ds.num_classes, train_index=train_index, val_index=val_index,
                      mean=mean, std=std, dataset=ds.name, seed=seed)
    logger.debug("built %r", proxy)
    return proxy


def test_data(ds: Dataset, *, resolution: int,
              normalize_like: ProxyData | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The untouched test split as float32 ``(N, C, R, R)`` and labels, for the final training run.

    Normalized with ``normalize_like``'s mean/std (the statistics the model was searched with),
    else with those of the whole training split.
    """
    if not isinstance(ds, Dataset):
        raise TypeError(f"ds must be a Dataset (from load_dataset), but got {type(ds).__name__}")
    _check_int("resolution", resolution, 1, 4096, "pass e.g. --resolution 32")
    if len(ds.test_labels) == 0:
        raise ValueError(f"dataset {ds.name!r} has no test split; for a folder dataset add "
                         f"PATH/test/<class>/ images")
    if normalize_like is not None:
        if normalize_like.dataset != ds.name or normalize_like.in_channels != ds.in_channels:
            raise ValueError(f"normalize_like was built from {normalize_like.dataset!r} "
                             f"({normalize_like.in_channels} channels), not {ds.name!r} "
                             f"({ds.in_channels}); pass proxy data of the same dataset")
        mean, std = normalize_like.mean, normalize_like.std
    else:
        mean, std = _channel_stats(ds.train_images)
    return _to_tensor(ds.test_images, resolution=resolution, mean=mean, std=std), ds.test_labels


# Not a test, though its name matches pytest's rule: keeps `from nas.data import test_data` in a
# test module from being collected.
test_data.__test__ = False  # type: ignore[attr-defined]


def clear_caches() -> None:
    """Forget parsed datasets and proxy tensors (e.g. after the files on disk changed)."""
    _load_cached.cache_clear()
    _proxy_cached.cache_clear()
