"""Explicit downloads of the published dataset files, for users with a network.

Nothing else in :mod:`nas.data` touches the network; these fetch into a folder that
``--data-dir`` then names. Each file is checked against its published MD5 and written
atomically (a partial download never takes a file's name).
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

from .readers import CIFAR10_FOLDER, FASHION_MNIST_FILES

logger = logging.getLogger(__name__)

FASHION_MNIST_URLS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
)
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


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
