"""Throughput of a streamed ImageFolder tree (dataset.in_memory=false) against the same tree decoded into
memory, in one process: the data path alone, and LeNet training fed by it; decoded by the DataLoader
workers (PIL) or, with dataset.decode=device, by the training device (torchvision.io: nvJPEG on a GPU, the
main process on the CPU).

    python scripts/bench_stream.py --root ../shared/data/cifar10-jpg

Each timed window is the first --steps batches of a fresh epoch (flip-and-crop augmentation, batch
--batch-size), so a streamed window includes starting its DataLoader workers, as every epoch does; the
configurations take turns for --rounds windows and images/s is the median. Results go to
results/bench/stream_<machine>.md.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
from bench_train import fused_lrn, lenet, project_optimizer
from entry import run
from machine import BENCH_DIR, machine_name, write_report

from lrn_ablate.data.batches import BatchPlan, TrainBatches
from lrn_ablate.data.folder import load_image_folder
from lrn_ablate.data.stream import open_image_folder
from lrn_ablate.training.runtime import keep_freed_memory
from lrn_ablate.training.steps import make_train_step

Consume = Callable[[torch.Tensor, torch.Tensor], object]


def window(batches: TrainBatches, consume: Consume, epoch: int, steps: int, device: torch.device) -> float:
    """images/s over the first `steps` batches of `epoch`, each handed to `consume`."""
    began, seen = time.perf_counter(), 0
    for images, labels in itertools.islice(batches.epoch(epoch), steps):
        consume(images, labels)
        seen += labels.shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - began)


def take_turns(sources: dict[str, TrainBatches], consumers: dict[str, Consume], steps: int, rounds: int,
               device: torch.device) -> dict[str, float]:
    """Median images/s of each source over `rounds` windows, after one warm-up window each."""
    rates: dict[str, list[float]] = {name: [] for name in sources}
    for epoch in range(1, rounds + 2):
        for name, batches in sources.items():
            rate = window(batches, consumers[name], epoch, steps, device)
            if epoch > 1:
                rates[name].append(rate)
    return {name: statistics.median(values) for name, values in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="an ImageFolder tree (train/, test/)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="batches per timed window")
    parser.add_argument("--rounds", type=int, default=5, help="timed windows per configuration")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers to time")
    parser.add_argument("--decode", nargs="+", default=["workers", "device"], choices=["workers", "device"],
                        help="who decodes the streamed JPEG files (dataset.decode)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    keep_freed_memory()
    root = args.root.expanduser().resolve()
    plan = BatchPlan(args.batch_size, 1000, "flip_crop", None, 1, args.seed, device, False)
    in_memory = load_image_folder(root)
    sources = {"in memory (decoded once, cached)": in_memory.batches(plan, lambda tensor: tensor)[0]}
    for decode, workers in itertools.product(args.decode, args.workers):
        streamed = open_image_folder(root, None, None, workers, on_device=decode == "device")
        name = f"streamed, workers={workers}" + (f", decoded on the {device.type}" if decode == "device" else "")
        sources[name] = streamed.batches(plan, lambda tensor: tensor)[0]

    def training() -> Consume:
        model = lenet(in_memory, fused_lrn(2), device, args.seed)
        return make_train_step(model, project_optimizer(model), torch.amp.GradScaler(enabled=False), device, "fp32")

    data_only = take_turns(sources, {name: lambda images, labels: None for name in sources}, args.steps,
                           args.rounds, device)
    trained = take_turns(sources, {name: training() for name in sources}, args.steps, args.rounds, device)
    baseline = "in memory (decoded once, cached)"
    lines = [f"# Streamed ImageFolder against in-memory, {len(in_memory.train_labels):,} training images of "
             f"{in_memory.image_size}x{in_memory.image_size}", "",
             f"- machine: {machine_name(device)} ({device}); torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; {date.today()}",
             f"- tree: `{args.root}`",
             f"- command: `python {' '.join(sys.argv)}`",
             f"- median images/s over {args.rounds} alternating windows, each the first {args.steps} batches of "
             f"{args.batch_size} of a fresh epoch (workers started anew), flip-and-crop augmentation, after one "
             "warm-up window each; training: LeNet, norm=lrn (size 2), SGD", "",
             "| data source | batches alone, images/s | LeNet training, images/s | training / in memory |",
             "|---|---:|---:|---:|"]
    lines += [f"| {name} | {data_only[name]:,.0f} | {trained[name]:,.0f} | {trained[name] / trained[baseline]:.2f}x |"
              for name in sources]
    write_report(lines, args.out, "stream", device)


if __name__ == "__main__":
    run(main)
