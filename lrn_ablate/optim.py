"""The optimizer axis: every `optim=` option, its settings and its optimizer with its learning-rate schedule
(conf/optim/)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from lrn_ablate.settings import Bool, Choice, Default, Group, Int, ListOf, MapOf, Number

if TYPE_CHECKING:
    import torch
    from torch.optim.lr_scheduler import LRScheduler

OPTIMIZERS = Group("optim")
# schedule, per epoch: none; cosine to 0 over the run; step: x gamma every step_size epochs; multistep:
# x gamma at each epoch in milestones (cuda-convnet's hand-made drops).
SCHEDULE = dict(schedule=Choice(("none", "cosine", "step", "multistep")), step_size=Int(), gamma=Number(above=0),
                milestones=Default(ListOf(Int()), []))
# Per-parameter settings as cuda-convnet's layer-params files give them (wc per layer, epsB = 2 epsW, no
# decay on biases). Left out, every parameter gets lr and weight_decay.
PARAMETER_GROUPS = dict(layer_weight_decay=Default(MapOf(Number(at_least=0)), {}),
                        bias_lr_scale=Default(Number(above=0), 1.0), bias_weight_decay=Default(Bool(), True))


def _fused(params: list[torch.nn.Parameter]) -> bool:
    # One fused kernel for all parameters instead of a few ops per parameter: a third of the per-step time
    # of SGD's update on LeNet (10 small tensors) on the CPU.
    return all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def parameter_groups(named: list[tuple[str, torch.nn.Parameter]], lr: float, weight_decay: float,
                     layer_weight_decay: dict[str, float], bias_lr_scale: float,
                     bias_weight_decay: bool) -> list[dict[str, Any]]:
    """Optimizer parameter groups, one per distinct (lr, weight decay), in order of first appearance.

    A parameter's weight decay is that of the longest `layer_weight_decay` key its module path starts
    with (conv1 matches conv1.weight and conv1.bias), else weight_decay; biases take lr x bias_lr_scale and,
    unless bias_weight_decay, no weight decay."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in named:
        layers = [key for key in layer_weight_decay if name == key or name.startswith(f"{key}.")]
        decay = layer_weight_decay[max(layers, key=len)] if layers else weight_decay
        is_bias = name.rsplit(".", 1)[-1] == "bias"
        if is_bias and not bias_weight_decay:
            decay = 0.0
        groups.setdefault((lr * bias_lr_scale if is_bias else lr, decay), []).append(param)
    return [{"params": params, "lr": group_lr, "weight_decay": decay}
            for (group_lr, decay), params in groups.items()]


@OPTIMIZERS.option("sgd", lr=Number(above=0), momentum=Number(at_least=0), weight_decay=Number(at_least=0),
                   nesterov=Bool(), **SCHEDULE, **PARAMETER_GROUPS)
def sgd(lr: float, momentum: float, weight_decay: float, nesterov: bool, layer_weight_decay: dict[str, float],
        bias_lr_scale: float, bias_weight_decay: bool, *,
        named: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    import torch

    groups = parameter_groups(named, lr, weight_decay, layer_weight_decay, bias_lr_scale, bias_weight_decay)
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           fused=_fused([p for _, p in named]))


@OPTIMIZERS.option("adam", lr=Number(above=0), weight_decay=Number(at_least=0),
                   betas=ListOf(Number(at_least=0, below=1), 2), **SCHEDULE, **PARAMETER_GROUPS)
def adam(lr: float, weight_decay: float, betas: list[float], layer_weight_decay: dict[str, float],
         bias_lr_scale: float, bias_weight_decay: bool, *,
         named: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    import torch

    groups = parameter_groups(named, lr, weight_decay, layer_weight_decay, bias_lr_scale, bias_weight_decay)
    return torch.optim.Adam(groups, lr=lr, betas=tuple(betas), weight_decay=weight_decay,
                            fused=_fused([p for _, p in named]))


def build_schedule(optimizer: torch.optim.Optimizer, schedule: str, step_size: int, gamma: float,
                   milestones: list[int], epochs: int) -> LRScheduler:
    from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, MultiStepLR, StepLR

    if schedule == "cosine":
        return CosineAnnealingLR(optimizer, T_max=epochs)
    if schedule == "step":
        return StepLR(optimizer, step_size=step_size, gamma=gamma)
    if schedule == "multistep":
        return MultiStepLR(optimizer, milestones=milestones, gamma=gamma)
    return LambdaLR(optimizer, lambda _: 1.0)


def build_optimizer(optim: Mapping[str, Any], named: Iterable[tuple[str, torch.nn.Parameter]],
                    epochs: int) -> tuple[torch.optim.Optimizer, LRScheduler]:
    """The optimizer `optim` (a `conf/optim/*.yaml` node) for the model's named parameters, and its
    per-epoch schedule."""
    OPTIMIZERS.check(optim)
    optimizer = OPTIMIZERS.build(optim, named=list(named))
    settings = OPTIMIZERS.settings(optim)
    return optimizer, build_schedule(optimizer, settings["schedule"], settings["step_size"], settings["gamma"],
                                     settings["milestones"], epochs)
