"""The model axis of the ablation: one factory for every `model=` option."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

from torch import nn

from lrn_ablate.conf_checks import norm_channel_counts
from lrn_ablate.models.alexnet import build_alexnet
from lrn_ablate.models.lenet import LeNet
from lrn_ablate.norms import build_norm

__all__ = ["build_model", "norm_channel_counts"]


def build_model(model: Mapping[str, Any], norm: Mapping[str, Any], in_channels: int, image_size: int,
                num_classes: int) -> nn.Module:
    """The network `model` (a `conf/model/*.yaml` node) with `norm` in its norm slots."""
    make_norm = partial(build_norm, norm)
    if model["name"] == "lenet":
        return LeNet(in_channels, image_size, num_classes, make_norm,
                     model["conv_channels"], model["fc_features"])
    if model["name"] in ("alexnet", "alexnet_cifar"):
        return build_alexnet(model, make_norm, in_channels, image_size, num_classes)
    raise ValueError(f"unknown model {model['name']!r}")
