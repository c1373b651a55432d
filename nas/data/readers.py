"""Readers for the published dataset files: Fashion-MNIST's IDX files and CIFAR-10's pickles.

Both register themselves in :data:`nas.data.DATASETS`; nothing here touches the network (the
downloads are in :mod:`nas.data.download`).
"""
from __future__ import annotations

import gzip
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .datasets import DATASETS, Dataset, DatasetLoader, _no_arg, _require_dir

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
FASHION_MNIST_FIX = ("apt-get install dataset-fashion-mnist, or pass --data-dir DIR holding the "
                     "four IDX .gz files (nas.data.download_fashion_mnist(DIR) fetches them)")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
# Official names and MD5s of the published .gz files (Zalando's README; torchvision checks the
# same). Debian re-compresses them, so the MD5 is checked after a download only
# (nas.data.download).
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR10_FIX = ("pass --data-dir DIR holding data_batch_1..5, test_batch and batches.meta (the "
               "extracted cifar-10-python.tar.gz; nas.data.download_cifar10(DIR) fetches it)")


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
