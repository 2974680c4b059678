"""Epoch cost of each normalization on the article's LeNet (CIFAR-10, batch 64), all timed in one process.

    python scripts/bench_norms.py --root ../shared/data/cifar10-jpg --out results/lenet_norms

The study runs of results/lenet_norms ran in different sessions, on different machines and beside other
work, so their seconds per epoch cannot rank the norms' cost. Here every norm's training step (lrn-ablate's
loop: device-resident batches, C-kernel pooling and LRN, fused SGD) takes turns for --rounds timed windows
of --steps steps after warm-up, so drift and load hit all alike; images/s is the median over windows.
Each norm is built from its own config file (conf/norm/<name>.yaml) by the norm group's declaration, as
`lrn-ablate train norm=<name>` builds it. Results go to OUT/cost_<machine>.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import torch
from bench_train import CONF, alternate, cifar10, project_trainer
from entry import run
from machine import REPO, machine_name, write_report
from omegaconf import OmegaConf
from torch import nn

from lrn_ablate.norms import NORMS
from lrn_ablate.training.runtime import keep_freed_memory, set_threads
from lrn_ablate.training.share import Share

NORM_NAMES = ("none", "lrn", "bn", "ln", "in", "gn")


def norm_factory(name: str) -> Callable[[int], nn.Module]:
    node = OmegaConf.to_container(OmegaConf.load(CONF / "norm" / f"{name}.yaml"))
    NORMS.check(node, facts=[6, 16])  # LeNet's norm slots
    return lambda channels: NORMS.build(node, channels=channels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="CIFAR-10 as an ImageFolder tree (train/, test/)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (the study's runs had 1 each)")
    parser.add_argument("--steps", type=int, default=100, help="steps per timed window")
    parser.add_argument("--rounds", type=int, default=7, help="timed windows per norm")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--out", type=Path, default=REPO / "results" / "lenet_norms")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    set_threads(args.threads, Share())
    keep_freed_memory()  # as `lrn-ablate train` does
    data = cifar10(args.root)
    trainers = {name: project_trainer(data, norm_factory(name), args.batch_size, device, seed=0)
                for name in NORM_NAMES}
    rates = alternate(trainers, args.steps, args.rounds, args.warmup)
    lines = [f"# Epoch cost of each norm, LeNet on CIFAR-10, batch {args.batch_size}", "",
             f"- machine: {machine_name(device)} ({device}); torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; {date.today()}",
             f"- command: `python {' '.join(sys.argv)}`",
             f"- median images/s over {args.rounds} alternating windows of {args.steps} steps after "
             f"{args.warmup} warm-up steps; each norm as its conf/norm/<name>.yaml builds it", "",
             "| norm | images/s | training seconds per epoch | epoch time / norm=none |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {rate:,.0f} | {len(data.train_labels) / rate:.2f} | {rates['none'] / rate:.2f}x |"
              for name, rate in rates.items()]
    write_report(lines, args.out, "cost", device)


if __name__ == "__main__":
    run(main)
