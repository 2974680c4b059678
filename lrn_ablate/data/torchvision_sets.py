"""torchvision's CIFAR and MNIST-family data sets as uint8 tensors (their files already hold raw pixels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lrn_ablate.data.images import ImageData
from lrn_ablate.errors import UserError

TITLES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


def _dataset_class(name: str) -> type:
    from torchvision import datasets

    return {"cifar10": datasets.CIFAR10, "cifar100": datasets.CIFAR100, "mnist": datasets.MNIST,
            "fashion_mnist": datasets.FashionMNIST}[name]


def _as_nchw(data: np.ndarray | torch.Tensor) -> torch.Tensor:
    images = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    return images.unsqueeze(1) if images.ndim == 3 else images.permute(0, 3, 1, 2).contiguous()


def load_torchvision(name: str, root: Path, download: bool) -> ImageData:
    cls = _dataset_class(name)
    try:
        train = cls(str(root), train=True, download=download)
        test = cls(str(root), train=False, download=download)
    except (RuntimeError, OSError) as err:
        how = "downloading it failed" if download else "dataset.download is false"
        raise UserError(
            f"{TITLES[name]} is not in {root} and {how} ({str(err).splitlines()[0]}); "
            f"download it there on a machine with network access, or pass dataset.root=<folder>"
            f"{' (an ImageFolder tree with train/ and test/ works too)' if name == 'cifar10' else ''}."
        ) from err
    return ImageData(_as_nchw(train.data), torch.as_tensor(train.targets), _as_nchw(test.data),
                     torch.as_tensor(test.targets), tuple(train.classes))
