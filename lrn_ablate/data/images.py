"""A decoded image classification data set held as uint8 tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ImageData:
    """Train and test splits as uint8 NCHW tensors with int64 labels, plus per-channel statistics."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def channels(self) -> int:
        return self.train_images.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_images.shape[2]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def channel_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-channel mean and std of the training split, in [0, 1] units (float64 sums for accuracy)."""
        pixels = self.train_images.transpose(0, 1).reshape(self.channels, -1).double() / 255.0
        return pixels.mean(dim=1).float(), pixels.std(dim=1).float()
