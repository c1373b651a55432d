"""nas.data: dataset loaders (on tiny files written here), the held-out split, proxy tensors."""
from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nas import data
from nas.data import download
from nas.data import (DATASETS, Dataset, holdout_split, load_dataset, proxy_data, read_idx,
                      synthetic_dataset, test_data)

REAL_FMNIST = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------- tiny sources
def write_idx(path: Path, array: np.ndarray, *, magic: bytes | None = None) -> Path:
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = magic if magic is not None else bytes([0, 0, 0x08, array.ndim])
    raw = header + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(raw) if path.suffix == ".gz" else raw)
    return path


def tiny_fashion_mnist(root: Path, *, n_train: int = 20, n_test: int = 10) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def tiny_cifar10(root: Path, *, per_batch: int = 4) -> Path:
    """The official layout: Python-2-style pickles (bytes keys) of uint8 (N, 3072) rows."""
    root.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        rows = (np.arange(per_batch * 3072).reshape(per_batch, 3072) + i) % 256
        batch = {b"batch_label": name.encode(), b"data": rows.astype(np.uint8),
                 b"labels": [(i + j) % 10 for j in range(per_batch)],
                 b"filenames": [f"{j}.png".encode() for j in range(per_batch)]}
        (root / name).write_bytes(pickle.dumps(batch, protocol=2))
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    meta = {b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072}
    (root / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


def tiny_folder(root: Path, *, splits: tuple[str, ...] = ("train", "test"), mode: str = "L",
                sizes: tuple[int, ...] = (8, 8, 12)) -> Path:
    Image = pytest.importorskip("PIL.Image")
    for split in splits:
        for label, cls in enumerate(("cat", "dog")):
            (root / split / cls).mkdir(parents=True)
            for k, size in enumerate(sizes):
                value = 40 + 150 * label + k
                color = value if mode == "L" else (value, 0, 255 - value)
                Image.new(mode, (size, size), color).save(root / split / cls / f"{k}.png")
    return root


# name -> (make the source under tmp_path, (n_train, n_test, channels, size, classes))
SOURCES = {
    "fashion-mnist": (lambda tmp: ("fashion-mnist", tiny_fashion_mnist(tmp)), (20, 10, 1, 28, 10)),
    "cifar10": (lambda tmp: ("cifar10", tiny_cifar10(tmp)), (20, 4, 3, 32, 10)),
    "folder": (lambda tmp: (f"folder:{tiny_folder(tmp)}", None), (6, 6, 1, 8, 2)),
    "synthetic": (lambda tmp: ("synthetic:train=30,test=10,classes=3", None), (30, 10, 1, 16, 3)),
}


@pytest.mark.parametrize("kind", DATASETS.names())
def test_every_registered_dataset_loads(kind: str, tmp_path: Path) -> None:
    assert kind in SOURCES, f"add a tiny source for dataset {kind!r} to SOURCES"
    make, (n_train, n_test, channels, size, n_classes) = SOURCES[kind]
    name, data_dir = make(tmp_path)
    ds = load_dataset(name, data_dir=data_dir)
    assert (len(ds.train_labels), len(ds.test_labels)) == (n_train, n_test)
    assert (ds.in_channels, ds.image_size, ds.num_classes) == (channels, size, n_classes)
    assert ds.train_images.dtype == torch.uint8 and ds.train_labels.dtype == torch.int64
    assert ds.train_images.shape == (n_train, channels, size, size)
    assert load_dataset(name, data_dir=data_dir) is ds  # parsed once per process


# --------------------------------------------------------------------------- fashion-mnist
@pytest.mark.skipif(not REAL_FMNIST.is_dir(),
                    reason=f"{REAL_FMNIST} absent (apt-get install dataset-fashion-mnist)")
def test_real_fashion_mnist() -> None:
    ds = load_dataset("fashion-mnist")
    assert ds.train_images.shape == (60000, 1, 28, 28)
    assert ds.test_images.shape == (10000, 1, 28, 28)
    assert (ds.in_channels, ds.num_classes, ds.image_size) == (1, 10, 28)
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
    # Fashion-MNIST is balanced: 6000 / 1000 images per class.
    assert torch.bincount(ds.train_labels).tolist() == [6000] * 10
    assert torch.bincount(ds.test_labels).tolist() == [1000] * 10
    assert load_dataset("fashion-mnist", data_dir=REAL_FMNIST) is ds  # default dir == explicit


def test_read_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte.gz", "a-idx3-ubyte"):
        got = read_idx(write_idx(tmp_path / name, array))
        assert got.dtype == torch.uint8 and got.tolist() == array.tolist()


def test_read_idx_big_endian_int32(tmp_path: Path) -> None:
    raw = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", 1, -70000)
    (tmp_path / "x").write_bytes(raw)
    assert read_idx(tmp_path / "x").tolist() == [1, -70000]


def test_read_idx_bad_magic_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((1, 2, 2)),
                     magic=b"\x1f\x8b\x08\x03")
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz.*bad IDX magic 1f8b0803"):
        read_idx(path)


