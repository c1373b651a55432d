"""``folder:PATH``: an ImageFolder tree (``PATH/train/<class>/*.png``) read into a Dataset.

Images are stored square at the most common shorter side (capped at :data:`FOLDER_MAX_SIZE`),
center-cropped without distortion, grayscale when every training image is.
"""
from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from .datasets import DATASETS, Dataset, DatasetLoader, _require_dir

logger = logging.getLogger(__name__)

FOLDER_EXTENSIONS = (".png", ".jpg", ".jpeg")
FOLDER_TEST_SPLITS = ("test", "val")  # first one present is the untouched test split
# Images of a folder dataset are stored square at the most common shorter side, capped here so
# a folder of photos does not need tens of GB of RAM; searches run far below this resolution.
FOLDER_MAX_SIZE = 256

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


def _unreadable(path: Path, e: BaseException) -> ValueError:
    return ValueError(f"folder: {path} is not a readable image ({type(e).__name__}: "
                      f"{str(e).splitlines()[0] if str(e) else 'corrupt'}); remove it or "
                      f"replace it with a good copy")


def _open_image(path: Path):
    """PIL's Image.open, with a file it cannot read named, and what to do about it."""
    from PIL import Image

    try:
        return Image.open(path)
    except (OSError, SyntaxError, ValueError) as e:
        raise _unreadable(path, e) from None


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
        logger.info("folder: %s has no test/ or val/ split; the test split is empty "
                    "(a search holds out validation from train/; nas train needs a test "
                    "split)", root)
    elif len(present) > 1:
        logger.info("folder: using %s as the test split; %s is not used (validation is held "
                    "out from train/)", present[0], present[1])
    test = _folder_split(present[0], classes)[0] if present else []

    # Size and mode come from the training headers only (PIL reads them without decoding).
    sides: Counter[int] = Counter()
    gray = True
    for path, _ in train:
        with _open_image(path) as img:
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
            with _open_image(path) as img:
                if img.mode.startswith(("I", "F")):  # 16-bit or float: to 8 bits would clip
                    raise ValueError(f"folder: {path} is a {img.mode} image; only 8-bit images "
                                     f"are supported, convert it first")
                # Scale the shorter side to `size` and center-crop: no distortion.
                try:
                    fitted = ImageOps.fit(img.convert(mode), (size, size),
                                          method=Image.Resampling.BILINEAR)
                except (OSError, SyntaxError, ValueError) as e:  # a truncated or bad file
                    raise _unreadable(path, e) from None
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
