"""The Hydra application behind `lrn-ablate train` (flags such as -m, --cfg and --help are Hydra's)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lrn_ablate.job import LastJob, run_job
from lrn_ablate.sweep import Tally


@hydra.main(version_base="1.3", config_path="pkg://lrn_ablate.conf", config_name="config")
def _app(cfg: DictConfig) -> str:
    return run_job(cfg)


def launch(args: list[str]) -> int:
    """Run Hydra on `args` as if they were the command line; returns the command's exit code."""
    multirun = "-m" in args or "--multirun" in args
    sys.argv = ["lrn-ablate train", *args]
    Tally.exit_code, LastJob.exit_code = 0, 0
    _app()
    return Tally.exit_code if multirun else LastJob.exit_code
