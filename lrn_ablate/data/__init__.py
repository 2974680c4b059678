"""The data axis of the ablation: every `dataset=` option, its settings and its loader (conf/dataset/).

The check of a dataset returns what it knows of the images before decoding any (`ImageFacts`), so the
model check can refuse a network that does not fit them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lrn_ablate.errors import UserError
from lrn_ablate.settings import Bool, Choice, Group, Int, Text, nullable

if TYPE_CHECKING:
    from lrn_ablate.data.images import ImageData

DATASETS = Group("dataset")
# Done on the device by the training batches (lrn_ablate.data.batches), not by the loaders.
AUGMENT = Choice(("none", "flip", "flip_crop"))


@dataclass(frozen=True)
class ImageFacts:
    image_size: int | None  # square side of every image, None when only decoding tells
    channels: int | None


def check_image_tree(root: Path) -> None:
    """An ImageFolder tree has train/<class>/ folders and a test/ (or val/) folder."""
    if not root.is_dir():
        raise UserError(f"dataset.root={str(root)!r} is not a directory; point it at a folder with train/ and test/.")
    train = root / "train"
    if not train.is_dir():
        raise UserError(f"dataset.root={str(root)!r} has no train/ folder (expected train/<class>/*).")
    if not any(d.is_dir() and not d.name.startswith(".") for d in train.iterdir()):
        raise UserError(f"dataset.root={str(root)!r} has no class folders in train/ (expected train/<class>/*).")
    if not (root / "test").is_dir() and not (root / "val").is_dir():
        raise UserError(f"dataset.root={str(root)!r} has train/ but no test/ or val/ folder.")


def image_folder_rule(dataset: Mapping[str, Any], _: Any, prefix: str) -> ImageFacts:
    root = dataset["root"]
    if root in (None, "???"):
        raise UserError("dataset=imagefolder needs dataset.root=<folder with train/ and test/>.")
    check_image_tree(Path(str(root)).expanduser())
    return ImageFacts(dataset["image_size"], dataset["channels"])


@DATASETS.option("imagefolder", rule=image_folder_rule, root=nullable(Text()), image_size=nullable(Int()),
                 channels=nullable(Choice((1, 3))), augment=AUGMENT)
def image_folder(root: str, image_size: int | None, channels: int | None) -> ImageData:
    from lrn_ablate.data.folder import load_image_folder

    return load_image_folder(Path(root).expanduser(), image_size, channels)


@DATASETS.option("digits", rule=lambda *_: ImageFacts(32, 1), augment=AUGMENT)
def digits() -> ImageData:
    from lrn_ablate.data.digits import load_digits

    return load_digits()


def torchvision_set(name: str, size: int, channels: int) -> None:
    """Declare torchvision's data set `name` (downloaded into root when download is true)."""
    def rule(dataset: Mapping[str, Any], _: Any, prefix: str) -> ImageFacts:
        root = dataset["root"]
        if name == "cifar10" and root is not None and (Path(str(root)).expanduser() / "train").is_dir():
            check_image_tree(Path(str(root)).expanduser())  # CIFAR-10 as an ImageFolder tree of its images
        return ImageFacts(size, channels)

    def load(root: str, download: bool) -> ImageData:
        from lrn_ablate.data import folder, torchvision_sets

        path = Path(root).expanduser()
        if name == "cifar10" and folder.is_image_folder(path):
            return folder.load_image_folder(path)
        return torchvision_sets.load_torchvision(name, path, download)

    DATASETS.declare(name, rule=rule, build=load, root=nullable(Text()), download=Bool(), augment=AUGMENT)


for _name, _size, _channels in (("cifar10", 32, 3), ("cifar100", 32, 3), ("mnist", 28, 1),
                                ("fashion_mnist", 28, 1)):
    torchvision_set(_name, _size, _channels)


def build_dataset(dataset: Mapping[str, Any]) -> ImageData:
    """Decode the data set `dataset` (a `conf/dataset/*.yaml` node) into uint8 tensors."""
    DATASETS.check(dataset)
    return DATASETS.build(dataset)
