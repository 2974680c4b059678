"""The Hydra application behind `lrn-ablate train` (flags such as -m, --cfg and --help are Hydra's)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import hydra
from omegaconf import DictConfig

from lrn_ablate.launch.job import run_job
from lrn_ablate.launch.precheck import asks_for_search
from lrn_ablate.launch.sweep import RunOutcome, count_statuses, print_tally


@hydra.main(version_base="1.3", config_path="pkg://lrn_ablate.conf", config_name="config")
def _app(cfg: DictConfig) -> int | float | None:
    return run_job(cfg)


@contextlib.contextmanager
def _errors_raised() -> Iterator[None]:
    """Hydra prints an error of the sweep itself (not of a job) as a traceback and exits; raised instead,
    it can be told apart from the end of a search in which no trial completed."""
    previous = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if previous is None:
            del os.environ["HYDRA_FULL_ERROR"]
        else:
            os.environ["HYDRA_FULL_ERROR"] = previous


def launch(args: list[str]) -> int:
    """Run Hydra on `args` as if they were the command line; returns the command's exit code, which the
    RunOutcome callback (conf/config.yaml) ends the run with."""
    sys.argv = ["lrn-ablate train", *args]
    search = asks_for_search(args)
    try:
        with _errors_raised() if search else contextlib.nullcontext():
            _app()
    except SystemExit as end:
        return end.code if isinstance(end.code, int) else (0 if end.code is None else 1)
    except Exception:
        # Optuna's sweeper asks for the best trial once every trial has run, which fails when none
        # completed: the search is over and each of its runs says how it ended.
        sweep_dir = RunOutcome.sweep_dir
        if not search or sweep_dir is None or not sweep_dir.is_dir() or count_statuses(sweep_dir)["completed"]:
            raise
        print_tally(sweep_dir)
        print("lrn-ablate train: error: no trial of the search completed, so it has no best value; each run's "
              "summary.json (and error.log, where it failed) says how it ended.", file=sys.stderr)
        return 1
    return 0  # --cfg, --help and the like run nothing
