"""Datasets for stage 1: load a labelled image set, hold out validation, build proxy tensors.

MnasNet (Tan et al., 2019, section 6) searches on a proxy: each sampled model is trained briefly
and scored by top-1 accuracy on a validation split *held out from the training set* (50K
ImageNet training images), so the test set stays untouched until the final network is trained.
This module is that data path:

``load_dataset(name)``
    a :class:`Dataset` of uint8 ``(N, C, H, W)`` images and int64 labels, looked up by name in
    :data:`DATASETS`: ``fashion-mnist`` (IDX files), ``cifar10`` (python pickle batches),
    ``folder:PATH`` (ImageFolder layout), ``synthetic[:k=v,...]`` (in memory, for tests).
    Parsed datasets are cached in-process, so repeated trials do not re-read 30 MB.
``holdout_split(labels, val_size=, seed=)``
    stratified, disjoint (train, val) indices into the *training* set.
``proxy_data(ds, resolution=, train_samples=, val_samples=, seed=)``
    the proxy task: float tensors at the search resolution, normalized with training statistics,
    with the indices they came from (``train_index``/``val_index``) kept for provenance.
``test_data(ds, resolution=, normalize_like=)``
    the untouched test split, for the final training run only.

The model follows the dataset: ``ArchSpec.with_task(in_channels=ds.in_channels,
num_classes=ds.num_classes)``.

Tensors handed out here are shared between callers (both caches return the same objects);
treat them as read-only.

Downloads are explicit (:func:`download_fashion_mnist`, :func:`download_cifar10`); nothing here
touches the network on its own.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from space.registry import Registry

__all__ = [
    "DATASETS", "Dataset", "DatasetLoader", "ProxyData",
    "load_dataset", "holdout_split", "proxy_data", "test_data",
    "read_idx", "synthetic_dataset", "clear_caches",
    "download_fashion_mnist", "download_cifar10",
    "FASHION_MNIST_DIR", "FOLDER_MAX_SIZE",
]

logger = logging.getLogger(__name__)

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_FIX = ("apt-get install dataset-fashion-mnist, or pass --data-dir DIR holding the "
                     "four IDX .gz files (nas.data.download_fashion_mnist(DIR) fetches them)")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Official names and MD5s of the published .gz files (Zalando's README; torchvision checks the
# same). Debian re-compresses them, so the MD5 is checked after a download only.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
FASHION_MNIST_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR10_FIX = ("pass --data-dir DIR holding data_batch_1..5, test_batch and batches.meta (the "
               "extracted cifar-10-python.tar.gz; nas.data.download_cifar10(DIR) fetches it)")

FOLDER_EXTENSIONS = (".png", ".jpg", ".jpeg")
FOLDER_TEST_SPLITS = ("test", "val")  # first one present is the untouched test split
# Images of a folder dataset are stored square at the most common shorter side, capped here so
# a folder of photos does not need tens of GB of RAM; searches run far below this resolution.
FOLDER_MAX_SIZE = 256

_DATASET_CACHE_SIZE = 4
_PROXY_CACHE_SIZE = 4


# --------------------------------------------------------------------------- data types
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
        raise KeyError(f"unknown dataset {name!r}; known: {forms}")
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


def clear_caches() -> None:
    """Forget parsed datasets and proxy tensors (e.g. after the files on disk changed)."""
    _load_cached.cache_clear()
    _proxy_cached.cache_clear()


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


# --------------------------------------------------------------------------- fashion-mnist
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | Path) -> torch.Tensor:
    """The array in an IDX file (LeCun's MNIST format), gzip-compressed if it ends in ``.gz``.

    Header: two zero bytes, a type code, the number of dimensions, then each size as a big-endian
    uint32. Raises ValueError naming the file if the header or length is wrong.
    """
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError) as e:
        raise ValueError(f"{path}: not a readable gzip file ({e}); re-download it") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(f"{path}: bad IDX magic {raw[:4].hex() or '(empty)'}; expected 0000 then "
                         f"a type code in {sorted(hex(t) for t in _IDX_TYPES)} and the rank; "
                         f"the file is corrupt or not an IDX file, re-download it")
    dtype, ndim = np.dtype(_IDX_TYPES[raw[2]]), raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) - offset != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes of data) but "
                         f"the file holds {len(raw) - offset}; it is truncated or corrupt, "
                         f"re-download it")
    array = np.frombuffer(raw, dtype, offset=offset).reshape(shape)
    return torch.from_numpy(array.astype(dtype.newbyteorder("="), copy=True))


def _find_idx(data_dir: Path, filename: str) -> Path:
    for candidate in (data_dir / filename, data_dir / filename.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"fashion-mnist: missing {data_dir / filename} (or its uncompressed form); expected the "
        f"four IDX files {', '.join(FASHION_MNIST_FILES)} in {data_dir}; fix: {FASHION_MNIST_FIX}")


def _load_fashion_mnist(arg: str | None, data_dir: Path | None) -> Dataset:
    _no_arg("fashion-mnist", arg)
    data_dir = _require_dir("fashion-mnist", data_dir,
                            f"the four IDX files {', '.join(FASHION_MNIST_FILES)}",
                            FASHION_MNIST_FIX)
    split: dict[str, torch.Tensor] = {}
    for prefix, key in (("train", "train"), ("t10k", "test")):
        images = read_idx(_find_idx(data_dir, f"{prefix}-images-idx3-ubyte.gz"))
        labels = read_idx(_find_idx(data_dir, f"{prefix}-labels-idx1-ubyte.gz"))
        if images.dtype != torch.uint8 or images.dim() != 3 or labels.dim() != 1:
            raise ValueError(f"fashion-mnist: {data_dir}/{prefix}-*: expected uint8 images "
                             f"(N, H, W) and labels (N,), but got {images.dtype} "
                             f"{tuple(images.shape)} and {tuple(labels.shape)}")
        split[f"{key}_images"] = images.unsqueeze(1)
        split[f"{key}_labels"] = labels.to(torch.int64)
    return Dataset(name="fashion-mnist", classes=FASHION_MNIST_CLASSES, **split)


DATASETS.add("fashion-mnist", DatasetLoader(
    load=_load_fashion_mnist, form="fashion-mnist", default_dir=FASHION_MNIST_DIR,
    help=f"Zalando's Fashion-MNIST, 60000/10000 grayscale 28x28, 10 classes; IDX .gz files from "
         f"--data-dir (default {FASHION_MNIST_DIR})"))


# --------------------------------------------------------------------------- cifar10
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles CIFAR batches: dicts of numpy arrays, lists and bytes, nothing else, so a
    tampered file cannot run code."""

    _ALLOWED = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how protocol 2 pickles bytes under Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module == "numpy.core.multiarray":  # numpy 1 pickles; numpy 2 moved it to _core
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            obj = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise ValueError(f"cifar10: {path} is not a CIFAR-10 python batch ({e}); re-extract "
                         f"cifar-10-python.tar.gz") from None
    if not isinstance(obj, dict):
        raise ValueError(f"cifar10: {path} holds a {type(obj).__name__}, expected a dict")
    # The official files were written by Python 2: keys are bytes.
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    batch = _unpickle(path)
    try:
        data, labels = np.asarray(batch["data"]), np.asarray(batch["labels"])
    except KeyError as e:
        raise ValueError(f"cifar10: {path} lacks the key {e}; expected 'data' and "
                         f"'labels'") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"cifar10: {path}: 'data' must be uint8 (N, 3072), but got {data.dtype} "
                         f"{data.shape}")
    # Each row is the 1024 red, then green, then blue values of a 32x32 image, row-major.
    images = torch.from_numpy(data.reshape(-1, 3, 32, 32).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


def _load_cifar10(arg: str | None, data_dir: Path | None) -> Dataset:
    _no_arg("cifar10", arg)
    expected = f"{', '.join(CIFAR10_FILES)} (or a {CIFAR10_FOLDER}/ folder holding them)"
    data_dir = _require_dir("cifar10", data_dir, expected, CIFAR10_FIX)
    if not (data_dir / "data_batch_1").exists() and (data_dir / CIFAR10_FOLDER).is_dir():
        data_dir = data_dir / CIFAR10_FOLDER  # the parent the tarball was extracted into
    for filename in CIFAR10_FILES:
        if not (data_dir / filename).is_file():
            raise FileNotFoundError(f"cifar10: missing {data_dir / filename}; expected "
                                    f"{expected} in {data_dir}; fix: {CIFAR10_FIX}")
    train = [_cifar_batch(data_dir / f) for f in CIFAR10_FILES[:5]]
    test_images, test_labels = _cifar_batch(data_dir / "test_batch")
    meta = _unpickle(data_dir / "batches.meta")
    if "label_names" not in meta:
        raise ValueError(f"cifar10: {data_dir / 'batches.meta'} lacks 'label_names'")
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in meta["label_names"])
    return Dataset(name="cifar10", classes=classes,
                   train_images=torch.cat([x for x, _ in train]),
                   train_labels=torch.cat([y for _, y in train]),
                   test_images=test_images, test_labels=test_labels)


