"""`torchrun ... --no-python lrn-ablate train ...`: one run on several processes. Before Hydra starts, every
rank joins the others and takes rank 0's start time, so all name the same run directory; ranks other than 0
write nothing there (no .hydra/, no log file), as the training loop writes only from rank 0."""

from __future__ import annotations

import os
from datetime import datetime

from lrn_ablate.errors import UserError

# The moment the command started: rank 0's under torchrun (hydra.run.dir in conf/config.yaml uses
# ${started:...}, where Hydra's own ${now:...} would differ between processes started a second apart).
STARTED_ENV = "LRN_ABLATE_STARTED"
FOLLOWER_OVERRIDES = ("hydra.output_subdir=null", "hydra/job_logging=none")


def started(pattern: str) -> str:
    """The ${started:pattern} resolver."""
    stamp = os.environ.get(STARTED_ENV)
    return (datetime.fromisoformat(stamp) if stamp else datetime.now()).strftime(pattern)


def under_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def check_torchrun_arguments(args: list[str]) -> None:
    if {"-m", "--multirun"}.intersection(args):
        raise UserError("torchrun runs one run on several processes, so it cannot run a sweep (-m); sweep with "
                        "a launcher instead (hydra/launcher=joblib, submitit_local or slurm).")


def join_ranks(args: list[str]) -> list[str]:
    """The Hydra arguments for this rank, once it has joined the others."""
    from lrn_ablate.training.distributed import join_torchrun

    ranks = join_torchrun()
    os.environ[STARTED_ENV] = ranks.from_main(datetime.now().isoformat())
    return args if ranks.main else [*args, *FOLLOWER_OVERRIDES]
