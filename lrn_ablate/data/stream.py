"""An ImageFolder tree streamed from disk (dataset.in_memory=false), for data sets larger than memory.

DataLoader workers decode and resize each batch's images while the model trains on the batch before.
What follows decoding (the order of an epoch, flips, crops, cuda-convnet's patches, normalization, the test
views) is the in-memory path's own code in lrn_ablate.data.batches, run on the device, so a streamed run
draws the batches an in-memory run draws and resumes at any step the same way.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lrn_ablate.data.batches import BatchPlan, EvalBatches, TrainBatches
from lrn_ablate.data.cache import cached
from lrn_ablate.data.folder import is_colour, list_image_folder, read_image
from lrn_ablate.data.jpeg import decode_batch, read_jpeg
from lrn_ablate.errors import UserError

# The per-channel statistics come from this many training images, evenly spaced (all of a smaller set,
# which makes them the in-memory path's statistics).
STATS_SAMPLE = 10_000
STATS_VERSION = 1  # of the cached statistics
# How DataLoader workers start: fork where it is the platform's default and safe (Linux), else spawn.
WORKER_START = "fork" if sys.platform == "linux" else "spawn"


class FolderFiles(Dataset):
    """Image files of one split, each decoded on demand into a uint8 CHW tensor of the agreed shape, or with
    `encoded` read as the bytes of a JPEG file that the training device decodes (lrn_ablate.data.jpeg); a
    file that cannot be used gives the sentence that says why in place of its image."""

    def __init__(self, paths: list[Path], labels: torch.Tensor, image_size: int | None, gray: bool) -> None:
        self.paths, self.labels, self.image_size, self.gray = paths, labels, image_size, gray
        # (height, width) every image must have, and the first image that had it (see `agree_on_shape`)
        self.shape: tuple[int, int] = (0, 0)
        self.shaped_like = Path()
        self.encoded = False

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: torch.Tensor) -> FolderFiles:
        part = FolderFiles([self.paths[i] for i in indices.tolist()], self.labels[indices], self.image_size,
                           self.gray)
        part.shape, part.shaped_like, part.encoded = self.shape, self.shaped_like, self.encoded
        return part

    def agree_on_shape(self) -> None:
        """Every image must be as large as the first training image, as in memory, where they are stacked."""
        self.shaped_like = self.paths[0]
        self.shape = read_image(self.shaped_like, self.image_size, self.gray).shape[:2]

    def misfit(self, index: int, height: int, width: int) -> str | None:
        """Why image `index`, decoded to height x width, cannot join the others, if it cannot."""
        if (height, width) == self.shape:
            return None
        return (f"images differ in size ({self.shaped_like} is {self.shape[1]}x{self.shape[0]}, "
                f"{self.paths[index]} is {width}x{height}); set dataset.image_size to resize them.")

    def __getitem__(self, index: int) -> tuple[torch.Tensor | bytes | str, int]:
        label = int(self.labels[index])
        if self.encoded:
            return read_jpeg(self.paths[index]), label
        try:
            array = read_image(self.paths[index], self.image_size, self.gray)
        except UserError as err:
            return str(err), label
        problem = self.misfit(index, *array.shape[:2])
        if problem:
            return problem, label
        return torch.from_numpy(array.transpose(2, 0, 1).copy()), label  # a copy PIL does not own

    def decode(self, indices: list[int], encoded: list[bytes], device: torch.device) -> torch.Tensor:
        """The encoded images `indices`, decoded and stacked on `device`."""
        images = decode_batch(encoded, [self.paths[i] for i in indices], self.gray, self.image_size, device)
        for index, image in zip(indices, images, strict=True):
            problem = self.misfit(index, *image.shape[1:])
            if problem:
                raise UserError(problem)
        return torch.stack(images)


def _collate(samples: list[tuple[torch.Tensor | bytes | str, int]]) -> tuple[torch.Tensor | list[bytes],
                                                                       torch.Tensor] | str:
    """The batch's images stacked (or, still encoded, listed) and its labels; or the first file's problem."""
    for image, _ in samples:
        if isinstance(image, str):
            return image  # raised in the main process: a worker's exception would arrive as a traceback
    images = [image for image, _ in samples]
    labels = torch.tensor([label for _, label in samples])
    return (images if isinstance(images[0], bytes) else torch.stack(images)), labels


# Ctrl-C, SIGTERM (torchrun, SLURM, which signal the whole process group) and submitit's USR2 are for the
# training process, which stops at the end of its step and shuts its workers down.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2)


@contextmanager
def _stop_signals_held() -> Iterator[None]:
    """Hold the stop signals back while the workers start. A worker inherits the mask, so a signal that
    reaches it before `_ignore_stop_signals` runs waits and is then dropped: PyTorch's worker handler,
    installed first, re-raises a SIGTERM that its parent did not send, which would kill the worker and, with
    it, the run. The training process receives what arrived meanwhile when the mask is restored."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _ignore_stop_signals(_: int) -> None:
    """In each worker: ignore the stop signals (pending ones are dropped), then stop holding them back."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def stream(files: FolderFiles, batches: list[list[int]], workers: int,
           device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The uint8 images and labels of each batch of indices, read (and unless `files.encoded`, decoded)
    `workers` batches ahead, on `device`."""
    if not batches:
        return
    # Its own generator: a DataLoader seeds its workers from the global one otherwise, which would change
    # the weights' initialization and dropout from what the in-memory path draws.
    # A start method of its own: inside a joblib job the default context is loky's, which cannot start
    # DataLoader workers.
    loader = DataLoader(files, batch_sampler=batches, num_workers=workers, collate_fn=_collate,
                        pin_memory=device.type == "cuda", prefetch_factor=4 if workers else None,
                        generator=torch.Generator().manual_seed(0), worker_init_fn=_ignore_stop_signals,
                        multiprocessing_context=WORKER_START if workers else None)
    with _stop_signals_held():
        batches_ahead = iter(loader)  # starts the workers
    for indices, batch in zip(batches, batches_ahead, strict=True):
        if isinstance(batch, str):
            raise UserError(batch)
        images, labels = batch
        if isinstance(images, list):
            images = files.decode(indices, images, device)
        yield images.to(device, non_blocking=True), labels.to(device, non_blocking=True)


