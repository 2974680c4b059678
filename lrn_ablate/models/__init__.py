"""The model axis of the ablation: every `model=` option, its settings and its network (conf/model/).

The check of a model takes the data's image size and channels (when the dataset option knows them) and
tells the norm check the channel counts of the model's norm slots.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from lrn_ablate.errors import UserError
from lrn_ablate.settings import Bool, Group, Int, ListOf, Number, Text, nullable

if TYPE_CHECKING:
    from torch import nn

    from lrn_ablate.models.lenet import NormFactory

MODELS = Group("model")
def fits_images(name: str, min_size: int) -> Any:
    """The rule of a model that needs images of at least min_size x min_size and whose two norm slots have
    conv_channels channels."""
    def rule(model: Mapping[str, Any], data: Any, prefix: str) -> list[int]:
        if data is not None and data.image_size is not None and data.image_size < min_size:
            raise UserError(f"model={name} needs images of at least {min_size}x{min_size} pixels, but the "
                            f"dataset gives {data.image_size}x{data.image_size}.")
        return list(model["conv_channels"])
    return rule


# LeNet's two 5x5 convolutions and two 2x2 poolings leave one pixel of a 16x16 image.
lenet_rule = fits_images("lenet", 16)


@MODELS.option("lenet", rule=lenet_rule, conv_channels=ListOf(Int(), 2), fc_features=ListOf(Int(), 2))
def lenet(conv_channels: list[int], fc_features: list[int], *, make_norm: NormFactory, in_channels: int,
          input_size: int, num_classes: int) -> nn.Module:
    from lrn_ablate.models.lenet import LeNet

    return LeNet(in_channels, input_size, num_classes, make_norm, conv_channels, fc_features)


def alexnet_rule(model: Mapping[str, Any], data: Any, prefix: str) -> list[int]:
    """Towers divide the widths, tower placement is possible, the design fits the data; returns the channel
    counts of one norm module in each slot (per tower with tower_local_norm)."""
    towers, channels = model["towers"], list(model["conv_channels"])
    if any(c % towers for c in channels):
        raise UserError(f"{prefix}towers={towers} must divide every width in {prefix}conv_channels {channels}.")
    devices = model["tower_devices"]
    if devices is not None and (towers < 2 or not model["tower_local_norm"] or len(devices) != towers):
        raise UserError(f"{prefix}tower_devices needs towers >= 2, tower_local_norm: true and one device per "
                        f"tower; got towers={towers}, tower_local_norm={model['tower_local_norm']}, "
                        f"tower_devices={list(devices)}.")
    design, given = model["image_size"], data.image_size if data is not None else None
    if design is not None and given is not None and design != given:
        raise UserError(f"model={model['name']} is built for {design}x{design} images but the dataset gives "
                        f"{given}x{given}; resize the data (dataset.image_size for imagefolder) or set "
                        f"{prefix}image_size={given} (model=alexnet_cifar is AlexNet made for 32x32).")
    per_norm = towers if model["tower_local_norm"] else 1
    return [c // per_norm for c in channels[:2]]


ALEXNET_SETTINGS = dict(
    image_size=nullable(Int()), conv_channels=ListOf(Int(), 5), fc_features=ListOf(Int(), 2), towers=Int(),
    tower_local_norm=Bool(), norm_before_pool=Bool(), overlapping_pool=Bool(), dropout=Number(at_least=0, below=1),
    tower_devices=nullable(ListOf(Text())))


def alexnet(name: str) -> Any:
    """The builder of model=alexnet or model=alexnet_cifar (the same switches, another conv1)."""
    def build(image_size: int | None, conv_channels: list[int], fc_features: list[int], towers: int,
              tower_local_norm: bool, norm_before_pool: bool, overlapping_pool: bool, dropout: float,
              tower_devices: list[str] | None, **context: Any) -> nn.Module:
        from lrn_ablate.models.alexnet import build_alexnet

        return build_alexnet(name, image_size, conv_channels, fc_features, towers, tower_local_norm,
                             norm_before_pool, overlapping_pool, dropout, tower_devices, **context)
    return build


for _name in ("alexnet", "alexnet_cifar"):
    MODELS.declare(_name, rule=alexnet_rule, build=alexnet(_name), **ALEXNET_SETTINGS)


# cuda-convnet's network: its two 3/2 poolings must leave a 3x3 map, which a 12x12 image does.
cudaconvnet_rule = fits_images("cudaconvnet", 12)


@MODELS.option("cudaconvnet", rule=cudaconvnet_rule, conv_channels=ListOf(Int(), 2), local_channels=ListOf(Int(), 2),
               init_std=nullable(ListOf(Number(above=0), 5)))
def cudaconvnet(conv_channels: list[int], local_channels: list[int], init_std: list[float] | None, *,
                make_norm: NormFactory, in_channels: int, input_size: int, num_classes: int) -> nn.Module:
    from lrn_ablate.models.cudaconvnet import CudaConvnet

    return CudaConvnet(in_channels, input_size, num_classes, make_norm, conv_channels, local_channels, init_std)


def norm_channel_counts(model: Mapping[str, Any]) -> list[int]:
    """Channel counts of the model's norm slots, known from the config alone (for early checks)."""
    return MODELS.check(model)


def build_model(model: Mapping[str, Any], norm: Mapping[str, Any], in_channels: int, image_size: int,
                num_classes: int) -> nn.Module:
    """The network `model` (a `conf/model/*.yaml` node) with `norm` in its norm slots."""
    from lrn_ablate.norms import build_norm

    MODELS.check(model)
    return MODELS.build(model, make_norm=partial(build_norm, norm), in_channels=in_channels,
                        input_size=image_size, num_classes=num_classes)
