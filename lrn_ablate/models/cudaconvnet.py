"""cuda-convnet's CIFAR-10 network of the AlexNet paper's LRN claim (layers-conv-local-13pct.cfg / -11pct.cfg).

conv1 (64 5x5, pad 2) -> ReLU -> norm -> max pool 3/2 -> conv2 (64 5x5, pad 2) -> ReLU -> norm -> max pool 3/2
-> local3 (32 3x3, pad 1, unshared weights) -> ReLU -> local4 (32 3x3, pad 1) -> ReLU -> fc -> classes.
Pooling rounds up as cuda-convnet does (24 -> 12 -> 6): ceil((side - 3) / 2) + 1 windows, the last one
clipped at the border. Sources, and where a choice was made: docs/cudaconvnet.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

NormFactory = Callable[[int], nn.Module]


def conv_output_side(side: int, kernel: int, padding: int, stride: int) -> int:
    return (side + 2 * padding - kernel) // stride + 1


class LocallyConnected2d(nn.Module):
    """A convolution whose weights differ at every output position (cuda-convnet's `type=local`).

    weight: (out_h, out_w, out_channels, in_channels, kh, kw); bias: (out_channels, out_h, out_w), one per
    output unit, as cuda-convnet's local layers have. The input must be `in_size` (an int or (h, w)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int],
                 in_size: int | tuple[int, int], padding: int = 0, stride: int = 1, bias: bool = True) -> None:
        super().__init__()
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else kernel_size
        in_h, in_w = (in_size, in_size) if isinstance(in_size, int) else in_size
        out_h, out_w = conv_output_side(in_h, kh, padding, stride), conv_output_side(in_w, kw, padding, stride)
        if out_h < 1 or out_w < 1:
            raise ValueError(f"a {kh}x{kw} locally connected layer has no output on {in_h}x{in_w} inputs")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.in_size, self.out_size = (kh, kw), (in_h, in_w), (out_h, out_w)
        self.padding, self.stride = padding, stride
        self.weight = nn.Parameter(torch.empty(out_h, out_w, out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels, out_h, out_w)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Each position's kernel as nn.Conv2d initialises one (Kaiming uniform over its fan-in).
        bound = 1 / (self.in_channels * self.kernel_size[0] * self.kernel_size[1]) ** 0.5
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.in_size:
            raise ValueError(f"LocallyConnected2d was built for {self.in_size} inputs, got {tuple(x.shape[-2:])}")
        (kh, kw), (out_h, out_w) = self.kernel_size, self.out_size
        patches = F.unfold(x, (kh, kw), padding=self.padding, stride=self.stride)  # (N, C*kh*kw, out_h*out_w)
        patches = patches.view(x.shape[0], self.in_channels, kh, kw, out_h, out_w)
        out = torch.einsum("ncpqij,ijocpq->noij", patches, self.weight)
        return out if self.bias is None else out + self.bias

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, in_size={self.in_size}, "
                f"padding={self.padding}, stride={self.stride}, bias={self.bias is not None}")


def pool_3x3_stride_2() -> nn.MaxPool2d:
    """cuda-convnet's max pooling (sizeX=3, stride=2, start=0, outputsX=0): ceil((side-3)/2)+1 windows."""
    return nn.MaxPool2d(3, stride=2, ceil_mode=True)


class CudaConvnet(nn.Module):
    """The layers-conv-local-13pct network; with a norm in its two slots, the first -11pct version."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, make_norm: NormFactory,
                 conv_channels: Sequence[int] = (64, 64), local_channels: Sequence[int] = (32, 32),
                 init_std: Sequence[float] | None = None) -> None:
        super().__init__()
        c1, c2 = conv_channels
        l3, l4 = local_channels
        self.conv1 = nn.Conv2d(in_channels, c1, 5, padding=2)
        self.norm1 = make_norm(c1)
        self.pool1 = pool_3x3_stride_2()
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.norm2 = make_norm(c2)
        self.pool2 = pool_3x3_stride_2()
        side = image_size
        for _ in range(2):  # each block: a size-keeping 5x5 conv, then the pooling
            side = -(-(side - 3) // 2) + 1
            if side < 3:
                raise ValueError(f"cuda-convnet's network needs images of at least 12x12, got {image_size}")
        self.local3 = LocallyConnected2d(c2, l3, 3, side, padding=1)
        self.local4 = LocallyConnected2d(l3, l4, 3, side, padding=1)
        self.fc = nn.Linear(l4 * side * side, num_classes)
        if init_std is not None:
            self.init_like_cuda_convnet(init_std)

    def init_like_cuda_convnet(self, init_std: Sequence[float]) -> None:
        """Weights ~ N(0, initW^2) per layer (conv1, conv2, local3, local4, fc: the layer file's initW),
        biases 0 (initB's default), as cuda-convnet's layer.py initialises them."""
        layers = (self.conv1, self.conv2, self.local3, self.local4, self.fc)
        for layer, std in zip(layers, init_std, strict=True):
            nn.init.normal_(layer.weight, 0.0, std)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.norm1(torch.relu(self.conv1(x))))
        x = self.pool2(self.norm2(torch.relu(self.conv2(x))))
        x = torch.relu(self.local4(torch.relu(self.local3(x))))
        return self.fc(x.flatten(1))
