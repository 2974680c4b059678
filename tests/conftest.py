"""Shared helpers: run the real `lrn-ablate` command in a subprocess, offline."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CIFAR10_JPG = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg"


def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("lrn-ablate")
    return [str(script)] if script.exists() else [sys.executable, "-m", "lrn_ablate"]


def offline_env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DIR=str(tmp), HYDRA_FULL_ERROR="0",
               LRN_ABLATE_DATA=str(tmp / "data"))
    return env


def run_cli(args: list[str], cwd: Path, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*cli_command(), *args], cwd=cwd, env=offline_env(cwd), capture_output=True,
                          text=True, timeout=timeout, **kwargs)


def read_metrics(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv") as handle:
        return list(csv.DictReader(handle))


def read_summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


@pytest.fixture(scope="session", autouse=True)
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Decoded-data caches go to one folder per test session, shared by its subprocesses."""
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
