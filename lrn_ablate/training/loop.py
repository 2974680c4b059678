"""One training run of (model, norm, dataset), written to its run directory as it goes."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import lrn_ablate
from lrn_ablate.data import DATASETS, build_dataset
from lrn_ablate.data.batches import BatchPlan, TrainBatches
from lrn_ablate.models import build_model
from lrn_ablate.optim import build_optimizer
from lrn_ablate.rundir import RunDir
from lrn_ablate.training.checkpoint import Position, load_checkpoint, save_checkpoint
from lrn_ablate.training.distributed import Ranks
from lrn_ablate.training.logger import open_logger
from lrn_ablate.training.runtime import (
    describe_device,
    keep_freed_memory,
    machine_name,
    pick_device,
    seed_everything,
    set_threads,
)
from lrn_ablate.training.share import Share
from lrn_ablate.training.signals import StopRequest
from lrn_ablate.training.steps import Step, evaluate, make_train_step
from lrn_ablate.training.trainer import TRAINER


@dataclass
class EpochResult:
    position: Position  # where the epoch stopped: a full epoch, or mid-epoch when a signal came
    loss: float
    accuracy: float
    seconds: float
    diverged_step: int | None = None
    signal: int = 0  # the signal that stopped the epoch early (under torchrun: that any rank received)


def train_epoch(step: Step, batches: TrainBatches, epoch: int, start: Position, stop: StopRequest,
                show_progress: bool, ranks: Ranks) -> EpochResult:
    """Run `epoch` from `start.step`; stop early after the step during which a signal arrived. Under
    torchrun each rank trains on its share of every batch, which `batches` gives it."""
    device, steps = batches.device, len(batches)
    losses = start.partial.get("losses", torch.zeros(steps, dtype=torch.float64)).to(device)
    correct = start.partial.get("correct", torch.zeros(steps, dtype=torch.int64)).to(device)
    sizes = start.partial.get("sizes", torch.zeros(steps, dtype=torch.int64)).to(device)
    began = time.perf_counter() - start.partial.get("seconds", 0.0)
    check_every, checked = (1 if device.type == "cpu" else 50), start.step  # a host sync costs a GPU step
    bar = tqdm(total=steps, initial=start.step, desc=f"epoch {epoch}", leave=False, disable=not show_progress)
    done = start.step
    signal = 0
    for done, (images, labels) in enumerate(batches.epoch(epoch, start.step), start=start.step + 1):
        # DDP averages the ranks' gradients; weighting each rank's mean loss by its share of the batch
        # makes that the gradient of the whole batch's mean loss, also when the shares differ.
        weight = ranks.world * len(labels) / batches.batch_length(done)
        losses[done - 1], correct[done - 1] = step(images, labels, weight)
        sizes[done - 1] = labels.shape[0]
        bar.update()
        # Under torchrun the ranks check at the same steps only, and agree (a signal reaches them apart).
        if done % check_every == 0 or done == steps or (stop.signum and not ranks.distributed):
            bad = (~torch.isfinite(losses[checked:done])).nonzero()
            first_bad = checked + int(bad[0]) + 1 if len(bad) else steps + 1
            minus_first_bad, signal = ranks.largest([-first_bad, stop.signum or 0])
            if -minus_first_bad <= steps:
                bar.close()
                return EpochResult(start, math.nan, math.nan, 0.0, diverged_step=-minus_first_bad)
            checked = done
        if signal and done < steps:
            break
    bar.close()
    seconds = time.perf_counter() - began
    # Whole-batch sums: each step's mean loss times its size, correct counts and sizes, over the ranks.
    loss_sums, correct, sizes = ranks.total(torch.stack([losses * sizes, correct.double(), sizes.double()]))
    if done < steps:
        partial = {"losses": (loss_sums / sizes.clamp(min=1)).cpu(), "correct": correct.long().cpu(),
                   "sizes": sizes.long().cpu(), "seconds": seconds}
        return EpochResult(Position(epoch - 1, done, partial), math.nan, math.nan, seconds, signal=signal)
    seen = float(sizes.sum())
    return EpochResult(Position(epoch), float(loss_sums.sum() / seen), float(correct.sum()) / seen, seconds)


def train(cfg: DictConfig, run_dir: RunDir, group: str, share: Share, ranks: Ranks) -> dict[str, Any]:
    """Train (or continue) the run in `run_dir` with its `share` of the machine; returns its final summary.
    Under torchrun every rank runs this, and only rank 0 writes."""
    trainer, trainer_settings = cfg.trainer, TRAINER.settings(cfg.trainer)
    device = pick_device(trainer.device, share)
    set_threads(trainer.threads, share)
    keep_freed_memory()
    seed_everything(cfg.seed, trainer.deterministic, device)
    data = build_dataset(cfg.dataset)
    dataset = DATASETS.settings(cfg.dataset)  # crop_size and test_views at their defaults when left out
    side = dataset["crop_size"] or data.image_size  # what the model sees: the images, or patches of them
    model = build_model(cfg.model, cfg.norm, data.channels, side, data.num_classes).to(device)
    if trainer.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if trainer_settings["sync_bn"]:
        model = ranks.synchronize_batchnorm(model, device)
    optimizer, scheduler = build_optimizer(cfg.optim, model.named_parameters(), trainer.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.precision == "fp16")
    plan = BatchPlan(trainer.batch_size, trainer.eval_batch_size, dataset["augment"], dataset["crop_size"],
                     dataset["test_views"], cfg.seed, device, trainer.channels_last)
    train_batches, test_batches = data.batches(plan, ranks.shard)
    ranks.check_shares(train_batches.batch_length(len(train_batches)))
    position = Position()
    if run_dir.checkpoint.exists():
        position = load_checkpoint(run_dir.checkpoint, model, optimizer, scheduler, scaler)
        if not ranks.main:  # the saved partial epoch holds every rank's sums: rank 0 alone continues them
            position = Position(position.epochs_done, position.step)
    if ranks.main:
        run_dir.reset_metrics(keep_epochs=position.epochs_done)
    history = [float(row["test_acc"]) for row in run_dir.read_metrics()]
    forward = ranks.data_parallel(model, device)
    forward = torch.compile(forward) if trainer.compile else forward
    step = make_train_step(forward, optimizer, scaler, device, trainer.precision)
    summary = {**run_dir.read_summary(), "status": "running", "epochs_planned": trainer.epochs,
               "device": describe_device(device), "machine": machine_name(device),
               "num_params": sum(p.numel() for p in model.parameters()), "world_size": ranks.world,
               "torch_version": torch.__version__, "lrn_ablate_version": lrn_ablate.__version__,
               "error": None, "diverged_at": None}
    summary.setdefault("wall_seconds", 0.0)
    wall_before, session_start = summary["wall_seconds"], time.perf_counter()

    def record(status: str, **extra: Any) -> dict[str, Any]:
        best = max(range(len(history)), key=history.__getitem__) if history else None
        summary.update(status=status, epochs_completed=len(history), **extra,
                       final_test_acc=history[-1] if history else None,
                       best_test_acc=history[best] if history else None,
                       best_epoch=None if best is None else best + 1,
                       wall_seconds=wall_before + time.perf_counter() - session_start)
        if ranks.main:
            run_dir.write_summary(summary)
        return summary

    def checkpoint(position: Position) -> None:
        if ranks.main:
            save_checkpoint(run_dir.checkpoint, model, optimizer, scheduler, scaler, position)

    record("running")
    logger = open_logger(cfg.logger if ranks.main else {"name": "none"}, OmegaConf.to_container(cfg, resolve=True),
                         run_dir.path, group, run_dir.path.name)
    show_progress = trainer.progress and sys.stderr.isatty() and ranks.main
    try:
        with StopRequest() as stop:
            for epoch in range(position.epochs_done + 1, trainer.epochs + 1):
                ranks.seed_dropout(cfg.seed, epoch)
                result = train_epoch(step, train_batches, epoch, position, stop, show_progress, ranks)
                if result.diverged_step is not None:
                    return record("diverged", diverged_at={"epoch": epoch, "step": result.diverged_step})
                if result.position.epochs_done < epoch:
                    checkpoint(result.position)
                    return record("interrupted", signal=result.signal)
                eval_start = time.perf_counter()
                ranks.share_buffers(model)
                test_loss, test_acc = evaluate(model, test_batches, device, trainer.precision, ranks.total)
                row = {"epoch": epoch, "train_loss": result.loss, "train_acc": result.accuracy,
                       "test_loss": test_loss, "test_acc": test_acc, "lr": optimizer.param_groups[0]["lr"],
                       "epoch_seconds": result.seconds, "images_per_second": len(data.train_labels) / result.seconds,
                       "eval_seconds": time.perf_counter() - eval_start}
                scheduler.step()
                position = result.position
                if ranks.main:
                    run_dir.append_metrics(row)  # before the checkpoint: a kill in between re-runs this epoch
                checkpoint(position)
                history.append(test_acc)
                logger.log(row)
                record("running")
                [signal] = ranks.largest([stop.signum or 0])
                if signal:
                    return record("interrupted", signal=signal)
        return record("completed")
    finally:
        logger.finish(summary)  # also when an exception escapes: the W&B run is closed, never left open
