"""The dataset type, the dataset registry and ``load_dataset`` (with its in-process cache).

A dataset is looked up by name in :data:`DATASETS`; each entry (a :class:`DatasetLoader`) is
registered by the module that reads that format (:mod:`nas.data.readers` for fashion-mnist and
cifar10, :mod:`nas.data.folder`, :mod:`nas.data.synthetic`). Parsed datasets are cached per
process, so repeated trials do not re-read 30 MB.
"""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from space.errors import UnknownNameError
from space.registry import Registry

logger = logging.getLogger(__name__)

_DATASET_CACHE_SIZE = 4


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A labelled image set: uint8 ``(N, C, H, W)`` images (square), int64 labels.

    Compared and hashed by identity (``eq=False``), so it can key the proxy cache.
    """

    name: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.classes, tuple):
            object.__setattr__(self, "classes", tuple(self.classes))
        if not self.classes:
            raise ValueError(f"dataset {self.name!r}: `classes` must not be empty")
        for split in ("train", "test"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != torch.uint8 or images.dim() != 4:
                raise TypeError(f"dataset {self.name!r}: {split}_images must be a uint8 (N, C, H, "
                                f"W) tensor, but got {images.dtype} of shape {tuple(images.shape)}")
            if labels.dtype != torch.int64 or labels.dim() != 1:
                raise TypeError(f"dataset {self.name!r}: {split}_labels must be an int64 (N,) "
                                f"tensor, but got {labels.dtype} of shape {tuple(labels.shape)}")
            if len(images) != len(labels):
                raise ValueError(f"dataset {self.name!r}: {len(images)} {split} images but "
                                 f"{len(labels)} labels")
            low, high = (int(labels.min()), int(labels.max())) if len(labels) else (0, 0)
            if low < 0 or high >= len(self.classes):
                raise ValueError(f"dataset {self.name!r}: {split} labels must lie in [0, "
                                 f"{len(self.classes)}), but got [{low}, {high}]")
        c, h, w = self.train_images.shape[1:]
        if h != w:
            raise ValueError(f"dataset {self.name!r}: images must be square, but got {h}x{w}")
        if len(self.train_images) == 0:
            raise ValueError(f"dataset {self.name!r}: the training split is empty")
        if self.test_images.shape[1:] != self.train_images.shape[1:]:
            raise ValueError(f"dataset {self.name!r}: test images are "
                             f"{tuple(self.test_images.shape[1:])} but train images {(c, h, w)}")
        if len(self.classes) < 2:
            raise ValueError(f"dataset {self.name!r}: a classifier needs at least 2 classes, "
                             f"but got {len(self.classes)} ({', '.join(self.classes) or 'none'})"
                             f"; add another class (for a folder dataset, another "
                             f"PATH/train/<class>/ folder of images)")

    @property
    def in_channels(self) -> int:
        return int(self.train_images.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_size(self) -> int:
        return int(self.train_images.shape[2])

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train_labels)}, "
                f"test={len(self.test_labels)}, {self.in_channels}x{self.image_size}x"
                f"{self.image_size}, {self.num_classes} classes)")


@dataclass(frozen=True)
class DatasetLoader:
    """A registry entry. ``load(arg, data_dir)`` gets the text after ``name:`` (or None) and the
    folder to read (``data_dir``, else ``default_dir``; None if neither)."""

    load: Callable[[str | None, Path | None], Dataset]
    form: str  # how a user names it, e.g. 'folder:PATH'
    help: str
    default_dir: Path | None = None
    arg_is_path: bool = False  # resolve the ':' argument as a path (so the cache key is stable)


DATASETS: Registry[DatasetLoader] = Registry("dataset")


# --------------------------------------------------------------------------- loading
def load_dataset(name: str, *, data_dir: str | Path | None = None) -> Dataset:
    """The dataset called ``name`` (see :data:`DATASETS`), parsed once per process.

    Raises KeyError for an unknown name, FileNotFoundError (saying what was tried and how to fix
    it) for missing folders or files, ValueError for corrupt files.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"dataset name must be a non-empty string, but got {name!r}")
    kind, sep, arg = name.partition(":")
    if kind not in DATASETS:
        forms = ", ".join(DATASETS.get(n).form for n in sorted(DATASETS))
        raise UnknownNameError(f"unknown dataset {name!r}; known: {forms}")
    loader = DATASETS.get(kind)
    directory = Path(data_dir) if data_dir is not None else loader.default_dir
    if directory is not None:
        directory = directory.expanduser().resolve()
    if sep and loader.arg_is_path and arg:
        arg = str(Path(arg).expanduser().resolve())
    return _load_cached(kind, arg if sep else None, directory)


@functools.lru_cache(maxsize=_DATASET_CACHE_SIZE)
def _load_cached(kind: str, arg: str | None, data_dir: Path | None) -> Dataset:
    ds = DATASETS.get(kind).load(arg, data_dir)
    logger.info("loaded %r", ds)
    return ds


def _no_arg(kind: str, arg: str | None) -> None:
    if arg is not None:
        raise ValueError(f"dataset {kind!r} takes no ':' argument, but got {kind}:{arg}; "
                         f"pass the folder with --data-dir instead")


def _require_dir(kind: str, data_dir: Path | None, expected: str, fix: str) -> Path:
    if data_dir is None:
        raise FileNotFoundError(f"{kind}: no data folder given; expected {expected}; fix: {fix}")
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{kind}: folder {data_dir} does not exist; expected {expected}; "
                                f"fix: {fix}")
    return data_dir
