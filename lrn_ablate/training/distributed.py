"""One run on several processes, started by torchrun: which rank this process is, and the few collectives
the loop needs.

`torchrun --nproc_per_node=N --no-python lrn-ablate train ...` starts N copies of the command with RANK,
WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE set. Every rank draws the same order and random choices for
the global batch (seeded by (seed, epoch, step), not by the rank), fetches and augments only its contiguous
share of it, and DDP sums the gradients, each rank's loss weighted by its share, so a step is the
single-process step of the global batch (but for dropout, whose masks each rank draws for its own share).
Evaluation is sharded the same way and its sums reduced. Rank 0 alone writes the run directory and the
W&B run; the others only read its checkpoint when a run continues.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from lrn_ablate.errors import UserError
from lrn_ablate.training.share import Share


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @classmethod
    def from_env(cls) -> Ranks:
        """This process's place among the processes torchrun started (one process of one: not launched so)."""
        env = os.environ
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)),
                   int(env.get("LOCAL_WORLD_SIZE", 1)))

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        """The one rank that writes."""
        return self.rank == 0

    def share(self) -> Share:
        """This rank's share of its node: cores / local ranks threads and, with several GPUs, its own GPU."""
        return Share(parallel_jobs=self.local_world, slot=self.local_rank)

    def synchronize_batchnorm(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """trainer.sync_bn: BatchNorm over the whole batch, not each rank's share of it (no-op alone)."""
        if not self.distributed:
            return model
        if device.type != "cuda":
            raise UserError("trainer.sync_bn=true needs GPUs: PyTorch's SyncBatchNorm runs on CUDA only (on the "
                            "CPU each rank normalizes over its own share of the batch; drop the setting).")
        return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)

    def data_parallel(self, model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
        """The model to train: under DDP, which starts every rank from rank 0's weights and averages the
        gradients in backward; alone, the model itself."""
        if not self.distributed:
            return model
        gpu = [device.index if device.index is not None else torch.cuda.current_device()] if device.type == "cuda" \
            else None
        return DistributedDataParallel(model, device_ids=gpu)

    def check_shares(self, last_batch: int) -> None:
        """Every rank needs an image of every batch: an empty share has no mean loss (nor BatchNorm statistics)."""
        if self.distributed and last_batch < self.world:
            raise UserError(f"the last batch of an epoch holds {last_batch} images, fewer than the {self.world} "
                            "ranks; choose a trainer.batch_size that leaves at least as many images as ranks (or "
                            "none) over.")

    def seed_dropout(self, seed: int, epoch: int) -> None:
        """Each rank's own random stream for `epoch`: dropout masks differ between the ranks' shares (with one
        seed every rank would draw the same masks), and a resumed epoch draws what it first drew."""
        if self.distributed:
            torch.manual_seed((seed * 1_000_003 + epoch) * 1_000_003 + self.rank)

    def share_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) on every rank: each rank updated its own from its
        share in the last step, and all must evaluate the model rank 0 saves."""
        if self.distributed:
            for buffer in model.buffers():
                dist.broadcast(buffer, src=0)

    def shard(self, tensor: torch.Tensor) -> torch.Tensor:
        """This rank's contiguous part of `tensor`'s first dimension (parts differ in size by at most one)."""
        return tensor.tensor_split(self.world)[self.rank] if self.distributed else tensor

    def total(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum of `tensor` over the ranks (in place)."""
        if self.distributed:
            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def largest(self, values: list[int]) -> list[int]:
        """Each of `values`, the largest any rank holds: what every rank then acts on, so that all stop at
        the same step and none waits forever in a collective the others have left."""
        if not self.distributed:
            return values
        tensor = torch.tensor(values, dtype=torch.int64)  # on the CPU: gloo, also beside NCCL
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return tensor.tolist()

    def from_main(self, value: Any) -> Any:
        """Rank 0's `value`, on every rank."""
        if not self.distributed:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join_torchrun() -> Ranks:
    """Under torchrun, join the other ranks: gloo for CPU tensors, NCCL for CUDA ones when there are GPUs.
    A plain process is a world of one and joins nothing."""
    ranks = Ranks.from_env()
    if not ranks.distributed or dist.is_initialized():
        return ranks
    gpus = torch.cuda.is_available() and dist.is_nccl_available()
    if gpus:
        torch.cuda.set_device(ranks.local_rank % torch.cuda.device_count())
    dist.init_process_group("cpu:gloo,cuda:nccl" if gpus else "gloo")
    return ranks
