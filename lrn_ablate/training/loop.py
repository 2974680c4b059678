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
from lrn_ablate.data.batches import EvalBatches, TrainBatches
from lrn_ablate.models import build_model
from lrn_ablate.optim import build_optimizer
from lrn_ablate.rundir import RunDir
from lrn_ablate.training.checkpoint import Position, load_checkpoint, save_checkpoint
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


@dataclass
class EpochResult:
    position: Position  # where the epoch stopped: a full epoch, or mid-epoch when a signal came
    loss: float
    accuracy: float
    seconds: float
    diverged_step: int | None = None


def train_epoch(step: Step, batches: TrainBatches, epoch: int, start: Position, stop: StopRequest,
                show_progress: bool) -> EpochResult:
    """Run `epoch` from `start.step`; stop early after the step during which a signal arrived."""
    device, steps = batches.device, len(batches)
    losses = start.partial.get("losses", torch.zeros(steps, dtype=torch.float64)).to(device)
    correct = start.partial.get("correct", torch.zeros(steps, dtype=torch.int64)).to(device)
    sizes = start.partial.get("sizes", torch.zeros(steps, dtype=torch.int64)).to(device)
    began = time.perf_counter() - start.partial.get("seconds", 0.0)
    check_every, checked = (1 if device.type == "cpu" else 50), start.step  # a host sync costs a GPU step
    bar = tqdm(total=steps, initial=start.step, desc=f"epoch {epoch}", leave=False, disable=not show_progress)
    done = start.step
    for done, (images, labels) in enumerate(batches.epoch(epoch, start.step), start=start.step + 1):
        losses[done - 1], correct[done - 1] = step(images, labels)
        sizes[done - 1] = labels.shape[0]
        bar.update()
        if done % check_every == 0 or done == steps or stop.signum:
            bad = (~torch.isfinite(losses[checked:done])).nonzero()
            if len(bad):
                bar.close()
                return EpochResult(start, math.nan, math.nan, 0.0, diverged_step=checked + int(bad[0]) + 1)
            checked = done
        if stop.signum and done < steps:
            break
    bar.close()
    seconds, seen = time.perf_counter() - began, int(sizes.sum())
    if done < steps:
        partial = {"losses": losses.cpu(), "correct": correct.cpu(), "sizes": sizes.cpu(), "seconds": seconds}
        return EpochResult(Position(epoch - 1, done, partial), math.nan, math.nan, seconds)
    loss = float((losses * sizes).sum() / seen)
    return EpochResult(Position(epoch), loss, int(correct.sum()) / seen, seconds)


def train(cfg: DictConfig, run_dir: RunDir, group: str, share: Share) -> dict[str, Any]:
    """Train (or continue) the run in `run_dir` with its `share` of the machine; returns its final summary."""
    trainer = cfg.trainer
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
    optimizer, scheduler = build_optimizer(cfg.optim, model.named_parameters(), trainer.epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.precision == "fp16")
    mean, std = data.channel_stats()
    train_batches = TrainBatches(data.train_images, data.train_labels, mean, std, trainer.batch_size,
                                 dataset["augment"], cfg.seed, device, trainer.channels_last, dataset["crop_size"])
    test_batches = EvalBatches(data.test_images, data.test_labels, mean, std, trainer.eval_batch_size,
                               device, trainer.channels_last, dataset["crop_size"], dataset["test_views"])
    position = Position()
    if run_dir.checkpoint.exists():
        position = load_checkpoint(run_dir.checkpoint, model, optimizer, scheduler, scaler)
    run_dir.reset_metrics(keep_epochs=position.epochs_done)
    history = [float(row["test_acc"]) for row in run_dir.read_metrics()]
    forward = torch.compile(model) if trainer.compile else model
    step = make_train_step(forward, optimizer, scaler, device, trainer.precision)
    summary = {**run_dir.read_summary(), "status": "running", "epochs_planned": trainer.epochs,
               "device": describe_device(device), "machine": machine_name(device),
               "num_params": sum(p.numel() for p in model.parameters()),
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
        run_dir.write_summary(summary)
        return summary

    record("running")
    logger = open_logger(cfg.logger, OmegaConf.to_container(cfg, resolve=True), run_dir.path, group,
                         run_dir.path.name)
    show_progress = trainer.progress and sys.stderr.isatty()
    try:
        with StopRequest() as stop:
            for epoch in range(position.epochs_done + 1, trainer.epochs + 1):
                result = train_epoch(step, train_batches, epoch, position, stop, show_progress)
                if result.diverged_step is not None:
                    return record("diverged", diverged_at={"epoch": epoch, "step": result.diverged_step})
                if result.position.epochs_done < epoch:
                    save_checkpoint(run_dir.checkpoint, model, optimizer, scheduler, scaler, result.position)
                    return record("interrupted", signal=stop.signum)
                eval_start = time.perf_counter()
                test_loss, test_acc = evaluate(model, test_batches, device, trainer.precision)
                row = {"epoch": epoch, "train_loss": result.loss, "train_acc": result.accuracy,
                       "test_loss": test_loss, "test_acc": test_acc, "lr": optimizer.param_groups[0]["lr"],
                       "epoch_seconds": result.seconds, "images_per_second": len(data.train_labels) / result.seconds,
                       "eval_seconds": time.perf_counter() - eval_start}
                scheduler.step()
                position = result.position
                run_dir.append_metrics(row)  # before the checkpoint: a kill in between re-runs this epoch
                save_checkpoint(run_dir.checkpoint, model, optimizer, scheduler, scaler, position)
                history.append(test_acc)
                logger.log(row)
                record("running")
                if stop.signum:
                    return record("interrupted", signal=stop.signum)
        return record("completed")
    finally:
        logger.finish(summary)  # also when an exception escapes: the W&B run is closed, never left open
