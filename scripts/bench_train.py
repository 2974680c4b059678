"""Training throughput of lrn-ablate's loop against a plain PyTorch reference loop, in one process.

    python scripts/bench_train.py --root ../shared/data/cifar10-jpg            # speed (CPU or GPU)
    python scripts/bench_train.py --root ../shared/data/cifar10-jpg --accuracy-epochs 5

Speed: the project's step (device-resident uint8 data; LRN and 2x2 max pooling in C on the CPU; fused SGD)
and the reference (a torchvision-style Dataset with ToTensor/Normalize per image, a DataLoader, the same
LeNet built from stock torch.nn.LocalResponseNorm and nn.MaxPool2d, torch.optim.SGD) take turns for
--rounds timed windows of --steps steps after warm-up; images/s is the median over windows. The same
alternation times the project's loop with norm=lrn against norm=none, and with stock LRN, for the LRN
epoch-cost ratio. Accuracy: for each of --accuracy-seeds seeds both loops train --accuracy-epochs epochs
from the same initial weights on the same batches (the reference's DataLoader samples in lrn-ablate's
order), then evaluate on the test split. Results go to results/bench/train_<machine>.md.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import torch
from entry import run
from machine import BENCH_DIR, machine_name, write_report
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler

from lrn_ablate.data import build_dataset
from lrn_ablate.data.batches import EvalBatches, TrainBatches
from lrn_ablate.data.images import ImageData
from lrn_ablate.models.lenet import LeNet
from lrn_ablate.norms.lrn import LocalResponseNorm
from lrn_ablate.optim import build_optimizer
from lrn_ablate.training.runtime import keep_freed_memory
from lrn_ablate.training.steps import evaluate, make_train_step

CONF = Path(__file__).resolve().parents[1] / "conf"
Batches = Iterator[tuple[torch.Tensor, torch.Tensor]]


class ReferenceCifar(Dataset):
    """What a torchvision CIFAR10 dataset does per item: PIL image, ToTensor, Normalize."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> None:
        from torchvision import transforms

        self.images = images.permute(0, 2, 3, 1).numpy()
        self.labels = labels.tolist()
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean.tolist(), std.tolist())])

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index].squeeze())), self.labels[index]


def cifar10(root: str) -> ImageData:
    """CIFAR-10 from `root` with the settings of conf/dataset/cifar10.yaml, as `lrn-ablate train` loads it."""
    node = OmegaConf.to_container(OmegaConf.load(CONF / "dataset" / "cifar10.yaml"))
    return build_dataset({**node, "root": root, "download": False})


def stock_lrn(size: int) -> Callable[[int], nn.Module]:
    return lambda channels: nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0)


def fused_lrn(size: int) -> Callable[[int], nn.Module]:
    return lambda channels: LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0, convention="pytorch")


# conf/optim/sgd.yaml: lr 0.01, momentum 0.9, weight decay 5e-4, constant rate (the article study's).
SGD = OmegaConf.to_container(OmegaConf.load(CONF / "optim" / "sgd.yaml"))


def lenet(data: ImageData, make_norm: Callable[[int], nn.Module], device: torch.device, seed: int,
          stock: bool = False) -> nn.Module:
    """LeNet with the seed's initial weights; `stock` swaps in torch's nn.MaxPool2d for lrn-ablate's kernel."""
    torch.manual_seed(seed)
    model = LeNet(data.channels, data.image_size, data.num_classes, make_norm)
    if stock:
        model.pool = nn.MaxPool2d(2)
    return model.to(device)


def project_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return build_optimizer(SGD, model.named_parameters(), epochs=1)[0]  # as `lrn-ablate train optim=sgd` builds it


def reference_optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=SGD["lr"], momentum=SGD["momentum"],
                           weight_decay=SGD["weight_decay"])


