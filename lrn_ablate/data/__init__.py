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
from lrn_ablate.settings import Bool, Choice, Default, Group, Int, Text, nullable

if TYPE_CHECKING:
    from lrn_ablate.data.images import ImageData
    from lrn_ablate.data.stream import StreamedFolder

DATASETS = Group("dataset")
# Done on the device by the training and test batches (lrn_ablate.data.batches), not by the loaders:
# augment, and cuda-convnet's patches: random crop_size x crop_size crops for training, the centre one for
# testing, or with test_views=10 the four corners and the centre, each also mirrored, softmax averaged.
AUGMENT = Choice(("none", "flip", "flip_crop"))
PATCHES = dict(crop_size=Default(nullable(Int()), None), test_views=Default(Choice((1, 10)), 1))


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


def patches(stored: ImageFacts, dataset: Mapping[str, Any], prefix: str) -> ImageFacts:
    """What the model sees: the stored images, or crop_size x crop_size patches of them."""
    crop = dataset["crop_size"]
    if crop is None:
        if dataset["test_views"] != 1:
            raise UserError(f"{prefix}test_views={dataset['test_views']} takes views of crops: set "
                            f"{prefix}crop_size too (cuda-convnet: 24 on 32x32 images).")
        return stored
    if stored.image_size is not None and crop > stored.image_size:
        raise UserError(f"{prefix}crop_size={crop} is larger than the {stored.image_size}x{stored.image_size} images.")
    if dataset["augment"] == "flip_crop":
        raise UserError(f"{prefix}augment=flip_crop pads and crops back to the full size; with {prefix}crop_size "
                        "use augment=flip (random crops and mirror images, as cuda-convnet) or none.")
    return ImageFacts(crop, stored.channels)


def image_folder_rule(dataset: Mapping[str, Any], _: Any, prefix: str) -> ImageFacts:
    root = dataset["root"]
    if root in (None, "???"):
        raise UserError("dataset=imagefolder needs dataset.root=<folder with train/ and test/>.")
    check_image_tree(Path(str(root)).expanduser())
    if dataset["decode"] == "device" and dataset["in_memory"]:
        raise UserError(f"{prefix}decode=device decodes the batches of a streamed tree; set {prefix}in_memory=false "
                        "too.")
    return patches(ImageFacts(dataset["image_size"], dataset["channels"]), dataset, prefix)


# in_memory=false streams the files with `workers` DataLoader workers (lrn_ablate.data.stream), which
# decode them, or with decode=device only read them for the training device to decode (lrn_ablate.data.jpeg).
@DATASETS.option("imagefolder", rule=image_folder_rule, root=nullable(Text()), image_size=nullable(Int()),
                 channels=nullable(Choice((1, 3))), augment=AUGMENT, in_memory=Default(Bool(), True),
                 workers=Default(Int(at_least=0), 2), decode=Default(Choice(("workers", "device")), "workers"),
                 **PATCHES)
def image_folder(root: str, image_size: int | None, channels: int | None, in_memory: bool, workers: int,
                 decode: str) -> ImageData | StreamedFolder:
    from lrn_ablate.data.folder import load_image_folder
    from lrn_ablate.data.stream import open_image_folder

    path = Path(root).expanduser().resolve()
    if in_memory:
        return load_image_folder(path, image_size, channels)
    return open_image_folder(path, image_size, channels, workers, on_device=decode == "device")


@DATASETS.option("digits", rule=lambda dataset, _, prefix: patches(ImageFacts(32, 1), dataset, prefix),
                 augment=AUGMENT, **PATCHES)
def digits() -> ImageData:
    from lrn_ablate.data.digits import load_digits

    return load_digits()


def torchvision_set(name: str, size: int, channels: int) -> None:
    """Declare torchvision's data set `name` (downloaded into root when download is true)."""
    def rule(dataset: Mapping[str, Any], _: Any, prefix: str) -> ImageFacts:
        root = dataset["root"]
        if name == "cifar10" and root is not None and (Path(str(root)).expanduser() / "train").is_dir():
            check_image_tree(Path(str(root)).expanduser())  # CIFAR-10 as an ImageFolder tree of its images
        return patches(ImageFacts(size, channels), dataset, prefix)

    def load(root: str, download: bool) -> ImageData:
        from lrn_ablate.data import folder, torchvision_sets

        path = Path(root).expanduser()
        if name == "cifar10" and folder.is_image_folder(path):
            return folder.load_image_folder(path)
        return torchvision_sets.load_torchvision(name, path, download)

    DATASETS.declare(name, rule=rule, build=load, root=nullable(Text()), download=Bool(), augment=AUGMENT,
                     **PATCHES)


for _name, _size, _channels in (("cifar10", 32, 3), ("cifar100", 32, 3), ("mnist", 28, 1),
                                ("fashion_mnist", 28, 1)):
    torchvision_set(_name, _size, _channels)


def build_dataset(dataset: Mapping[str, Any]) -> ImageData | StreamedFolder:
    """Decode the data set `dataset` (a `conf/dataset/*.yaml` node) into uint8 tensors, or with
    dataset.in_memory=false open it for streaming."""
    DATASETS.check(dataset)
    return DATASETS.build(dataset)