DATASETS.add("cifar10", DatasetLoader(
    load=_load_cifar10, form="cifar10",
    help="CIFAR-10, 50000/10000 RGB 32x32, 10 classes; the python pickle batches from --data-dir"))


# --------------------------------------------------------------------------- folder:PATH
def _image_files(class_dir: Path) -> list[Path]:
    files = sorted(p for p in class_dir.iterdir()
                   if p.is_file() and p.suffix.lower() in FOLDER_EXTENSIONS)
    skipped = sum(1 for p in class_dir.iterdir() if p.is_file()) - len(files)
    if skipped:
        logger.debug("%s: skipped %d files without a %s extension", class_dir, skipped,
                     "/".join(FOLDER_EXTENSIONS))
    return files


def _folder_split(root: Path, classes: tuple[str, ...] | None,
                  ) -> tuple[list[tuple[Path, int]], tuple[str, ...]]:
    """(file, label) pairs of one split, and the classes; ``classes=None``: this split (train/)
    defines them, as its sorted subfolder names."""
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir())
    names = tuple(p.name for p in class_dirs)
    if classes is None:
        classes = names
    unknown = sorted(set(names) - set(classes))
    if unknown:
        raise ValueError(f"folder: {root} has class folders {unknown} that train/ lacks; the "
                         f"classes are {list(classes)}; rename or remove them")
    samples = []
    for class_dir in class_dirs:
        files = _image_files(class_dir)
        if not files:
            raise ValueError(f"folder: {class_dir} holds no {'/'.join(FOLDER_EXTENSIONS)} "
                             f"images; add some or remove the folder")
        samples += [(f, classes.index(class_dir.name)) for f in files]
    return samples, classes