def test_read_idx_truncated(tmp_path: Path) -> None:
    path = tmp_path / "t.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00" * 3))
    with pytest.raises(ValueError, match=r"t.gz: IDX header says shape \(10,\).*holds 3"):
        read_idx(path)


def test_fashion_mnist_pixels_and_labels(tmp_path: Path) -> None:
    tiny_fashion_mnist(tmp_path)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path)
    raw = read_idx(tmp_path / "train-images-idx3-ubyte.gz")
    assert torch.equal(ds.train_images[:, 0], raw)
    assert ds.train_labels.tolist() == [i % 10 for i in range(20)]


def test_fashion_mnist_missing_folder_says_how_to_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", data_dir=missing)
    message = str(info.value)
    assert str(missing) in message
    assert "apt-get install dataset-fashion-mnist" in message and "--data-dir DIR" in message


def test_fashion_mnist_missing_file_names_it(tmp_path: Path) -> None:
    tiny_fashion_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist", data_dir=tmp_path)
    assert str(tmp_path / "t10k-labels-idx1-ubyte.gz") in str(info.value)
    assert "apt-get install dataset-fashion-mnist" in str(info.value)


def test_fashion_mnist_bad_magic_is_a_value_error(tmp_path: Path) -> None:
    tiny_fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(20), magic=b"\x00\x00\x07\x01")
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte.gz"):
        load_dataset("fashion-mnist", data_dir=tmp_path)


