"""Local response normalization in every published convention."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lrn_ablate.conf_checks import check_lrn


def channel_window(size: int, convention: str) -> tuple[int, int, float]:
    """(channels before c, channels after c, divisor of alpha) of the LRN window of each convention."""
    if convention == "pytorch":
        return size // 2, (size - 1) // 2, float(size)
    if convention in ("caffe", "article"):
        return size // 2, size // 2, float(size)
    return size // 2, size // 2, 1.0  # alexnet: the paper and TensorFlow do not divide alpha


class LocalResponseNorm(nn.Module):
    """b = a / (k + alpha' * sum over the window of a^2)^beta, out-of-range channels counting as zero."""

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0,
                 convention: str = "pytorch", region: str = "across") -> None:
        super().__init__()
        check_lrn(size, alpha, beta, k, convention, region)
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)
        self.convention, self.region = convention, region

    def extra_repr(self) -> str:
        return (f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}, "
                f"convention={self.convention}, region={self.region}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squared = x.float().square()
        if self.region == "within":
            pad = self.size // 2
            window_sum = F.avg_pool2d(squared, self.size, stride=1, padding=pad, count_include_pad=True)
            scale = self.k + self.alpha * window_sum
        else:
            before, after, divisor = channel_window(self.size, self.convention)
            padded = F.pad(squared, (0, 0, 0, 0, before, after))
            channels = x.shape[1]
            window_sum = sum(padded[:, i:i + channels] for i in range(before + after + 1))
            scale = self.k + (self.alpha / divisor) * window_sum
        return (x.float() * scale.pow(-self.beta)).to(x.dtype)
