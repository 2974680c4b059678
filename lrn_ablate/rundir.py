"""The run directory: the contract between training and everything after it (report, W&B, resume).

    config.yaml     the resolved config of the run
    metrics.csv     one row per completed epoch, appended and flushed each epoch
    summary.json    status and headline numbers, rewritten atomically as the run goes
    checkpoint.pt   model, optimizer, scheduler, RNG states and position, saved atomically
    .lock           held (flock) by the one process writing here
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from lrn_ablate.errors import UserError

METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "epoch_seconds",
                  "images_per_second", "eval_seconds")


def write_atomically(path: Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a half-written one, even after a kill."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(partial, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.config = self.path / "config.yaml"
        self.metrics = self.path / "metrics.csv"
        self.summary = self.path / "summary.json"
        self.checkpoint = self.path / "checkpoint.pt"
        self._lock: IO[str] | None = None

    def lock(self) -> None:
        """Take the directory for this process, or refuse if another process is writing it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / ".lock", "a+")  # noqa: SIM115 - held open for the life of the run
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            handle.close()
            raise UserError(f"run directory {self.path} is in use by {owner}; wait for it to finish or "
                            "pick another directory.") from None
        handle.truncate(0)
        handle.write(f"process {os.getpid()}\n")
        handle.flush()
        self._lock = handle

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def read_summary(self) -> dict[str, Any]:
        return json.loads(self.summary.read_text()) if self.summary.exists() else {}

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        write_atomically(self.summary, (json.dumps(summary, indent=2) + "\n").encode())

    def read_metrics(self) -> list[dict[str, str]]:
        """Complete rows only: a last line cut short by a kill has no newline or too few fields."""
        if not self.metrics.exists():
            return []
        text = self.metrics.read_text()
        lines = text.splitlines(keepends=True)
        complete = [line for line in lines if line.endswith("\n")]
        rows = list(csv.DictReader(io.StringIO("".join(complete))))
        return [row for row in rows if None not in row.values() and None not in row]

    def reset_metrics(self, keep_epochs: int) -> None:
        """Rewrite metrics.csv with epochs 1..keep_epochs only, dropping a torn or later line."""
        rows = [row for row in self.read_metrics() if int(row["epoch"]) <= keep_epochs]
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_atomically(self.metrics, out.getvalue().encode())

    def append_metrics(self, row: Mapping[str, float]) -> None:
        line = ",".join(repr(float(row[c])) if c != "epoch" else str(row[c]) for c in METRIC_COLUMNS)
        with open(self.metrics, "a") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
