"""Throughput of a sweep on Hydra's joblib launcher with 1, 2, ... jobs at a time, on one machine.

    python scripts/bench_sweep.py --root ../shared/data/cifar10-jpg
    python scripts/bench_sweep.py --root ../shared/data/cifar10-jpg --parallel 1 2 4   # one GPU, shared

Each configuration runs the same sweep through the real CLI (`lrn-ablate train -m`, LeNet, norm=lrn,
--jobs seeds, --epochs epochs, W&B off) with `hydra/launcher=joblib hydra.launcher.n_jobs=P`; with
`trainer.threads=auto` each job takes cores / P CPU threads, and on a GPU machine every job shares the
visible GPU(s). The sweep's images/s is the images it trained over its wall time, start-up included;
"while training" counts the epochs only: jobs at a time x images per epoch / a job's mean epoch seconds.
Results go to results/bench/sweep_<machine>.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import torch
from entry import run
from machine import BENCH_DIR, machine_name, write_report


def run_sweep(root: Path, jobs: int, parallel: int, epochs: int, sweep_dir: Path) -> float:
    """Run the sweep; returns its wall seconds."""
    command = [sys.executable, "-m", "lrn_ablate", "train", "-m", "dataset=cifar10", f"dataset.root={root}", "norm=lrn",
               f"seed={','.join(str(seed) for seed in range(jobs))}", f"trainer.epochs={epochs}", "logger=none",
               "trainer.progress=false", "hydra/launcher=joblib", f"hydra.launcher.n_jobs={parallel}",
               f"hydra.sweep.dir={sweep_dir}"]
    began = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="CIFAR-10 as an ImageFolder tree")
    parser.add_argument("--jobs", type=int, default=4, help="runs in the sweep (seeds 0..jobs-1)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2], help="n_jobs values to time")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=BENCH_DIR)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    root = args.root.expanduser().resolve()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for parallel in args.parallel:
            sweep_dir = Path(scratch) / f"n_jobs{parallel}"
            wall = run_sweep(root, args.jobs, parallel, args.epochs, sweep_dir)
            runs = sorted(path.parent for path in sweep_dir.glob("*/summary.json"))
            summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
            if len(summaries) != args.jobs or any(s["status"] != "completed" for s in summaries):
                sys.exit(f"the sweep with n_jobs={parallel} did not complete all {args.jobs} runs ({sweep_dir})")
            epochs = [row for run in runs for row in csv.DictReader((run / "metrics.csv").open())]
            images = sum(round(float(row["images_per_second"]) * float(row["epoch_seconds"])) for row in epochs)
            epoch_seconds = statistics.mean(float(row["epoch_seconds"]) for row in epochs)
            # While the jobs train side by side: `parallel` epochs of images / len(epochs) images at a time.
            training = parallel * images / len(epochs) / epoch_seconds
            rows.append((parallel, summaries[0]["device"], wall, images / wall, epoch_seconds, training))
            shutil.rmtree(sweep_dir)
    base = rows[0][3]
    lines = [f"# Sweep throughput on the joblib launcher: {args.jobs} LeNet/CIFAR-10 runs of {args.epochs} epochs",
             "", f"- machine: {machine_name(device)} ({device}); torch {torch.__version__}; {date.today()}",
             f"- command: `python {' '.join(sys.argv)}`",
             "- each row is the whole sweep through `lrn-ablate train -m ... hydra/launcher=joblib "
             "hydra.launcher.n_jobs=N`, start-up included; trainer.threads=auto", "",
             "| jobs at a time | each job's device | sweep wall seconds | sweep images/s | vs one at a time "
             "| mean epoch seconds of a job | images/s while training | vs one at a time |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {parallel} | {where} | {wall:.1f} | {rate:,.0f} | {rate / base:.2f}x | {epoch:.2f} | "
              f"{training:,.0f} | {training / rows[0][5]:.2f}x |"
              for parallel, where, wall, rate, epoch, training in rows]
    write_report(lines, args.out, "sweep", device)


if __name__ == "__main__":
    run(main)
