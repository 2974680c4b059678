"""The Hydra application behind `lrn-ablate train` (flags such as -m, --cfg and --help are Hydra's)."""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from lrn_ablate.launch.job import run_job


@hydra.main(version_base="1.3", config_path="pkg://lrn_ablate.conf", config_name="config")
def _app(cfg: DictConfig) -> int | float | None:
    return run_job(cfg)


def launch(args: list[str]) -> int:
    """Run Hydra on `args` as if they were the command line; returns the command's exit code, which the
    RunOutcome callback (conf/config.yaml) ends the run with."""
    sys.argv = ["lrn-ablate train", *args]
    try:
        _app()
    except SystemExit as end:
        return end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    return 0  # --cfg, --help and the like run nothing
