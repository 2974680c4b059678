"""Decode an ImageFolder tree (root/train/<class>/*, root/test/<class>/*) into uint8 tensors, once."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lrn_ablate.data import check_image_tree
from lrn_ablate.data.cache import cached
from lrn_ablate.data.images import ImageData
from lrn_ablate.errors import UserError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}
GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}
CACHE_VERSION = 1


def is_image_folder(root: Path) -> bool:
    return (root / "train").is_dir()


def _class_dirs(split_dir: Path) -> list[str]:
    return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def _list_split(split_dir: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = split_dir / name
        if not folder.is_dir():
            continue
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        paths += files
        labels += [label] * len(files)
    return paths, labels


def _test_dir(root: Path) -> Path:
    return root / "test" if (root / "test").is_dir() else root / "val"


def read_image(path: Path, image_size: int | None, gray: bool | None) -> np.ndarray:
    """The image at `path` as uint8 HWC: grayscale if `gray`, RGB if not, its own kind if None."""
    try:
        with Image.open(path) as img:
            mode = ("L" if img.mode in GRAYSCALE_MODES else "RGB") if gray is None else ("L" if gray else "RGB")
            img = img.convert(mode)
            if image_size is not None and img.size != (image_size, image_size):
                img = img.resize((image_size, image_size), Image.BILINEAR)
            array = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path} ({type(err).__name__}); remove or replace the file.") from err
    return array[:, :, None] if array.ndim == 2 else array


def _decode(paths: list[Path], image_size: int | None, gray: bool | None) -> torch.Tensor:
    # PIL releases the GIL while decoding, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        arrays = list(pool.map(lambda p: read_image(p, image_size, gray), paths, chunksize=256))
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        odd, shape = next((p, a.shape[:2]) for p, a in zip(paths, arrays, strict=True)
                          if a.shape[:2] != arrays[0].shape[:2])
        raise UserError(f"images differ in size ({paths[0]} is {arrays[0].shape[1]}x{arrays[0].shape[0]}, "
                        f"{odd} is {shape[1]}x{shape[0]}); set dataset.image_size to resize them.")
    if gray is None and len({a.shape[2] for a in arrays}) > 1:
        arrays = [np.repeat(a, 3, axis=2) if a.shape[2] == 1 else a for a in arrays]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _fingerprint(paths: list[Path], image_size: int | None, channels: int | None) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION}|{image_size}|{channels}".encode())
    for path in paths:
        stat = path.stat()
        digest.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class FolderListing:
    """The image files of an ImageFolder tree and their labels (the index of their class in `classes`)."""

    classes: tuple[str, ...]
    train_paths: list[Path]
    train_labels: list[int]
    test_name: str  # test or val
    test_paths: list[Path]
    test_labels: list[int]

    def fingerprint(self, image_size: int | None, channels: int | None) -> str:
        """Changes when a file, the size or the channels change."""
        return _fingerprint(self.train_paths + self.test_paths, image_size, channels)


def list_image_folder(root: Path) -> FolderListing:
    """The files of root/train and root/test (or val), checked to be an image classification tree."""
    check_image_tree(root)
    train_dir = root / "train"
    classes = _class_dirs(train_dir)
    train_paths, train_labels = _list_split(train_dir, classes)
    test_dir = _test_dir(root)
    unknown = sorted(set(_class_dirs(test_dir)) - set(classes))
    if unknown:
        raise UserError(f"{test_dir} has class folders that train/ lacks: {', '.join(unknown)}.")
    test_paths, test_labels = _list_split(test_dir, classes)
    for split, paths in (("train", train_paths), (test_dir.name, test_paths)):
        if not paths:
            raise UserError(f"dataset.root={str(root)!r} has no images in {split}/.")
    return FolderListing(tuple(classes), train_paths, train_labels, test_dir.name, test_paths, test_labels)


def is_colour(path: Path) -> bool:
    """Whether the image at `path` is in colour, from its header alone."""
    try:
        with Image.open(path) as img:
            return img.mode not in GRAYSCALE_MODES
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise UserError(f"cannot read image {path} ({type(err).__name__}); remove or replace the file.") from err


def load_image_folder(root: Path, image_size: int | None = None, channels: int | None = None) -> ImageData:
    """Decode root/train and root/test (or val) once; later calls read the cached tensors."""
    root = root.resolve()  # one cache entry per tree, however the path was written
    listing = list_image_folder(root)
    gray = None if channels is None else channels == 1

    def decode() -> dict[str, torch.Tensor]:
        train = _decode(listing.train_paths, image_size, gray)
        test = _decode(listing.test_paths, image_size, gray)
        if train.shape[1:] != test.shape[1:]:
            raise UserError(f"train images are {tuple(train.shape[1:])} but {listing.test_name} images are "
                            f"{tuple(test.shape[1:])}; set dataset.image_size and dataset.channels.")
        return {"train": train, "test": test}

    tensors = cached("folder-" + listing.fingerprint(image_size, channels), decode)
    return ImageData(tensors["train"], torch.tensor(listing.train_labels), tensors["test"],
                     torch.tensor(listing.test_labels), listing.classes)
