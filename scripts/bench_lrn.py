"""Time the fused LocalResponseNorm against torch.nn.LocalResponseNorm and a ReLU (the memory-bound floor).

The fused module is timed as it runs (on the CPU: the C kernel of lrn_ablate/kernels) and with the C kernels
switched off (its torch-op path, which CUDA and machines without a C compiler take).

    python scripts/bench_lrn.py [--threads N] [--device cpu|cuda] [--rounds R] [--min-run-time S] [--out PATH]

Each timing is a torch.utils.benchmark median (it synchronizes CUDA) after a warm-up; the implementations
are measured in interleaved rounds so that a burst of load from other processes hits all of them, and the
table reports the median over the rounds. Forward runs under torch.no_grad(); forward+backward is
torch.autograd.grad of the output with respect to the input.

On the CPU everything is measured twice: with glibc's malloc as it comes, and with freed memory retained
(mallopt). By default glibc gives freed blocks above its trim threshold back to the OS, so a step that
allocates several large temporaries page-faults them in again on every call; that cost belongs to the
allocator, not to the kernels, and it also hits a whole training step (see the report written).

The tables are printed and written to results/bench/lrn_<machine>.md, machine being a slug of the CPU
model or GPU name and the core count.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import shlex
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import torch
from machine import BENCH_DIR, commit_line, machine_name, machine_slug
from torch import nn
from torch.utils.benchmark import Timer

from lrn_ablate import kernels
from lrn_ablate.norms.lrn import LocalResponseNorm
from lrn_ablate.training.runtime import keep_freed_memory

SHAPES = {  # (N, C, H, W) at batch 64
    "LeNet conv1": (64, 6, 28, 28),
    "LeNet conv2": (64, 16, 10, 10),
    "AlexNet-CIFAR conv1": (64, 96, 16, 16),  # 96 filters, 32x32 input at stride 2, as in cifar AlexNets
}
SIZES = (2, 5)  # pytorch convention, alpha=1e-4, beta=0.75, k=1 (torch's defaults) for both modules
# fused: lrn-ablate's module as it runs (the C kernel on the CPU); torch-ops: the same module with the C
# kernels switched off (its path on CUDA and without a compiler); torch: torch.nn.LocalResponseNorm.
IMPLEMENTATIONS = ("fused", "torch-ops", "torch", "relu")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--min-run-time", type=float, default=0.3, help="seconds per timing (default 0.3)")
    parser.add_argument("--out", type=Path, default=None, help="default: results/bench/lrn_<machine>.md")
    return parser.parse_args(argv)


def build(implementation: str, size: int) -> nn.Module:
    if implementation in ("fused", "torch-ops"):
        return LocalResponseNorm(size)
    if implementation == "torch":
        return nn.LocalResponseNorm(size)
    return nn.ReLU()


def forward_backward(module: nn.Module, x: torch.Tensor, grad: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        return torch.autograd.grad(module(x), x, grad)
    return run


def forward_only(module: nn.Module, x: torch.Tensor) -> Callable[[], object]:
    def run() -> object:
        with torch.no_grad():
            return module(x)
    return run


def median_seconds(run: Callable[[], object], min_run_time: float) -> float:
    for _ in range(3):  # warm-up: allocator caches, lazily built band matrices, CUDA kernels
        run()
    return Timer("run()", globals={"run": run}).blocked_autorange(min_run_time=min_run_time).median


def check_agreement(x: torch.Tensor, size: int) -> None:
    """The fused module is only worth timing if it computes what torch computes."""
    expected = nn.LocalResponseNorm(size)(x)
    torch.testing.assert_close(LocalResponseNorm(size)(x), expected, rtol=1e-5, atol=1e-6)


def cases() -> list[tuple[str, int, str]]:
    """(shape name, size, implementation); the ReLU does not depend on the size, so it is timed once."""
    return [(shape, size, impl) for shape in SHAPES for size in SIZES for impl in IMPLEMENTATIONS
            if not (impl == "relu" and size != SIZES[0])]


def measure(device: torch.device, rounds: int, min_run_time: float) -> dict[tuple[str, int, str, str], float]:
    """Median over interleaved rounds of each case's median seconds, keyed (shape, size, impl, mode)."""
    inputs = {}
    for name, shape in SHAPES.items():
        generator = torch.Generator().manual_seed(0)
        x = torch.randn(shape, generator=generator).to(device).requires_grad_(True)
        inputs[name] = (x, torch.randn(shape, generator=generator).to(device))
        for size in SIZES:
            check_agreement(x.detach(), size)
    samples: dict[tuple[str, int, str, str], list[float]] = {}
    for _ in range(rounds):
        for shape, size, impl in cases():
            module = build(impl, size).to(device)
            x, grad = inputs[shape]
            runs = {"fwd": forward_only(module, x), "fwd+bwd": forward_backward(module, x, grad)}
            switched_off = mock.patch.object(kernels, "applies", lambda *tensors: False)
            with switched_off if impl == "torch-ops" else contextlib.nullcontext():
                for mode, run in runs.items():
                    samples.setdefault((shape, size, impl, mode), []).append(median_seconds(run, min_run_time))
    return {key: statistics.median(values) for key, values in samples.items()}


