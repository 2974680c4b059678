"""The optimizer axis: every `optim=` option, its settings and its optimizer with its learning-rate schedule
(conf/optim/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lrn_ablate.settings import Bool, Choice, Group, Int, ListOf, Number

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

OPTIMIZERS = Group("optim")
SCHEDULE = dict(schedule=Choice(("none", "cosine", "step")), step_size=Int(), gamma=Number(above=0))


def _fused(params: list[torch.nn.Parameter]) -> bool:
    # One fused kernel for all parameters instead of a few ops per parameter: a third of the per-step time
    # of SGD's update on LeNet (10 small tensors) on the CPU.
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


@OPTIMIZERS.option("sgd", lr=Number(above=0), momentum=Number(at_least=0), weight_decay=Number(at_least=0),
                   nesterov=Bool(), **SCHEDULE)
def sgd(lr: float, momentum: float, weight_decay: float, nesterov: bool, *,
        params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           fused=_fused(params))


@OPTIMIZERS.option("adam", lr=Number(above=0), weight_decay=Number(at_least=0),
                   betas=ListOf(Number(at_least=0, below=1), 2), **SCHEDULE)
def adam(lr: float, weight_decay: float, betas: list[float], *,
         params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    import torch

    return torch.optim.Adam(params, lr=lr, betas=tuple(betas), weight_decay=weight_decay, fused=_fused(params))


def build_schedule(optimizer: torch.optim.Optimizer, schedule: str, step_size: int, gamma: float,
                   epochs: int) -> LRScheduler:
    from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, StepLR

    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "step":
        return StepLR(optimizer, step_size=step_size, gamma=gamma)
    return LambdaLR(optimizer, lambda _: 1.0)


def build_optimizer(optim: Mapping[str, Any], params: Iterable[torch.nn.Parameter],
                    epochs: int) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """The optimizer `optim` (a `conf/optim/*.yaml` node) and its per-epoch schedule."""
    OPTIMIZERS.check(optim)
    optimizer = OPTIMIZERS.build(optim, params=list(params))
    return optimizer, build_schedule(optimizer, optim["schedule"], optim["step_size"], optim["gamma"], epochs)
