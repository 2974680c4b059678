"""One optimisation step and one evaluation pass, under the precision the trainer asks for."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager

import torch
import torch.nn.functional as F

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# (images, labels, loss weight) -> (mean loss, number correct); the weight scales the gradient only.
Step = Callable[[torch.Tensor, torch.Tensor, float], tuple[torch.Tensor, torch.Tensor]]


def autocast(device: torch.device, precision: str) -> AbstractContextManager:
    dtype = PRECISIONS[precision]
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def make_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    device: torch.device, precision: str) -> Step:
    """A step returning (loss, number correct) as tensors, so the device never waits on the host."""

    def step(images: torch.Tensor, labels: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(device, precision):
            logits = model(images)
            loss = F.cross_entropy(logits.float(), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss * weight).backward()
        scaler.step(optimizer)
        scaler.update()
        return loss.detach(), (logits.argmax(dim=1) == labels).sum()

    return step


def _alone(sums: torch.Tensor) -> torch.Tensor:
    return sums


@torch.inference_mode()
def evaluate(model: torch.nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device, precision: str,
             total: Callable[[torch.Tensor], torch.Tensor] = _alone) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) over every image the batches hold, and with `total` (which sums over
    the ranks of a torchrun run) over every rank's batches.

    Each batch is (views, N, C, H, W). With one view the loss is the cross-entropy of the logits; with
    several (cuda-convnet's multiview test) the softmax outputs are averaged over the views first."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    for views, labels in batches:
        with autocast(device, precision):
            logits = model(views.flatten(0, 1)).float().view(*views.shape[:2], -1)
        if views.shape[0] == 1:
            scores = logits[0]
            loss_sum += F.cross_entropy(scores, labels, reduction="sum").double()
        else:
            scores = logits.softmax(dim=2).mean(dim=0)
            loss_sum += F.nll_loss(scores.log(), labels, reduction="sum").double()
        correct += (scores.argmax(dim=1) == labels).sum()
        seen += labels.shape[0]
    model.train()
    loss_sum, correct, seen = total(torch.stack([loss_sum, correct.double(), torch.tensor(float(seen),
                                                 dtype=torch.float64, device=device)])).tolist()
    return loss_sum / seen, correct / seen
