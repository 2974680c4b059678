"""scikit-learn's bundled handwritten digits, so that quick runs and tests need no network."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from lrn_ablate.data.cache import cached
from lrn_ablate.data.images import ImageData

IMAGE_SIZE = 32
TEST_IMAGES = 360
CACHE_VERSION = 1


def load_digits() -> ImageData:
    """1,797 8x8 images (values 0..16) scaled to uint8, resized to 32x32, split 1,437/360 by class."""
    t = cached(f"digits-v{CACHE_VERSION}", _decode)
    return ImageData(t["train_images"], t["train_labels"], t["test_images"], t["test_labels"],
                     tuple(str(d) for d in range(10)))


def _decode() -> dict[str, torch.Tensor]:
    # scikit-learn takes seconds to import: only the first run pays for it.
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = sklearn_digits()
    pixels = torch.from_numpy(bunch.images).float().unsqueeze(1) * (255.0 / 16.0)
    resized = F.interpolate(pixels, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    images = resized.round().clamp(0, 255).to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = train_test_split(torch.arange(len(labels)).numpy(), test_size=TEST_IMAGES,
                                           stratify=labels.numpy(), random_state=0)
    return {"train_images": images[train_idx], "train_labels": labels[train_idx],
            "test_images": images[test_idx], "test_labels": labels[test_idx]}