def _load_folder(arg: str | None, data_dir: Path | None) -> Dataset:
    if arg and data_dir is not None and Path(arg) != data_dir:
        raise ValueError(f"folder: got both folder:{arg} and --data-dir {data_dir}; give one")
    root = Path(arg) if arg else data_dir
    expected = "PATH/train/<class>/*.png|jpg and optionally PATH/test/<class>/ (or PATH/val/)"
    root = _require_dir("folder", root, expected, "name the dataset folder:PATH with PATH laid "
                                                  "out as " + expected)
    if not (root / "train").is_dir():
        raise FileNotFoundError(f"folder: missing {root / 'train'}; expected {expected}")
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError("folder datasets need Pillow: pip install pillow") from None

    train, classes = _folder_split(root / "train", None)
    if not train:
        raise FileNotFoundError(f"folder: {root / 'train'} has no class folders; expected "
                                f"{expected}")
    present = [root / s for s in FOLDER_TEST_SPLITS if (root / s).is_dir()]
    if not present:
        logger.warning("folder: %s has no test/ or val/ split; the test split is empty "
                       "(search holds out validation from train/; test_data() will refuse)", root)
    elif len(present) > 1:
        logger.info("folder: using %s as the test split; %s is not used (validation is held "
                    "out from train/)", present[0], present[1])
    test = _folder_split(present[0], classes)[0] if present else []

    # Size and mode come from the training headers only (PIL reads them without decoding).
    sides: Counter[int] = Counter()
    gray = True
    for path, _ in train:
        with Image.open(path) as img:
            sides[min(img.size)] += 1
            gray = gray and img.mode in ("1", "L", "LA")
    common = max(sides.items(), key=lambda kv: (kv[1], kv[0]))[0]
    size = min(common, FOLDER_MAX_SIZE)
    mode = "L" if gray else "RGB"
    logger.info("folder: %s: %d train / %d test images -> %s %dx%d (most common shorter side %d)",
                root, len(train), len(test), mode, size, size, common)

    def read(samples: list[tuple[Path, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        images = np.empty((len(samples), size, size, 1 if gray else 3), np.uint8)
        for i, (path, _) in enumerate(samples):
            with Image.open(path) as img:
                if img.mode.startswith(("I", "F")):  # 16-bit or float: to 8 bits would clip
                    raise ValueError(f"folder: {path} is a {img.mode} image; only 8-bit images "
                                     f"are supported, convert it first")
                # Scale the shorter side to `size` and center-crop: no distortion.
                fitted = ImageOps.fit(img.convert(mode), (size, size),
                                      method=Image.Resampling.BILINEAR)
                images[i] = np.asarray(fitted).reshape(size, size, -1)
        labels = torch.tensor([y for _, y in samples], dtype=torch.int64)
        return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels

    train_images, train_labels = read(train)
    test_images, test_labels = read(test)
    return Dataset(name=f"folder:{root}", classes=classes,
                   train_images=train_images, train_labels=train_labels,
                   test_images=test_images, test_labels=test_labels)


DATASETS.add("folder", DatasetLoader(
    load=_load_folder, form="folder:PATH", arg_is_path=True,
    help=f"an ImageFolder tree: PATH/train/<class>/*.png|jpg, test split from PATH/test/ (else "
         f"PATH/val/, else none); square, center-cropped to the most common shorter side "
         f"(at most {FOLDER_MAX_SIZE}), grayscale if every training image is"))


# --------------------------------------------------------------------------- synthetic
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
            raise KeyError(f"synthetic: unknown option {item!r}; known: "
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


# --------------------------------------------------------------------------- splits
def _check_int(name: str, value: object, lo: int, hi: int, fix: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise ValueError(f"`{lo} <= {name} <= {hi}` must hold, but got {name}={value!r}; {fix}")
    return value


def _stratified_pick(labels: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """Sorted indices of ``k`` labels drawn per class in proportion to class size.

    Largest-remainder rounding in integers: each class gets floor(k * n_c / n) and the leftover
    goes to the largest remainders (ties: lower class first), so a class never gets more than it
    has.
    """
    n = len(labels)
    classes, counts = torch.unique(labels, return_counts=True)
    quota = counts * k // n
    remainder = counts * k % n
    quota[torch.argsort(-remainder, stable=True)[: k - int(quota.sum())]] += 1
    by_class = torch.argsort(labels, stable=True).split(counts.tolist())
    picked = [members[torch.randperm(len(members), generator=g)[:m]]
              for members, m in zip(by_class, quota.tolist())]
    return torch.cat(picked).sort().values


def _split(labels: torch.Tensor, val_size: int,
           g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    val_idx = _stratified_pick(labels, val_size, g)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    return keep.nonzero().squeeze(1), val_idx


def holdout_split(labels: torch.Tensor, *, val_size: int,
                  seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint, sorted ``(train_idx, val_idx)`` over ``labels`` (the *training* labels),
    ``val_idx`` stratified by class. The same seed gives the same split; ``seed`` is required
    because every candidate of a search must be scored on the same validation images."""
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.is_floating_point():
        raise TypeError(f"labels must be a 1-D integer tensor, but got "
                        f"{getattr(labels, 'dtype', type(labels).__name__)} "
                        f"{tuple(getattr(labels, 'shape', ()))}")
    n = len(labels)
    _check_int("val_size", val_size, 1, n - 1,
               f"the training set has {n} images; pass e.g. --val-samples {max(1, n // 10)}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, but got {seed!r}")
    return _split(labels, val_size, torch.Generator().manual_seed(seed))


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
    return x.mul_(scale.float().view(shape)).sub_(shift.float().view(shape))


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
    n = len(ds.train_labels)
    _check_int("val_samples", val_samples, 1, n - 1,
               f"{ds.name} has {n} training images; pass e.g. --val-samples {max(1, n // 10)}")
    if train_samples is not None:
        _check_int("train_samples", train_samples, 1, n - val_samples,
                   f"at most {n - val_samples} remain after holding out val_samples="
                   f"{val_samples} of {n}; pass a smaller --train-samples, or none for all")
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


# --------------------------------------------------------------------------- downloads
def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(urls: tuple[str, ...], dest: Path, md5: str) -> Path:
    """Download to ``dest`` (atomically, checked against ``md5``), trying each URL in turn."""
    if dest.is_file() and _md5(dest) == md5:
        logger.info("%s already present", dest)
        return dest
    errors = []
    for url in urls:
        fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        tmp = Path(tmp_name)
        try:
            logger.info("downloading %s", url)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out)
            got = _md5(tmp)
            if got != md5:
                raise ValueError(f"{url}: MD5 {got} != expected {md5}")
            tmp.replace(dest)
            return dest
        except (OSError, ValueError) as e:  # URLError is an OSError
            errors.append(f"{url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise OSError(f"could not download {dest.name}: " + "; ".join(errors)
                  + "; check the network, or fetch the file by hand into " + str(dest.parent))


def download_fashion_mnist(dest: str | Path) -> Path:
    """Fetch the four Fashion-MNIST IDX .gz files from Zalando into ``dest``; return ``dest``,
    ready for ``load_dataset('fashion-mnist', data_dir=dest)``. Needs a network."""
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    for filename, md5 in FASHION_MNIST_FILES.items():
        _fetch(tuple(base + filename for base in FASHION_MNIST_URLS), dest / filename, md5)
    return dest


def download_cifar10(dest: str | Path) -> Path:
    """Fetch and extract the CIFAR-10 python tarball into ``dest``; return the extracted
    ``dest/cifar-10-batches-py`` folder (what ``--data-dir`` wants). Needs a network."""
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    archive = _fetch((CIFAR10_URL,), dest / "cifar-10-python.tar.gz", CIFAR10_MD5)
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(CIFAR10_FOLDER + "/")]
        # The 'data' filter refuses links and paths that escape dest; the MD5 already matched.
        if hasattr(tarfile, "data_filter"):  # Python >= 3.10.12 / 3.11.4
            tar.extractall(dest, members=members, filter="data")
        else:
            tar.extractall(dest, members=members)
    return dest / CIFAR10_FOLDER
