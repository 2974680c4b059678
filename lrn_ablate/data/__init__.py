"""The data axis of the ablation: one factory for every `dataset=` option."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrn_ablate.data.batches import EvalBatches, TrainBatches
from lrn_ablate.data.images import ImageData

__all__ = ["EvalBatches", "ImageData", "TrainBatches", "build_dataset"]


def build_dataset(dataset: Mapping[str, Any]) -> ImageData:
    """Decode the data set `dataset` (a `conf/dataset/*.yaml` node) into uint8 tensors."""
    from lrn_ablate.data import digits, folder, torchvision_sets

    name = dataset["name"]
    if name == "digits":
        return digits.load_digits()
    root = Path(str(dataset["root"])).expanduser()
    if name == "imagefolder" or (name == "cifar10" and folder.is_image_folder(root)):
        return folder.load_image_folder(root, dataset.get("image_size"), dataset.get("channels"))
    if name in torchvision_sets.TITLES:
        return torchvision_sets.load_torchvision(name, root, dataset["download"])
    raise ValueError(f"unknown dataset {name!r}")
