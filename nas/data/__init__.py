"""Datasets for stage 1: load a labelled image set, hold out validation, build proxy tensors.

MnasNet (Tan et al., 2019, section 6) searches on a proxy: each sampled model is trained briefly
and scored by top-1 accuracy on a validation split *held out from the training set* (50K
ImageNet training images), so the test set stays untouched until the final network is trained.
This package is that data path:

``load_dataset(name)`` (:mod:`.datasets`)
    a :class:`Dataset` of uint8 ``(N, C, H, W)`` images and int64 labels, looked up by name in
    :data:`DATASETS`: ``fashion-mnist`` (IDX files) and ``cifar10`` (python pickle batches) in
    :mod:`.readers`, ``folder:PATH`` (ImageFolder layout) in :mod:`.folder`,
    ``synthetic[:k=v,...]`` (in memory, for tests) in :mod:`.synthetic`. Parsed datasets are
    cached in-process, so repeated trials do not re-read 30 MB.
``holdout_split(labels, val_size=, seed=)`` (:mod:`.splits`)
    stratified, disjoint (train, val) indices into the *training* set.
``proxy_data(ds, resolution=, train_samples=, val_samples=, seed=)`` (:mod:`.proxy`)
    the proxy task: float tensors at the search resolution, normalized with training statistics,
    with the indices they came from (``train_index``/``val_index``) kept for provenance.
``test_data(ds, resolution=, normalize_like=)`` (:mod:`.proxy`)
    the untouched test split, for the final training run only.
``device_splits(ds, proxy, device=)`` (:mod:`.ondevice`)
    the proxy task's splits as uint8 on the training device, resized and normalized there
    batch by batch (the training loop's data path).

The model follows the dataset: ``ArchSpec.with_task(in_channels=ds.in_channels,
num_classes=ds.num_classes)``.

Tensors handed out here are shared between callers (both caches return the same objects);
treat them as read-only.

Downloads are explicit (:func:`download_fashion_mnist`, :func:`download_cifar10`, in
:mod:`.download`); nothing here touches the network on its own.
"""
from __future__ import annotations

# Importing the readers registers their datasets in DATASETS.
from .datasets import DATASETS, Dataset, DatasetLoader, load_dataset
from .download import download_cifar10, download_fashion_mnist
from .folder import FOLDER_MAX_SIZE
from .ondevice import ImageSplit, TensorSplit, device_splits
from .proxy import ProxyData, clear_caches, proxy_data, test_data
from .readers import FASHION_MNIST_DIR, read_idx
from .splits import holdout_split
from .synthetic import synthetic_dataset

__all__ = [
    "DATASETS", "Dataset", "DatasetLoader", "ProxyData",
    "load_dataset", "holdout_split", "proxy_data", "test_data",
    "read_idx", "synthetic_dataset", "clear_caches",
    "download_fashion_mnist", "download_cifar10",
    "FASHION_MNIST_DIR", "FOLDER_MAX_SIZE", "ImageSplit", "TensorSplit", "device_splits",
]
