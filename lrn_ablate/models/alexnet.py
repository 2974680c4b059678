"""AlexNet as published (Krizhevsky, Sutskever & Hinton 2012) and AlexNet-CIFAR, its 32x32 scaling.

Two towers (grouped convolutions in conv2, conv4 and conv5; conv3 and the fc layers see both towers),
overlapping max pooling, dropout in fc6 and fc7, and a norm slot after the ReLU of conv1 and conv2 where
the paper puts LRN. The layer names are Caffe's (conv1, relu1, norm1, pool1, ... fc8), so the order of a
block reads off `features`.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from lrn_ablate.errors import UserError

NormFactory = Callable[[int], nn.Module]
Conv1Geometry = tuple[int, int, int]  # kernel, stride, padding

ALEXNET_MAP_SIDE = 55  # side of the published conv1 map (Caffe's 227 input, 11x11 kernel, stride 4)


class TowerNorm(nn.Module):
    """One norm per tower, each seeing only its own tower's channels, as on the paper's two GPUs."""

    def __init__(self, make_norm: NormFactory, channels: int, towers: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList(make_norm(channels // towers) for _ in range(towers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.chunk(len(self.norms), dim=1)
        return torch.cat([norm(part) for norm, part in zip(self.norms, parts, strict=True)], dim=1)


def alexnet_conv1_padding(image_size: int) -> int:
    """The smallest padding (0-2) that gives the published 55x55 conv1 map, else 0.

    The paper says 224x224 inputs, but its 55x55 conv1 map needs 227 (Caffe crops 227); a 224 input
    gets there with 2 pixels of padding.
    """
    for padding in range(3):
        if (image_size + 2 * padding - 11) // 4 + 1 == ALEXNET_MAP_SIDE:
            return padding
    return 0


def _side_after(layers: nn.Sequential, side: int) -> int:
    """Spatial side of the output of `layers` (square maps), from the conv and pool geometry alone."""
    for name, layer in layers.named_children():
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
            kernel, stride, padding = (v[0] if isinstance(v, tuple) else v
                                       for v in (layer.kernel_size, layer.stride, layer.padding))
            side = (side + 2 * padding - kernel) // stride + 1
            if side < 1:
                raise UserError(f"the images are too small for this AlexNet: {name} has no output left; "
                                "use larger images or model=alexnet_cifar.")
    return side


class AlexNet(nn.Module):
    """conv1 -> relu -> norm -> pool -> conv2/g -> relu -> norm -> pool -> conv3 -> conv4/g -> conv5/g -> pool
    -> fc6 -> fc7 -> fc8, where /g is a convolution grouped by tower.

    `norm_before_pool=False` swaps norm and pool in layers 1-2 (CaffeNet). With `tower_local_norm` each
    norm slot holds one norm per tower of `channels / towers` channels.
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, make_norm: NormFactory, *,
                 conv1: Conv1Geometry = (11, 4, 0),
                 conv_channels: Sequence[int] = (96, 256, 384, 384, 256),
                 fc_features: Sequence[int] = (4096, 4096), towers: int = 2, tower_local_norm: bool = True,
                 norm_before_pool: bool = True, overlapping_pool: bool = True, dropout: float = 0.5) -> None:
        super().__init__()
        self.towers, self.tower_local_norm = towers, tower_local_norm
        c1, c2, c3, c4, c5 = conv_channels
        kernel, stride, padding = conv1
        pool_kernel = 3 if overlapping_pool else 2

        def norm(channels: int) -> nn.Module:
            return TowerNorm(make_norm, channels, towers) if tower_local_norm else make_norm(channels)

        def norm_and_pool(i: int, channels: int) -> list[tuple[str, nn.Module]]:
            pair = [(f"norm{i}", norm(channels)), (f"pool{i}", nn.MaxPool2d(pool_kernel, 2))]
            return pair if norm_before_pool else pair[::-1]

        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(in_channels, c1, kernel, stride, padding)), ("relu1", nn.ReLU()),
            *norm_and_pool(1, c1),
            ("conv2", nn.Conv2d(c1, c2, 5, padding=2, groups=towers)), ("relu2", nn.ReLU()),
            *norm_and_pool(2, c2),
            ("conv3", nn.Conv2d(c2, c3, 3, padding=1)), ("relu3", nn.ReLU()),
            ("conv4", nn.Conv2d(c3, c4, 3, padding=1, groups=towers)), ("relu4", nn.ReLU()),
            ("conv5", nn.Conv2d(c4, c5, 3, padding=1, groups=towers)), ("relu5", nn.ReLU()),
            ("pool5", nn.MaxPool2d(pool_kernel, 2)),
        ]))
        side = _side_after(self.features, image_size)
        f6, f7 = fc_features
        # Dropout on the outputs of fc6 and fc7 (after their ReLU), as in the paper and Caffe's drop6/drop7;
        # torchvision instead drops the inputs of fc6 and fc7.
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(c5 * side * side, f6)), ("relu6", nn.ReLU()), ("drop6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(f6, f7)), ("relu7", nn.ReLU()), ("drop7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(f7, num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def _conv_part(conv: nn.Conv2d, tower: int, towers: int) -> nn.Conv2d:
    """`conv`'s output channels of one tower; a grouped conv reads only its tower's inputs, a full one all."""
    out = conv.out_channels // towers
    in_channels = conv.in_channels // towers if conv.groups == towers else conv.in_channels
    part = nn.Conv2d(in_channels, out, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None)
    rows = slice(tower * out, (tower + 1) * out)
    with torch.no_grad():
        part.weight.copy_(conv.weight[rows])
        if conv.bias is not None:
            part.bias.copy_(conv.bias[rows])
    return part


def _linear_part(linear: nn.Linear, tower: int, towers: int) -> nn.Linear:
    out = linear.out_features // towers
    part = nn.Linear(linear.in_features, out)
    rows = slice(tower * out, (tower + 1) * out)
    with torch.no_grad():
        part.weight.copy_(linear.weight[rows])
        part.bias.copy_(linear.bias[rows])
    return part


def _tower_layer(layer: nn.Module, tower: int, towers: int) -> nn.Module:
    if isinstance(layer, nn.Conv2d):
        return _conv_part(layer, tower, towers)
    if isinstance(layer, nn.Linear):
        return _linear_part(layer, tower, towers)
    if isinstance(layer, TowerNorm):
        return copy.deepcopy(layer.norms[tower])
    return copy.deepcopy(layer)  # ReLU, pooling, dropout: no weights, nothing across channels


def _stages(layers: nn.Sequential, starts: type[nn.Module]) -> list[list[nn.Module]]:
    """`layers` cut before every layer of type `starts` that reads all towers (a full conv or an fc)."""
    stages: list[list[nn.Module]] = []
    for layer in layers:
        if isinstance(layer, starts) and getattr(layer, "groups", 1) == 1:
            stages.append([])
        stages[-1].append(layer)
    return stages


class TowerPlacedAlexNet(nn.Module):
    """AlexNet with each tower's layers on its own device, the way the paper trained it on two GPUs.

    The towers exchange activations only where a layer reads both: at the input of conv3, fc6 and fc7;
    fc8 runs on the first device. Logits come back on the input's device. Built from a grouped AlexNet
    with `tower_local_norm` by `from_grouped`, it computes the same function with the same weights.
    """

    def __init__(self, stages: Sequence[Sequence[nn.Module]], head: nn.Module,
                 devices: Sequence[str | torch.device]) -> None:
        super().__init__()
        self.devices = [torch.device(d) for d in devices]
        self.stages = nn.ModuleList(nn.ModuleList(stage) for stage in stages)
        self.head = head
        self._place()

    @classmethod
    def from_grouped(cls, model: AlexNet, devices: Sequence[str | torch.device]) -> TowerPlacedAlexNet:
        """The tower-placed copy of `model`: each tower's slice of every weight, moved to its device."""
        if model.towers < 2 or not model.tower_local_norm or len(devices) != model.towers:
            raise ValueError("tower placement needs a grouped AlexNet with tower_local_norm and one device "
                             f"per tower; got towers={model.towers}, "
                             f"tower_local_norm={model.tower_local_norm}, {len(devices)} devices")
        fc_layers = list(model.classifier)
        conv_stages = _stages(model.features, nn.Conv2d)
        fc_stages = _stages(nn.Sequential(*fc_layers[:-1]), nn.Linear)
        fc_stages[0].insert(0, nn.Flatten())
        placed = [[nn.Sequential(*(_tower_layer(layer, t, model.towers) for layer in stage))
                   for t in range(model.towers)] for stage in conv_stages + fc_stages]
        return cls(placed, copy.deepcopy(fc_layers[-1]), devices)

    def _place(self) -> None:
        for stage in self.stages:
            for tower, device in zip(stage, self.devices, strict=True):
                tower.to(device)
        self.head.to(self.devices[0])

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> TowerPlacedAlexNet:
        # The trainer's model.to(device) would gather every tower on one device, and placement is the point
        # of this module: dtype changes apply, and each tower goes back to its own device.
        super()._apply(fn, recurse)
        self._place()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outputs = [x]
        for stage in self.stages:
            outputs = [tower(torch.cat([o.to(device) for o in outputs], dim=1))
                       for tower, device in zip(stage, self.devices, strict=True)]
        logits = self.head(torch.cat([o.to(self.devices[0]) for o in outputs], dim=1))
        return logits.to(x.device)


def _conv1_geometry(name: str, image_size: int) -> Conv1Geometry:
    if name == "alexnet":
        return 11, 4, alexnet_conv1_padding(image_size)
    return 5, 1, 2  # alexnet_cifar: a 32x32 image keeps its full resolution into pool1


def build_alexnet(name: str, image_size: int | None, conv_channels: Sequence[int], fc_features: Sequence[int],
                  towers: int, tower_local_norm: bool, norm_before_pool: bool, overlapping_pool: bool,
                  dropout: float, tower_devices: Sequence[str] | None, *, make_norm: NormFactory,
                  in_channels: int, input_size: int, num_classes: int) -> nn.Module:
    """`model=alexnet` or `model=alexnet_cifar` for the data's images, tower-placed if tower_devices is set.

    `image_size` is the input side the network is designed for; data of another size (`input_size`) is
    an error rather than a silent resize (None: build for whatever size the data has).
    """
    if image_size is not None and image_size != input_size:
        raise UserError(f"model={name} is built for {image_size}x{image_size} images but the dataset gives "
                        f"{input_size}x{input_size}; resize the data (dataset.image_size for imagefolder) or "
                        f"set model.image_size={input_size} (model=alexnet_cifar is AlexNet made for 32x32).")
    net = AlexNet(in_channels, input_size, num_classes, make_norm, conv1=_conv1_geometry(name, input_size),
                  conv_channels=conv_channels, fc_features=fc_features, towers=towers,
                  tower_local_norm=tower_local_norm and towers > 1, norm_before_pool=norm_before_pool,
                  overlapping_pool=overlapping_pool, dropout=dropout)
    return net if tower_devices is None else TowerPlacedAlexNet.from_grouped(net, list(tower_devices))
