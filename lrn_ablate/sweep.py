"""The end-of-sweep tally: how many runs of a multirun completed, diverged or failed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

STATUSES = ("completed", "diverged", "failed", "interrupted", "running")


class Tally:
    """Exit code of the last sweep in this process, read by the CLI once Hydra returns."""

    exit_code: int = 0


def count_statuses(sweep_dir: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for summary in sweep_dir.glob("**/summary.json"):
        counts[json.loads(summary.read_text()).get("status", "failed")] += 1
    return counts


def print_tally(sweep_dir: Path) -> int:
    """Print the end-of-sweep line; returns the sweep's exit code (1 if a run failed or was interrupted)."""
    counts = count_statuses(sweep_dir)
    parts = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s] or s in ("completed", "failed"))
    print(f"sweep finished: {sum(counts.values())} runs, {parts} ({sweep_dir})", flush=True)
    return 1 if counts["failed"] or counts["interrupted"] else 0


class SweepSummary(Callback):
    """Prints the tally at the end of a multirun and makes its exit code non-zero if any run failed.

    It reads the runs' summary.json files, so it counts jobs of any launcher (local, joblib, SLURM).
    """

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        Tally.exit_code = print_tally(Path(config.hydra.sweep.dir))