# --------------------------------------------------------------------------- cifar10
def test_cifar10_layout(tmp_path: Path) -> None:
    tiny_cifar10(tmp_path / "cifar-10-batches-py")
    ds = load_dataset("cifar10", data_dir=tmp_path)  # the parent of cifar-10-batches-py works
    assert ds.classes[:2] == ("airplane", "automobile") and ds.num_classes == 10
    first = pickle.loads((tmp_path / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    row = first[b"data"][0]
    # A row is 1024 red, then 1024 green, then 1024 blue values, each plane row-major.
    assert ds.train_images[0, 0, 0, 1] == row[1]
    assert ds.train_images[0, 0, 1, 0] == row[32]
    assert ds.train_images[0, 1, 0, 0] == row[1024]
    assert ds.train_images[0, 2, 31, 31] == row[3071]
    assert ds.train_labels[:4].tolist() == first[b"labels"]
    assert load_dataset("cifar10", data_dir=tmp_path / "cifar-10-batches-py").train_images.equal(
        ds.train_images)


def test_cifar10_needs_a_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no data folder given.*--data-dir DIR"):
        load_dataset("cifar10")
    tiny_cifar10(tmp_path)
    (tmp_path / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="missing .*test_batch"):
        load_dataset("cifar10", data_dir=tmp_path)


def test_cifar10_refuses_pickles_that_run_code(tmp_path: Path) -> None:
    tiny_cifar10(tmp_path)

    class Evil:
        def __reduce__(self):  # what a tampered batch would carry
            return (print, ("pwned",))

    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(ValueError, match="data_batch_3.*refusing to load .*print"):
        load_dataset("cifar10", data_dir=tmp_path)


# --------------------------------------------------------------------------- folder:PATH
def test_folder_size_mode_and_labels(tmp_path: Path) -> None:
    root = tiny_folder(tmp_path / "pets", mode="RGB", sizes=(8, 12, 12))
    ds = load_dataset(f"folder:{root}")
    assert ds.classes == ("cat", "dog")
    assert (ds.in_channels, ds.image_size) == (3, 12)  # RGB; most common size wins
    assert ds.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    # Uniform images stay uniform through the resize; the color channels survive.
    assert ds.train_images[3, :, 5, 5].tolist() == [190, 0, 65]
    assert ds.name == f"folder:{root}"


def test_folder_without_test_split(tmp_path: Path) -> None:
    root = tiny_folder(tmp_path / "only-train", splits=("train",))
    ds = load_dataset(f"folder:{root}")
    assert len(ds.test_labels) == 0 and ds.test_images.shape == (0, 1, 8, 8)
    with pytest.raises(ValueError, match="no test split.*PATH/test/<class>"):
        test_data(ds, resolution=8)


def test_folder_val_split_is_the_test_split(tmp_path: Path) -> None:
    root = tiny_folder(tmp_path / "imagenet-style", splits=("train", "val"))
    assert len(load_dataset(f"folder:{root}").test_labels) == 6


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing .*train; expected PATH/train/<class>"):
        load_dataset(f"folder:{tmp_path}")
    root = tiny_folder(tmp_path / "x")
    (root / "test" / "bird").mkdir()
    with pytest.raises(ValueError, match=r"class folders \['bird'\] that train/ lacks"):
        load_dataset(f"folder:{root}")


# --------------------------------------------------------------------------- synthetic
def test_synthetic_is_deterministic_in_seed() -> None:
    a, b = synthetic_dataset(seed=3), synthetic_dataset(seed=3)
    assert torch.equal(a.train_images, b.train_images) and torch.equal(a.test_labels, b.test_labels)
    assert not torch.equal(a.train_images, synthetic_dataset(seed=4).train_images)
    assert a.name == "synthetic:seed=3"
    assert torch.bincount(a.train_labels).tolist() == [60] * 10  # balanced


def test_synthetic_options_by_name() -> None:
    ds = load_dataset("synthetic:classes=4,channels=3,size=8,train=40,test=8,seed=1")
    assert ds.train_images.shape == (40, 3, 8, 8) and ds.num_classes == 4
    assert load_dataset(ds.name).train_images.equal(ds.train_images)  # the name remakes it
    with pytest.raises(KeyError, match="unknown option 'colour=3'; known: classes=10"):
        load_dataset("synthetic:colour=3")


def test_synthetic_is_learnable_in_one_epoch(synthetic_ds: Dataset) -> None:
    proxy = proxy_data(synthetic_ds, resolution=16, train_samples=None, val_samples=200, seed=0)
    torch.manual_seed(0)
    layers: list[torch.nn.Module] = []
    for c_in, c_out in ((1, 16), (16, 24), (24, 32)):  # strided convs, then global pooling
        layers += [torch.nn.Conv2d(c_in, c_out, 3, 2, 1), torch.nn.BatchNorm2d(c_out),
                   torch.nn.SiLU()]
    model = torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(32, proxy.num_classes))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for x, y in zip(proxy.train_x.split(32), proxy.train_y.split(32)):  # one epoch
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        accuracy = (model(proxy.val_x).argmax(1) == proxy.val_y).float().mean().item()
    assert accuracy > 0.35  # chance is 0.1; 0.55-0.7 measured over model and data seeds


# --------------------------------------------------------------------------- registry
def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(KeyError) as info:
        load_dataset("imagenet")
    message = info.value.args[0]
    for form in ("fashion-mnist", "cifar10", "folder:PATH", "synthetic"):
        assert form in message


def test_arguments_a_dataset_does_not_take(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="takes no ':' argument.*--data-dir"):
        load_dataset(f"fashion-mnist:{tmp_path}")
    with pytest.raises(ValueError, match="generated in memory.*drop --data-dir"):
        load_dataset("synthetic", data_dir=tmp_path)


def test_dataset_validates_its_tensors() -> None:
    images = torch.zeros(2, 1, 4, 4, dtype=torch.uint8)
    with pytest.raises(TypeError, match="train_images must be a uint8"):
        Dataset("x", images.float(), torch.zeros(2, dtype=torch.int64), images,
                torch.zeros(2, dtype=torch.int64), ("a",))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        Dataset("x", images, torch.tensor([0, 1]), images, torch.tensor([0, 0]), ("a",))
    with pytest.raises(ValueError, match=r"at least 2 classes, but got 1 \(a\); add another"):
        Dataset("x", images, torch.tensor([0, 0]), images, torch.tensor([0, 0]), ("a",))


# --------------------------------------------------------------------------- holdout split
def test_holdout_split_is_disjoint_stratified_and_seeded() -> None:
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    train_idx, val_idx = holdout_split(labels, val_size=10, seed=0)
    assert len(set(train_idx.tolist()) & set(val_idx.tolist())) == 0
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(100))
    assert torch.bincount(labels[val_idx]).tolist() == [5, 3, 2]  # proportional
    again = holdout_split(labels, val_size=10, seed=0)
    assert torch.equal(again[1], val_idx)
    assert not torch.equal(holdout_split(labels, val_size=10, seed=1)[1], val_idx)