class Trainer:
    """A model, its optimizer and an endless stream of batches: `run(n)` trains n steps."""

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer, batches: Batches,
                 device: torch.device) -> None:
        self.model, self.batches, self.device = model, batches, device
        self.step = make_train_step(model, optimizer, torch.amp.GradScaler(enabled=False), device, "fp32")

    def run(self, steps: int) -> int:
        seen = 0
        for images, labels in itertools.islice(self.batches, steps):
            self.step(images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True))
            seen += labels.shape[0]
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        return seen


def train_batches(data: ImageData, batch_size: int, device: torch.device, seed: int) -> TrainBatches:
    mean, std = data.channel_stats()
    return TrainBatches(data.train_images, data.train_labels, mean, std, batch_size, "none", seed, device)


def project_batches(data: ImageData, batch_size: int, device: torch.device, seed: int) -> Batches:
    loader = train_batches(data, batch_size, device, seed)
    return itertools.chain.from_iterable(loader.epoch(epoch) for epoch in itertools.count(1))


class ProjectOrder(Sampler[int]):
    """lrn-ablate's sample order, epoch after epoch: with the same seed both loops see the same batches."""

    def __init__(self, batches: TrainBatches) -> None:
        self.batches, self.epoch = batches, 0

    def __len__(self) -> int:
        return self.batches.images.shape[0]

    def __iter__(self) -> Iterator[int]:
        self.epoch += 1
        return iter(self.batches.order(self.epoch).tolist())


def reference_loader(data: ImageData, batch_size: int, workers: int, seed: int) -> DataLoader:
    mean, std = data.channel_stats()
    order = ProjectOrder(train_batches(data, batch_size, torch.device("cpu"), seed))
    return DataLoader(ReferenceCifar(data.train_images, data.train_labels, mean, std), batch_size=batch_size,
                      sampler=order, num_workers=workers, persistent_workers=workers > 0)


def reference_batches(data: ImageData, batch_size: int, workers: int, seed: int) -> Batches:
    loader = reference_loader(data, batch_size, workers, seed)
    return itertools.chain.from_iterable(loader for _ in itertools.count())


def project_trainer(data: ImageData, make_norm: Callable[[int], nn.Module], batch_size: int, device: torch.device,
                    seed: int) -> Trainer:
    """lrn-ablate's step: its LeNet (C-kernel pooling), its optimizer and device-resident batches."""
    model = lenet(data, make_norm, device, seed)
    return Trainer(model, project_optimizer(model), project_batches(data, batch_size, device, seed), device)


def reference_trainer(data: ImageData, lrn_size: int, batch_size: int, workers: int, device: torch.device,
                      seed: int) -> Trainer:
    """The plain PyTorch loop: stock nn.LocalResponseNorm and nn.MaxPool2d, torch.optim.SGD, a DataLoader."""
    model = lenet(data, stock_lrn(lrn_size), device, seed, stock=True)
    return Trainer(model, reference_optimizer(model), reference_batches(data, batch_size, workers, seed), device)


def alternate(trainers: dict[str, Trainer], steps: int, rounds: int, warmup: int) -> dict[str, float]:
    """Median images/s of each trainer over `rounds` windows, taking turns so drift hits all alike."""
    for trainer in trainers.values():
        trainer.run(warmup)
    rates: dict[str, list[float]] = {name: [] for name in trainers}
    for _ in range(rounds):
        for name, trainer in trainers.items():
            began = time.perf_counter()
            seen = trainer.run(steps)
            rates[name].append(seen / (time.perf_counter() - began))
    return {name: statistics.median(values) for name, values in rates.items()}


