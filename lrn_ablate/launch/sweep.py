"""How `lrn-ablate train` ends: a single run's exit code, or a multirun's tally of completed, diverged and
failed runs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from lrn_ablate.rundir import STATUSES, SUMMARY, read_summary_file


def count_statuses(sweep_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in sweep_dir.glob(f"**/{SUMMARY}"):
        summary = read_summary_file(path)
        counts[summary.get("status", "failed") if isinstance(summary, dict) else "failed"] += 1
    return counts


def print_tally(sweep_dir: Path) -> int:
    """Print the end-of-sweep line; returns the sweep's exit code (1 if a run failed or was interrupted)."""
    counts = count_statuses(sweep_dir)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("completed", "failed"))
    print(f"sweep finished: {sum(counts.values())} runs, {parts} ({sweep_dir})", flush=True)
    return 1 if counts["failed"] or counts["interrupted"] else 0


class RunOutcome(Callback):
    """Ends `lrn-ablate train` with its exit code: a single run's own (0 completed, 128 + N after signal N,
    1 otherwise), or for a multirun the tally's (1 if a run failed or was interrupted), printed first.

    The code leaves Hydra as SystemExit, which its callback runner lets through; Hydra's own errors exit
    the same way. The tally reads the runs' summary.json files, so it counts the jobs of any launcher
    (basic, joblib, SLURM), whose workers may be other processes.
    """

    sweep_dir: ClassVar[Path | None] = None  # of the multirun started in this process

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        RunOutcome.sweep_dir = Path(config.hydra.sweep.dir)

    def on_run_end(self, config: DictConfig, job_return: JobReturn | None = None, **kwargs: Any) -> None:
        ok = job_return is not None and job_return.status == JobStatus.COMPLETED
        raise SystemExit(job_return.return_value if ok else 1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        raise SystemExit(print_tally(Path(config.hydra.sweep.dir)))
