"""Weights & Biases as a mirror of the run directory: the same config, rows and summary, never more."""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lrn_ablate.settings import Choice, Group, Text, nullable

LOGGERS = Group("logger")


class NullLogger:
    def log(self, row: Mapping[str, float]) -> None:
        pass

    def finish(self, summary: Mapping[str, Any]) -> None:
        pass


class WandbLogger:
    """One W&B run per run directory; a resumed run continues the same W&B run id."""

    def __init__(self, mode: str, project: str, entity: str | None, *, config: dict[str, Any], run_dir: Path,
                 group: str, name: str) -> None:
        import wandb

        id_file = run_dir / "wandb_id.txt"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        os.environ.setdefault("WANDB_SILENT", "true")
        # finish_previous: a run left open by a crashed job in this process is closed, never reused.
        self.run = wandb.init(project=project, entity=entity, mode=mode,
                              dir=str(run_dir), id=run_id, resume="allow", group=group, name=name,
                              config=config, reinit="finish_previous")

    def log(self, row: Mapping[str, float]) -> None:
        self.run.log(dict(row), step=int(row["epoch"]))

    def finish(self, summary: Mapping[str, Any]) -> None:
        self.run.summary.update({k: v for k, v in summary.items() if v is not None})
        self.run.finish(exit_code=0 if summary.get("status") == "completed" else 1)


LOGGERS.declare("none", build=lambda **_: NullLogger())
LOGGERS.declare("wandb", build=WandbLogger, mode=Choice(("offline", "online", "disabled")), project=Text(),
                entity=nullable(Text()))


def open_logger(logger: Mapping[str, Any], config: dict[str, Any], run_dir: Path, group: str,
                name: str) -> NullLogger | WandbLogger:
    """The logger `logger` (a `conf/logger/*.yaml` node) for this run."""
    LOGGERS.check(logger)
    return LOGGERS.build(logger, config=config, run_dir=run_dir, group=group, name=name)