def accuracy_after(trainer: Trainer, data: ImageData, epochs: int, steps_per_epoch: int,
                   device: torch.device) -> float:
    trainer.run(epochs * steps_per_epoch)
    mean, std = data.channel_stats()
    test = EvalBatches(data.test_images, data.test_labels, mean, std, 1000, device)
    return evaluate(trainer.model, test, device, "fp32")[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="CIFAR-10 as an ImageFolder tree (train/, test/)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lrn-size", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100, help="steps per timed window")
    parser.add_argument("--rounds", type=int, default=7, help="timed windows per loop")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="DataLoader workers of the reference")
    parser.add_argument("--accuracy-epochs", type=int, default=0, help="also compare test accuracy after N epochs")
    parser.add_argument("--accuracy-seeds", type=int, default=3, help="seeds of the accuracy comparison")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    keep_freed_memory()  # as `lrn-ablate train` does; the reference loop, in this process, gains from it too
    data = cifar10(args.root)
    lines = [f"# Training throughput, LeNet on CIFAR-10, batch {args.batch_size}", "",
             f"- machine: {machine_name(device)} ({device}); torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; {date.today()}",
             f"- command: `python {' '.join(sys.argv)}`",
             f"- median images/s over {args.rounds} alternating windows of {args.steps} steps, after "
             f"{args.warmup} warm-up steps; LRN: size {args.lrn_size}, alpha 1e-4, beta 0.75, k 1", ""]

    seed = args.seed
    trainers = {"lrn-ablate loop, norm=lrn (fused)":
                project_trainer(data, fused_lrn(args.lrn_size), args.batch_size, device, seed)}
    for workers in args.workers:
        trainers[f"reference loop, DataLoader workers={workers}, stock modules"] = reference_trainer(
            data, args.lrn_size, args.batch_size, workers, device, seed)
    speed = alternate(trainers, args.steps, args.rounds, args.warmup)
    ours = speed["lrn-ablate loop, norm=lrn (fused)"]
    lines += ["| loop | images/s | lrn-ablate speed-up |", "|---|---:|---:|"]
    lines += [f"| {name} | {rate:,.0f} | {ours / rate:.2f}x |" for name, rate in speed.items()]

    norms = {"norm=none": lambda channels: nn.Identity(), "norm=lrn (fused)": fused_lrn(args.lrn_size),
             "norm=lrn (torch.nn.LocalResponseNorm)": stock_lrn(args.lrn_size)}
    cost = alternate({name: project_trainer(data, make, args.batch_size, device, seed) for name, make in norms.items()},
                     args.steps, args.rounds, args.warmup)
    lines += ["", "Epoch time relative to norm=none, in the lrn-ablate loop (50,000 images an epoch):", "",
              "| norm | images/s | epoch seconds | epoch time / norm=none |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {rate:,.0f} | {50_000 / rate:.2f} | {cost['norm=none'] / rate:.2f}x |"
              for name, rate in cost.items()]

    if args.accuracy_epochs:
        steps = -(-len(data.train_labels) // args.batch_size)
        accuracies: dict[str, list[float]] = {"ours": [], "reference": []}
        for acc_seed in range(args.seed, args.seed + args.accuracy_seeds):
            ours_trainer = project_trainer(data, fused_lrn(args.lrn_size), args.batch_size, device, acc_seed)
            ref_trainer = reference_trainer(data, args.lrn_size, args.batch_size, 0, device, acc_seed)
            accuracies["ours"].append(accuracy_after(ours_trainer, data, args.accuracy_epochs, steps, device))
            accuracies["reference"].append(accuracy_after(ref_trainer, data, args.accuracy_epochs, steps, device))
        differences = [100 * (a - b) for a, b in zip(accuracies["ours"], accuracies["reference"], strict=True)]
        lines += ["", f"Test accuracy after {args.accuracy_epochs} epochs; each seed gives both loops the same "
                  "initial weights and the same batch order, so only the arithmetic differs:", "",
                  "| seed | lrn-ablate loop | reference loop, stock modules | difference (points) |",
                  "|---:|---:|---:|---:|"]
        lines += [f"| {args.seed + i} | {a:.4f} | {b:.4f} | {d:+.2f} |"
                  for i, (a, b, d) in enumerate(zip(accuracies["ours"], accuracies["reference"], differences,
                                                    strict=True))]
        lines += [f"| mean | {statistics.mean(accuracies['ours']):.4f} | "
                  f"{statistics.mean(accuracies['reference']):.4f} | {statistics.mean(differences):+.2f} |"]

    write_report(lines, args.out, "train", device)


if __name__ == "__main__":
    run(main)