def test_holdout_split_rounds_by_largest_remainder() -> None:
    labels = torch.tensor([0] * 5 + [1] * 3 + [2] * 2)
    # quotas 7*[.5, .3, .2] = 3.5, 2.1, 1.4 -> floors 3, 2, 1 and the leftover to class 0
    _, val_idx = holdout_split(labels, val_size=7, seed=0)
    assert torch.bincount(labels[val_idx]).tolist() == [4, 2, 1]


@pytest.mark.parametrize("val_size", [0, 100, -1, 2.5, True])
def test_holdout_split_rejects_bad_sizes(val_size: object) -> None:
    with pytest.raises(ValueError, match=r"`1 <= val_size <= 99` must hold.*--val-samples 10"):
        holdout_split(torch.zeros(100, dtype=torch.int64), val_size=val_size, seed=0)


# --------------------------------------------------------------------------- proxy data
def test_proxy_never_trains_on_validation_images(synthetic_ds: Dataset) -> None:
    proxy = proxy_data(synthetic_ds, resolution=16, train_samples=300, val_samples=100, seed=7)
    train, val = set(proxy.train_index.tolist()), set(proxy.val_index.tolist())
    assert len(train) == 300 and len(val) == 100 and not train & val
    assert torch.equal(proxy.val_index, holdout_split(synthetic_ds.train_labels, val_size=100,
                                                      seed=7)[1])
    assert torch.equal(proxy.train_y, synthetic_ds.train_labels[proxy.train_index])
    assert torch.equal(proxy.val_y, synthetic_ds.train_labels[proxy.val_index])
    assert torch.bincount(proxy.train_y).tolist() == [30] * 10  # stratified subset


def test_proxy_val_split_ignores_train_samples_and_resolution(synthetic_ds: Dataset) -> None:
    a = proxy_data(synthetic_ds, resolution=16, train_samples=100, val_samples=50, seed=0)
    b = proxy_data(synthetic_ds, resolution=8, train_samples=None, val_samples=50, seed=0)
    assert torch.equal(a.val_index, b.val_index)
    assert len(b.train_index) == 550