def table(times: dict[tuple[str, int, str, str], float]) -> str:
    def ms(shape: str, size: int, impl: str, mode: str) -> float:
        return 1e3 * times[(shape, SIZES[0] if impl == "relu" else size, impl, mode)]

    modes = ("fwd", "fwd+bwd")
    header = ("| shape | size | " + " | ".join(f"{impl} {mode}" for mode in modes for impl in IMPLEMENTATIONS)
              + " | torch / fused fwd+bwd | torch-ops / fused fwd+bwd | fused / ReLU fwd+bwd |")
    lines = [header, "|" + " --- |" * header.count(" | ") + " --- |"]
    for shape in SHAPES:
        for size in SIZES:
            row = {(impl, mode): ms(shape, size, impl, mode) for impl in IMPLEMENTATIONS for mode in modes}
            dims = "×".join(map(str, SHAPES[shape]))
            cells = [f"{shape} {dims}", str(size)]
            cells += [f"{row[(impl, mode)]:.3f}" for mode in modes for impl in IMPLEMENTATIONS]
            fused = row[("fused", "fwd+bwd")]
            cells += [f"{row[(impl, 'fwd+bwd')] / fused:.1f}×" for impl in ("torch", "torch-ops")]
            cells.append(f"{fused / row[('relu', 'fwd+bwd')]:.1f}×")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unavailable"


def report(args: argparse.Namespace, device: torch.device, tables: dict[str, str], load_before: str) -> str:
    threads = torch.get_num_threads()
    command = shlex.join(["python", "scripts/bench_lrn.py", *sys.argv[1:]])
    lines = [
        f"# LRN benchmark: {machine_name(device)}",
        "",
        commit_line(),
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}",
        f"- torch {torch.__version__}, device {device}, {threads} intra-op threads",
        f"- load average (1, 5, 15 min) before: {load_before}; after: {load_average()}",
        f"- settings: pytorch convention, alpha=1e-4, beta=0.75, k=1; {args.rounds} interleaved rounds of "
        f"torch.utils.benchmark medians ({args.min_run_time} s each), median over rounds",
        "- times in ms; fwd under torch.no_grad(), fwd+bwd = torch.autograd.grad(module(x), x, g)",
    ]
    for title, text in tables.items():
        lines += ["", f"## {title}", "", text]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    load_before = load_average()
    first = "CUDA" if use_cuda else "glibc malloc defaults"
    tables = {first: table(measure(device, args.rounds, args.min_run_time))}
    if not use_cuda and keep_freed_memory():
        title = "freed memory retained (mallopt M_MMAP_THRESHOLD=32 MiB, M_TRIM_THRESHOLD=1 GiB)"
        tables[title] = table(measure(device, args.rounds, args.min_run_time))
    text = report(args, device, tables, load_before)
    out = args.out or BENCH_DIR / f"lrn_{machine_slug(device)}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
