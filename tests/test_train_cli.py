"""End to end: the real `lrn-ablate train` in a subprocess, offline, on real data."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest
from conftest import CIFAR10_JPG, read_metrics, read_summary, run_cli

COLUMNS = ["epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds", "images_per_second"]


def only_run_dir(root: Path) -> Path:
    runs = [p.parent for p in root.glob("**/summary.json")]
    assert len(runs) == 1, runs
    return runs[0]


def test_quickstart_trains_lenet_with_lrn_on_digits(workdir):
    began = time.perf_counter()
    result = run_cli(["train", "dataset=digits", "trainer.epochs=3", "norm=lrn"], workdir)
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - began < 60
    run_dir = only_run_dir(workdir / "runs")
    for name in ("config.yaml", "metrics.csv", "summary.json", "checkpoint.pt", ".hydra/config.yaml",
                 ".hydra/overrides.yaml"):
        assert (run_dir / name).is_file(), name
    rows = read_metrics(run_dir)
    assert list(rows[0])[: len(COLUMNS)] == COLUMNS
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for row in rows:
        assert 0 <= float(row["train_acc"]) <= 1 and 0 <= float(row["test_acc"]) <= 1
        assert float(row["epoch_seconds"]) > 0 and math.isfinite(float(row["train_loss"]))
        assert float(row["images_per_second"]) == pytest.approx(1437 / float(row["epoch_seconds"]), rel=1e-6)
    summary = read_summary(run_dir)
    assert summary["status"] == "completed" and summary["epochs_completed"] == 3
    assert summary["final_test_acc"] == float(rows[-1]["test_acc"]) > 0.80
    best = max(rows, key=lambda r: float(r["test_acc"]))
    assert summary["best_test_acc"] == float(best["test_acc"]) and summary["best_epoch"] == int(best["epoch"])
    assert summary["num_params"] > 0 and summary["device"].startswith("cpu") and summary["torch_version"]
    assert summary["machine"].endswith(f"{len(os.sched_getaffinity(0))} cores")
    resolved = (run_dir / "config.yaml").read_text()
    assert "${" not in resolved and "name: lrn" in resolved and "mode: offline" in resolved
    offline_runs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline_runs) == 1
    assert "completed 3 epochs" in result.stdout


def test_multirun_makes_one_run_dir_and_one_wandb_run_per_job(workdir):
    result = run_cli(["train", "-m", "dataset=digits", "trainer.epochs=1", "norm=none,lrn", "seed=0,1",
                      f"hydra.sweep.dir={workdir / 'sweep'}"], workdir)
    assert result.returncode == 0, result.stderr
    run_dirs = sorted(p.parent for p in (workdir / "sweep").glob("*/summary.json"))
    assert len(run_dirs) == 4
    seen = set()
    for run_dir in run_dirs:
        assert len(read_metrics(run_dir)) == 1 and read_summary(run_dir)["status"] == "completed"
        assert len(list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))) == 1
        seen.add((run_dir / "wandb_id.txt").read_text())
        overrides = (run_dir / ".hydra" / "overrides.yaml").read_text()
        assert "norm=" in overrides and "seed=" in overrides
    assert len(seen) == 4  # never a W&B run reused across jobs
    assert "sweep finished: 4 runs, 4 completed, 0 failed" in result.stdout


def test_every_norm_trains_one_epoch_on_digits(workdir):
    norms = ["none", "lrn", "bn", "ln", "in", "gn", "pixel"]
    result = run_cli(["train", "-m", "dataset=digits", "trainer.epochs=1", f"norm={','.join(norms)}",
                      "logger=none", f"hydra.sweep.dir={workdir / 'sweep'}"], workdir)
    assert result.returncode == 0, result.stderr
    trained = {}
    for summary in (workdir / "sweep").glob("*/summary.json"):
        config = (summary.parent / "config.yaml").read_text()
        name = next(line.split(":")[1].strip() for line in config.splitlines()[config.splitlines().index("norm:"):]
                    if line.strip().startswith("name:"))
        trained[name] = read_summary(summary.parent)
    assert sorted(trained) == sorted(norms)
    for name, summary in trained.items():
        assert summary["status"] == "completed", name
        assert summary["final_test_acc"] > 0.2, name  # 10 classes: chance is 0.1


@pytest.mark.parametrize(("override", "message"), [
    ("norm=nope",
     "norm=nope is not an option of norm; choose one of: bn, gn, in, ln, lrn, lrn_alexnet, lrn_caffe, lrn_cudaconvnet, "
     "none, pixel."),
    ("trainer.epochs=-1", "trainer.epochs must be a positive integer, got -1."),
])
def test_wrong_override_is_one_sentence_and_a_non_zero_exit(workdir, override, message):
    result = run_cli(["train", "dataset=digits", override], workdir, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == f"lrn-ablate train: error: {message}"
    assert not (workdir / "runs").exists()  # nothing started


def test_help_lists_subcommands_and_hydra_groups(workdir):
    top = run_cli(["--help"], workdir, timeout=60)
    assert top.returncode == 0 and "train" in top.stdout and "report" in top.stdout
    train_help = run_cli(["train", "--help"], workdir, timeout=60)
    assert train_help.returncode == 0
    assert "norm: bn, gn, in, ln, lrn, lrn_alexnet, lrn_caffe, lrn_cudaconvnet, none, pixel" in train_help.stdout
    job = run_cli(["train", "norm=lrn", "norm.alpha=0.001", "--cfg", "job"], workdir, timeout=60)
    assert job.returncode == 0 and "alpha: 0.001" in job.stdout


@pytest.mark.skipif(not CIFAR10_JPG.is_dir(), reason="the shared CIFAR-10 JPEG tree is not on this machine")
def test_one_epoch_of_lenet_on_real_cifar10(workdir):
    result = run_cli(["train", "dataset=cifar10", f"dataset.root={CIFAR10_JPG}", "trainer.epochs=1", "logger=none"],
                     workdir, timeout=600)
    assert result.returncode == 0, result.stderr
    summary = read_summary(only_run_dir(workdir / "runs"))
    assert summary["final_test_acc"] > 0.35
