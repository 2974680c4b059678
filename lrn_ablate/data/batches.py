"""Batches drawn from a device-resident uint8 data set: no DataLoader, no per-sample Python.

Every random choice of an epoch (order, flips, crops) comes from a generator seeded by (seed, epoch,
step), so a run resumed at any step draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

CROP_PADDING = 4


def _generator(device: torch.device, *keys: int) -> torch.Generator:
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + key) % (2**63 - 1)
    return torch.Generator(device=device).manual_seed(seed)


class _Normalizer:
    """uint8 pixels -> (x/255 - mean) / std in one multiply-add, optionally channels_last."""

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, device: torch.device, channels_last: bool) -> None:
        self.scale = (1.0 / (255.0 * std)).view(1, -1, 1, 1).to(device)
        self.shift = (-mean / std).view(1, -1, 1, 1).to(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = torch.addcmul(self.shift, images.float(), self.scale)
        return out.contiguous(memory_format=self.memory_format)


def _flip(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(images.shape[0], generator=gen, device=images.device) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


def _crop(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop of the zero-padded batch, one offset per image, gathered with one index."""
    n, c, h, w = images.shape
    padded = F.pad(images, (CROP_PADDING,) * 4)
    offsets = torch.randint(0, 2 * CROP_PADDING + 1, (2, n), generator=gen, device=images.device)
    rows = (offsets[0].view(n, 1) + torch.arange(h, device=images.device)).view(n, 1, h, 1)
    cols = (offsets[1].view(n, 1) + torch.arange(w, device=images.device)).view(n, 1, 1, w)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return padded[batch, channel, rows, cols]


class TrainBatches:
    """Shuffled, augmented, normalized training batches from uint8 tensors on `device`."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, augment: str, seed: int, device: torch.device,
                 channels_last: bool = False) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.normalize = _Normalizer(mean, std, device, channels_last)
        self.batch_size, self.augment, self.seed, self.device = batch_size, augment, seed, device

    def __len__(self) -> int:
        return -(-self.images.shape[0] // self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of `epoch` (1-based)."""
        return torch.randperm(self.images.shape[0], generator=_generator(self.device, self.seed, epoch),
                              device=self.device)

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of `epoch` (1-based), from `start_step` on."""
        order = self.order(epoch)
        for step in range(start_step, len(self)):
            index = order[step * self.batch_size:(step + 1) * self.batch_size]
            images = self.images[index]
            if self.augment != "none":
                gen = _generator(self.device, self.seed, epoch, step + 1)
                images = _flip(images, gen)
                if self.augment == "flip_crop":
                    images = _crop(images, gen)
            yield self.normalize(images), self.labels[index]


class EvalBatches:
    """Large in-order batches of a split, normalized with the training statistics."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, device: torch.device, channels_last: bool = False) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.normalize = _Normalizer(mean, std, device, channels_last)
        self.batch_size = batch_size

    def __len__(self) -> int:
        """The number of batches, as for TrainBatches."""
        return -(-self.images.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for start in range(0, self.images.shape[0], self.batch_size):
            end = start + self.batch_size
            yield self.normalize(self.images[start:end]), self.labels[start:end]
