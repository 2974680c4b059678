"""Batches drawn from a device-resident uint8 data set: no DataLoader, no per-sample Python.

Every random choice of an epoch (order, flips, crops) comes from a generator seeded by (seed, epoch,
step), so a run resumed at any step draws exactly the batches the uninterrupted run would have drawn.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F

CROP_PADDING = 4


@dataclass(frozen=True)
class BatchPlan:
    """How a run draws its batches: the trainer's sizes, the dataset's augmentation and patches."""

    batch_size: int
    eval_batch_size: int
    augment: str
    crop_size: int | None
    test_views: int
    seed: int
    device: torch.device
    channels_last: bool


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    return tensor


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


def _gather(images: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The height x width window at (top[i], left[i]) of each image i, gathered with one index."""
    n, c = images.shape[:2]
    rows = (top.view(n, 1) + torch.arange(height, device=images.device)).view(n, 1, height, 1)
    cols = (left.view(n, 1) + torch.arange(width, device=images.device)).view(n, 1, 1, width)
    batch = torch.arange(n, device=images.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=images.device).view(1, c, 1, 1)
    return images[batch, channel, rows, cols]


@dataclass(frozen=True)
class Draws:
    """The random choices of one batch, one row per image: drawn for the whole batch, so that a rank that
    augments only its share of it (`part`) makes the same choices as a single process."""

    flip: torch.Tensor | None = None  # (n,) bool: mirror the image
    shift: torch.Tensor | None = None  # (n, 2) top and left of the flip_crop window in the padded image
    patch: torch.Tensor | None = None  # (n, 2) top and left of cuda-convnet's crop_size patch

    @classmethod
    def draw(cls, n: int, augment: str, crop_size: int | None, image_shape: tuple[int, int],
             gen: torch.Generator) -> Draws:
        device, (h, w) = gen.device, image_shape
        flip = torch.rand(n, generator=gen, device=device) < 0.5 if augment != "none" else None
        shift = (torch.randint(0, 2 * CROP_PADDING + 1, (2, n), generator=gen, device=device).T
                 if augment == "flip_crop" else None)
        patch = None
        if crop_size is not None:
            top = torch.randint(0, h - crop_size + 1, (n,), generator=gen, device=device)
            left = torch.randint(0, w - crop_size + 1, (n,), generator=gen, device=device)
            patch = torch.stack([top, left], dim=1)
        return cls(flip, shift, patch)

    def part(self, shard: Callable[[torch.Tensor], torch.Tensor]) -> Draws:
        """The rows of this rank's `shard` of the batch."""
        return Draws(*(None if rows is None else shard(rows) for rows in (self.flip, self.shift, self.patch)))

    def apply(self, images: torch.Tensor, crop_size: int | None) -> torch.Tensor:
        """Mirror; crop the zero-padded image back to its size (flip_crop); cut the crop_size patch."""
        h, w = images.shape[2:]
        if self.flip is not None:
            images = torch.where(self.flip.view(-1, 1, 1, 1), images.flip(3), images)
        if self.shift is not None:
            images = _gather(F.pad(images, (CROP_PADDING,) * 4), self.shift[:, 0], self.shift[:, 1], h, w)
        if self.patch is not None and crop_size is not None:
            images = _gather(images, self.patch[:, 0], self.patch[:, 1], crop_size, crop_size)
        return images


def eval_views(images: torch.Tensor, size: int | None, views: int) -> torch.Tensor:
    """(views, N, C, size, size): the centre patch (views=1), or cuda-convnet's multiview test (views=10):
    the four corners and the centre, then the same five mirrored. Without a size, the images themselves."""
    if size is None:
        return images.unsqueeze(0)
    h, w = images.shape[2:]
    corners = [((h - size) // 2, (w - size) // 2)]
    if views == 10:
        corners = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), *corners]
    patches = torch.stack([images[:, :, top:top + size, left:left + size] for top, left in corners])
    return torch.cat([patches, patches.flip(4)]) if views == 10 else patches


class TrainBatches:
    """Shuffled, augmented, normalized training batches from uint8 tensors on `device`; under torchrun
    each rank fetches and augments only its `shard` of every batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, augment: str, seed: int, device: torch.device,
                 channels_last: bool = False, crop_size: int | None = None,
                 shard: Callable[[torch.Tensor], torch.Tensor] = _whole) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.size, self.image_shape = labels.shape[0], tuple(images.shape[2:])
        self.normalize = _Normalizer(mean, std, device, channels_last)
        self.batch_size, self.augment, self.seed, self.device = batch_size, augment, seed, device
        self.crop_size, self.shard = crop_size, shard

    def __len__(self) -> int:
        return -(-self.size // self.batch_size)

    def batch_length(self, step: int) -> int:
        """The number of images of step `step` (1-based) over all ranks: batch_size, but for the last."""
        return min(self.batch_size, self.size - (step - 1) * self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The sample order of `epoch` (1-based)."""
        return torch.randperm(self.size, generator=_generator(self.device, self.seed, epoch), device=self.device)

    def fetch(self, indices: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The uint8 images and the labels of each index batch, on the device."""
        for index in indices:
            yield self.images[index], self.labels[index]

    def epoch(self, epoch: int, start_step: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This rank's part of the batches of `epoch` (1-based), from `start_step` on."""
        order = self.order(epoch)
        indices = [order[step * self.batch_size:(step + 1) * self.batch_size] for step in range(start_step, len(self))]
        for step, (images, labels) in enumerate(self.fetch([self.shard(index) for index in indices]),
                                                start=start_step):
            if self.augment != "none" or self.crop_size is not None:
                gen = _generator(self.device, self.seed, epoch, step + 1)
                draws = Draws.draw(len(indices[step - start_step]), self.augment, self.crop_size, self.image_shape,
                                   gen)
                images = draws.part(self.shard).apply(images, self.crop_size)
            yield self.normalize(images), labels


class EvalBatches:
    """Large in-order batches of a split, normalized with the training statistics, each as its views
    (views, N, C, H, W): one (the images, or their centre crop_size patch) or cuda-convnet's ten."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 batch_size: int, device: torch.device, channels_last: bool = False, crop_size: int | None = None,
                 views: int = 1) -> None:
        self.images, self.labels = images.to(device), labels.to(device)
        self.size = labels.shape[0]
        self.normalize = _Normalizer(mean, std, device, channels_last)
        self.batch_size, self.crop_size, self.views = batch_size, crop_size, views

    def __len__(self) -> int:
        """The number of batches, as for TrainBatches."""
        return -(-self.size // self.batch_size)

    def fetch(self, ranges: list[slice]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The uint8 images and the labels of each range of the split, on the device."""
        for part in ranges:
            yield self.images[part], self.labels[part]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        ranges = [slice(start, start + self.batch_size) for start in range(0, self.size, self.batch_size)]
        for images, labels in self.fetch(ranges):
            views = eval_views(images, self.crop_size, self.views)
            yield torch.stack([self.normalize(view) for view in views]), labels
