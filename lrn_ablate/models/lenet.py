"""LeNet of the LRN blog experiment (Original_LeNet), with the article's two norm slots."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from lrn_ablate.models.pool import MaxPool2x2

NormFactory = Callable[[int], nn.Module]


class LeNet(nn.Module):
    """conv 5x5 -> norm -> ReLU -> pool 2 -> conv 5x5 -> ReLU -> norm -> pool 2 -> fc -> fc -> fc.

    The first norm sits before its ReLU and the second after it, where the article puts LRN.
    """

    def __init__(self, in_channels: int, image_size: int, num_classes: int, make_norm: NormFactory,
                 conv_channels: Sequence[int] = (6, 16), fc_features: Sequence[int] = (120, 84)) -> None:
        super().__init__()
        c1, c2 = conv_channels
        self.conv1 = nn.Conv2d(in_channels, c1, 5)
        self.norm1 = make_norm(c1)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.norm2 = make_norm(c2)
        self.pool = MaxPool2x2()
        side = ((image_size - 4) // 2 - 4) // 2
        if side < 1:
            raise ValueError(f"LeNet needs images of at least 16x16 pixels, got {image_size}x{image_size}")
        widths = [c2 * side * side, *fc_features]
        self.fc = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:], strict=False))
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(torch.relu(self.norm1(self.conv1(x))))
        x = self.pool(self.norm2(torch.relu(self.conv2(x))))
        x = x.flatten(1)
        for layer in self.fc:
            x = torch.relu(layer(x))
        return self.head(x)