class StreamTrainBatches(TrainBatches):
    """TrainBatches whose images are decoded from files as the batches are drawn."""

    def __init__(self, files: FolderFiles, mean: torch.Tensor, std: torch.Tensor, plan: BatchPlan,
                 workers: int, shard: Callable[[torch.Tensor], torch.Tensor]) -> None:
        # No images in memory: fetch() below decodes them (under torchrun, only this rank's share).
        super().__init__(torch.empty(0, dtype=torch.uint8), files.labels, mean, std, plan.batch_size,
                         plan.augment, plan.seed, plan.device, plan.channels_last, plan.crop_size, shard)
        self.files, self.workers, self.image_shape = files, workers, files.shape

    def fetch(self, indices: list[torch.Tensor]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return stream(self.files, [index.tolist() for index in indices], self.workers, self.device)


class StreamEvalBatches(EvalBatches):
    """EvalBatches whose images are decoded from files in order."""

    def __init__(self, files: FolderFiles, mean: torch.Tensor, std: torch.Tensor, plan: BatchPlan,
                 workers: int) -> None:
        super().__init__(torch.empty(0, dtype=torch.uint8), files.labels, mean, std, plan.eval_batch_size,
                         plan.device, plan.channels_last, plan.crop_size, plan.test_views)
        self.files, self.workers, self.device = files, workers, plan.device

    def fetch(self, ranges: list[slice]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return stream(self.files, [list(range(self.size)[part]) for part in ranges], self.workers, self.device)


@dataclass
class StreamedFolder:
    """An ImageFolder tree read from disk batch by batch; its shape and statistics come from a sample."""

    train: FolderFiles
    test: FolderFiles
    classes: tuple[str, ...]
    channels: int
    image_size: int
    workers: int
    stats: tuple[torch.Tensor, torch.Tensor]

    @property
    def train_labels(self) -> torch.Tensor:
        return self.train.labels

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def batches(self, plan: BatchPlan, shard: Callable[[torch.Tensor], torch.Tensor]) -> tuple[TrainBatches,
                                                                                                EvalBatches]:
        """This rank's `shard` of every training batch, and of the test set in evaluation batches."""
        mean, std = self.stats
        test = self.test.subset(shard(torch.arange(len(self.test))))
        return (StreamTrainBatches(self.train, mean, std, plan, self.workers, shard),
                StreamEvalBatches(test, mean, std, plan, self.workers))


def _sample_stats(files: FolderFiles, channels: int, workers: int) -> dict[str, torch.Tensor]:
    """Per-channel mean and (unbiased) std in [0, 1] units of the sampled images, from float64 sums."""
    picks = _sample(len(files))
    sums, squares, pixels = torch.zeros(channels, dtype=torch.float64), torch.zeros(channels, dtype=torch.float64), 0
    for images, _ in stream(files, [picks[i:i + 256] for i in range(0, len(picks), 256)], workers,
                            torch.device("cpu")):
        values = images.transpose(0, 1).reshape(channels, -1).double() / 255.0
        sums += values.sum(1)
        squares += (values**2).sum(1)
        pixels += values.shape[1]
    mean = sums / pixels
    std = ((squares - pixels * mean**2) / (pixels - 1)).clamp(min=0).sqrt()
    return {"mean": mean.float(), "std": std.float()}


def _sample(count: int) -> list[int]:
    """Up to STATS_SAMPLE indices of `count` images, evenly spaced."""
    return np.unique(np.linspace(0, count - 1, min(count, STATS_SAMPLE)).round().astype(int)).tolist()


def _channels_of(files: FolderFiles) -> int:
    """3 if any sampled image is in colour, else 1 (the in-memory path looks at every image; with
    dataset.channels set, every image is converted to it)."""
    return 3 if any(is_colour(files.paths[index]) for index in _sample(len(files))) else 1


def open_image_folder(root: Path, image_size: int | None, channels: int | None, workers: int,
                      on_device: bool = False) -> StreamedFolder:
    """List root/train and root/test (or val) and measure a sample of the training images; decode nothing
    else until the batches are drawn, in the workers or, `on_device`, on the training device. (The
    statistics are the workers' decoding's either way, which on the CPU is the device's too.)"""
    listing = list_image_folder(root)
    train = FolderFiles(listing.train_paths, torch.tensor(listing.train_labels), image_size, False)
    if channels is None:
        channels = _channels_of(train)
    train.gray = channels == 1
    train.agree_on_shape()
    key = f"stream{STATS_VERSION}-{listing.fingerprint(image_size, channels)}"
    stats = cached(key, lambda: _sample_stats(train, channels, workers))
    test = FolderFiles(listing.test_paths, torch.tensor(listing.test_labels), image_size, channels == 1)
    test.shape, test.shaped_like = train.shape, train.shaped_like
    train.encoded = test.encoded = on_device
    return StreamedFolder(train, test, listing.classes, channels, train.shape[0], workers,
                          (stats["mean"], stats["std"]))
