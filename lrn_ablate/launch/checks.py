"""The check of a whole composed config, group by group, each by its own declaration (lrn_ablate.settings).

The groups are checked in the order their facts flow: the dataset tells the model check its image size
and channels, the model tells the norm check the channel counts of its norm slots.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lrn_ablate.data import DATASETS
from lrn_ablate.errors import UserError
from lrn_ablate.models import MODELS
from lrn_ablate.norms import NORMS
from lrn_ablate.optim import OPTIMIZERS
from lrn_ablate.training.logger import LOGGERS
from lrn_ablate.training.trainer import TRAINER


def check_config(cfg: Mapping[str, Any]) -> None:
    """Every check that can run before data is loaded; raises UserError on the first problem."""
    data = DATASETS.check(cfg["dataset"])
    channels = MODELS.check(cfg["model"], data)
    NORMS.check(cfg["norm"], channels)
    OPTIMIZERS.check(cfg["optim"])
    TRAINER.check(cfg["trainer"])
    LOGGERS.check(cfg["logger"])
    seed = cfg.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise UserError(f"seed must be an integer, got {seed!r}.")
