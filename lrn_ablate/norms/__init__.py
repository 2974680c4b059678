"""The normalization axis of the ablation: every `norm=` option, its settings and its layer (conf/norm/).

A norm is built once per norm slot of the model, for that slot's channel count; the model's declaration
tells the check those counts (`channels`), so a GroupNorm that does not divide them is refused up front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from lrn_ablate.errors import UserError
from lrn_ablate.settings import Bool, Choice, Group, Int, Number

if TYPE_CHECKING:
    from torch import nn

NORMS = Group("norm")
EPS = Number(above=0)
LRN_CONVENTIONS = ("pytorch", "caffe", "alexnet", "article")
LRN_REGIONS = ("across", "within")


@NORMS.option("none")
def identity(*, channels: int) -> nn.Module:
    from torch import nn

    return nn.Identity()


def lrn_window_rule(norm: Mapping[str, Any], _: Any, prefix: str) -> None:
    if norm["size"] % 2 == 0 and (norm["convention"] == "caffe" or norm["region"] == "within"):
        what = "region=within" if norm["region"] == "within" else "convention=caffe"
        raise UserError(f"{prefix}size must be odd with {what} (a centred window), got {norm['size']}.")


@NORMS.option("lrn", rule=lrn_window_rule, size=Int(), alpha=Number(at_least=0), beta=Number(at_least=0),
              k=Number(at_least=0), convention=Choice(LRN_CONVENTIONS), region=Choice(LRN_REGIONS))
def local_response_norm(size: int, alpha: float, beta: float, k: float, convention: str, region: str, *,
                        channels: int) -> nn.Module:
    from lrn_ablate.norms.lrn import LocalResponseNorm

    return LocalResponseNorm(size, alpha, beta, k, convention, region)


@NORMS.option("bn", eps=EPS, momentum=Number(at_least=0, at_most=1))
def batch_norm(eps: float, momentum: float, *, channels: int) -> nn.Module:
    from torch import nn

    return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)


@NORMS.option("ln", eps=EPS)
def layer_norm(eps: float, *, channels: int) -> nn.Module:
    from torch import nn

    return nn.GroupNorm(1, channels, eps=eps)  # LayerNorm over (C, H, W) with a per-channel affine


@NORMS.option("in", eps=EPS, affine=Bool())
def instance_norm(eps: float, affine: bool, *, channels: int) -> nn.Module:
    from torch import nn

    return nn.InstanceNorm2d(channels, eps=eps, affine=affine)


def groups_divide_channels(norm: Mapping[str, Any], channels: Sequence[int] | None, prefix: str) -> None:
    bad = [c for c in channels or () if c % norm["groups"]]
    if bad:
        raise UserError(f"{prefix}groups={norm['groups']} must divide the channel count of every norm slot "
                        f"({', '.join(map(str, channels))}); it does not divide {bad[0]}.")


@NORMS.option("gn", rule=groups_divide_channels, groups=Int(), eps=EPS)
def group_norm(groups: int, eps: float, *, channels: int) -> nn.Module:
    from torch import nn

    return nn.GroupNorm(groups, channels, eps=eps)


@NORMS.option("pixel", eps=EPS)
def pixel_norm(eps: float, *, channels: int) -> nn.Module:
    """PixelNorm (Karras et al. 2018, ProGAN section 4.2): b = a / sqrt(mean over channels of a^2 + eps), the
    paper's "variant of local response normalization", i.e. LRN whose window holds every channel."""
    from lrn_ablate.norms.lrn import LocalResponseNorm

    size = 2 * channels - 1  # a centred window this wide reaches every channel from every channel
    return LocalResponseNorm(size, alpha=size / channels, beta=0.5, k=eps, convention="pytorch")


def build_norm(norm: Mapping[str, Any], num_channels: int) -> nn.Module:
    """The normalization layer `norm` (a `conf/norm/*.yaml` node) for a slot with `num_channels` channels."""
    NORMS.check(norm, [num_channels])
    return NORMS.build(norm, channels=num_channels)