def test_proxy_tensors_resized_and_normalized(synthetic_ds: Dataset) -> None:
    proxy = proxy_data(synthetic_ds, resolution=24, train_samples=None, val_samples=60, seed=0)
    assert proxy.train_x.shape == (540, 1, 24, 24) and proxy.val_x.shape == (60, 1, 24, 24)
    assert proxy.train_x.dtype == torch.float32
    assert (proxy.in_channels, proxy.num_classes, proxy.resolution) == (1, 10, 24)
    assert abs(proxy.train_x.mean().item()) < 0.02  # upsampling keeps the mean
    same = proxy_data(synthetic_ds, resolution=16, train_samples=None, val_samples=60, seed=0)
    pixels = synthetic_ds.train_images[same.train_index].float() / 255
    expected = (pixels - same.mean[0]) / same.std[0]
    assert torch.allclose(same.train_x, expected, atol=1e-5)  # no resize at the native size
    assert abs(same.train_x.std().item() - 1) < 1e-3


def test_proxy_is_memoized(synthetic_ds: Dataset) -> None:
    kwargs = dict(resolution=16, train_samples=200, val_samples=100, seed=0)
    assert proxy_data(synthetic_ds, **kwargs) is proxy_data(synthetic_ds, **kwargs)
    other = proxy_data(synthetic_ds, **{**kwargs, "seed": 1})
    assert other is not proxy_data(synthetic_ds, **kwargs)


def test_proxy_too_many_train_samples_says_the_max(synthetic_ds: Dataset) -> None:
    with pytest.raises(ValueError,
                       match="train_samples <= 500.*got train_samples=501.*at most 500"):
        proxy_data(synthetic_ds, resolution=16, train_samples=501, val_samples=100, seed=0)
    with pytest.raises(ValueError, match="val_samples"):
        proxy_data(synthetic_ds, resolution=16, train_samples=None, val_samples=600, seed=0)


def test_test_data_uses_the_proxy_normalization(synthetic_ds: Dataset) -> None:
    proxy = proxy_data(synthetic_ds, resolution=16, train_samples=100, val_samples=100, seed=0)
    x, y = test_data(synthetic_ds, resolution=8, normalize_like=proxy)
    assert x.shape == (200, 1, 8, 8) and torch.equal(y, synthetic_ds.test_labels)
    native, _ = test_data(synthetic_ds, resolution=16, normalize_like=proxy)
    expected = (synthetic_ds.test_images.float() / 255 - proxy.mean[0]) / proxy.std[0]
    assert torch.allclose(native, expected, atol=1e-5)
    other = load_dataset("synthetic:channels=3")
    with pytest.raises(ValueError, match="normalize_like was built from 'synthetic'"):
        test_data(other, resolution=16, normalize_like=proxy)


# --------------------------------------------------------------------------- download
def test_download_fashion_mnist_without_a_network(tmp_path: Path, monkeypatch) -> None:
    served = {name: p.read_bytes()
              for name, p in ((p.name, p) for p in tiny_fashion_mnist(tmp_path / "src").iterdir())}
    monkeypatch.setattr(download, "FASHION_MNIST_FILES",
                        {n: hashlib.md5(b).hexdigest() for n, b in served.items()})
    urls: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        urls.append(url)
        if "githubusercontent" in url:  # the first mirror is down
            raise OSError("connection refused")
        return io.BytesIO(served[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(download.urllib.request, "urlopen", fake_urlopen)
    dest = data.download_fashion_mnist(tmp_path / "dl")
    assert len(urls) == 8 and all(u.startswith("http") for u in urls)
    assert load_dataset("fashion-mnist", data_dir=dest).train_images.shape == (20, 1, 28, 28)
    assert sorted(p.name for p in dest.iterdir()) == sorted(served)  # no temp files left


def test_download_rejects_a_wrong_checksum(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(download.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(b"junk"))
    with pytest.raises(OSError, match="MD5 .* != expected c58f30108f718f92721af3b95e74349a"):
        data.download_cifar10(tmp_path)
    assert list(tmp_path.iterdir()) == []
