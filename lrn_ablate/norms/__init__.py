"""The normalization axis of the ablation: one factory for every `norm=` option."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from lrn_ablate.conf_checks import check_groups
from lrn_ablate.norms.lrn import LocalResponseNorm

__all__ = ["LocalResponseNorm", "build_norm"]


def build_norm(norm: Mapping[str, Any], num_channels: int) -> nn.Module:
    """The normalization layer `norm` (a `conf/norm/*.yaml` node) for a slot with `num_channels` channels."""
    name = norm["name"]
    if name == "none":
        return nn.Identity()
    if name == "lrn":
        return LocalResponseNorm(norm["size"], norm["alpha"], norm["beta"], norm["k"],
                                 norm["convention"], norm["region"])
    if name == "bn":
        return nn.BatchNorm2d(num_channels, eps=norm["eps"], momentum=norm["momentum"])
    if name == "ln":
        return nn.GroupNorm(1, num_channels, eps=norm["eps"])
    if name == "in":
        return nn.InstanceNorm2d(num_channels, eps=norm["eps"], affine=norm["affine"])
    if name == "gn":
        check_groups(norm["groups"], [num_channels])
        return nn.GroupNorm(norm["groups"], num_channels, eps=norm["eps"])
    raise ValueError(f"unknown norm {name!r}")
