"""A decoded image classification data set held as uint8 tensors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lrn_ablate.data.batches import BatchPlan, EvalBatches, TrainBatches


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

    def batches(self, plan: BatchPlan, shard: Callable[[torch.Tensor], torch.Tensor]) -> tuple[TrainBatches,
                                                                                                EvalBatches]:
        """This rank's `shard` of every training batch, and of the test set in evaluation batches."""
        mean, std = self.channel_stats()
        return (TrainBatches(self.train_images, self.train_labels, mean, std, plan.batch_size, plan.augment,
                             plan.seed, plan.device, plan.channels_last, plan.crop_size, shard),
                EvalBatches(shard(self.test_images), shard(self.test_labels), mean, std, plan.eval_batch_size,
                            plan.device, plan.channels_last, plan.crop_size, plan.test_views))
