"""A job's share of the machine when a launcher runs several jobs of a sweep at once.

Hydra's basic launcher runs one job at a time, so a job may take every core. The joblib launcher runs
`hydra.launcher.n_jobs` jobs side by side in worker processes: with `trainer.threads=auto` each job then
takes cores / n_jobs threads (never fewer than one), so the jobs do not oversubscribe the cores, and
with `trainer.device=auto` on a machine with several GPUs each job takes GPU (job number mod GPUs).
Hydra's submitit launchers run each job as its own process (submitit_local: all of a sweep's jobs at once
on this machine; SLURM: each in its allocation): there `auto` takes `hydra.launcher.cpus_per_task`
threads when it is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

# Hydra launchers that run several jobs of a sweep at once on this machine.
PARALLEL_LAUNCHERS = ("JoblibLauncher",)
# Hydra launchers that give each job its own process with hydra.launcher.cpus_per_task cores.
SUBMITIT_LAUNCHERS = ("LocalLauncher", "SlurmLauncher")


@dataclass(frozen=True)
class Share:
    parallel_jobs: int = 1  # jobs running at once on this machine
    slot: int = 0  # this job's number within the sweep
    cpus: int | None = None  # the cores a launcher gave this job, when it says

    def threads(self, setting: str | int) -> int | None:
        """The CPU thread count for trainer.threads; None keeps torch's default (one job, `auto`)."""
        if setting != "auto":
            return int(setting)
        if self.cpus is not None:
            return self.cpus
        if self.parallel_jobs <= 1:
            return None
        return max(1, usable_cores() // self.parallel_jobs)

    def device(self, setting: str, gpus: int) -> str:
        """trainer.device with `auto` spread over `gpus` visible GPUs when jobs run side by side."""
        if setting != "auto" or gpus == 0:
            return setting if setting != "auto" else "cpu"
        if self.parallel_jobs > 1 and gpus > 1:
            return f"cuda:{self.slot % gpus}"
        return "cuda"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, e.g. a SLURM allocation), not all in the box."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_from_launcher(launcher: dict, job_num: int) -> Share:
    """The share of a job launched by the Hydra launcher whose config is `launcher`."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(SUBMITIT_LAUNCHERS):
        return Share(slot=job_num, cpus=launcher.get("cpus_per_task"))
    if not target.endswith(PARALLEL_LAUNCHERS):
        return Share(slot=job_num)
    n_jobs = int(launcher.get("n_jobs") or 1)
    if n_jobs < 0:  # joblib: -1 is every core, -2 all but one, ...
        n_jobs = max(1, usable_cores() + 1 + n_jobs)
    return Share(parallel_jobs=n_jobs, slot=job_num)
