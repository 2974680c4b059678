"""The Hydra task: one job of `lrn-ablate train`, which never lets a failure escape unrecorded."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from lrn_ablate.errors import UserError
from lrn_ablate.launch.checks import check_config
from lrn_ablate.launch.sweep import print_tally
from lrn_ablate.rundir import RunDir, changed_settings
from lrn_ablate.training.share import Share, share_from_launcher
from lrn_ablate.training.trainer import TRAINER

if TYPE_CHECKING:
    from lrn_ablate.training.distributed import Ranks


class OtherRun(UserError):
    """The run directory holds a run this job must not touch: the job is refused and the run left as it is."""


def _check_same_experiment(run_dir: RunDir, config: dict) -> None:
    if not run_dir.config.exists():
        return
    changed = changed_settings(OmegaConf.to_container(OmegaConf.load(run_dir.config)), config)
    if changed:
        raise OtherRun(f"run directory {run_dir.path} holds a run with other settings ({', '.join(changed)}); "
                        "continue it with `lrn-ablate train resume=<dir>` or pick another directory.")


def _start(cfg: DictConfig, run_dir: RunDir) -> bool:
    """Validate and write config.yaml; False when the run is already finished and resume=auto skips it."""
    config = OmegaConf.to_container(cfg, resolve=True)
    check_config(config)
    status = run_dir.read_summary().get("status")
    if run_dir.checkpoint.exists() and cfg.trainer.resume == "never":
        raise OtherRun(f"run directory {run_dir.path} already holds a run and trainer.resume=never; "
                        "use trainer.resume=auto to continue it or pick another directory.")
    if cfg.trainer.resume == "auto":
        _check_same_experiment(run_dir, config)
        if status == "completed":
            print(f"skipped {run_dir.path}: already completed", flush=True)
            return False
    run_dir.config.write_text(OmegaConf.to_yaml(config))
    return True


def _record_failure(run_dir: RunDir, message: str) -> None:
    summary = run_dir.read_summary()
    summary.update(status="failed", error=message)
    summary.setdefault("epochs_completed", 0)
    run_dir.write_summary(summary)


def exit_code(summary: dict) -> int:
    """0 for a completed run, 128 + N for one stopped by signal N (the shell's convention), else 1."""
    status = summary.get("status")
    return {"completed": 0, "interrupted": 128 + (summary.get("signal") or 0)}.get(status, 1)


def run_job(cfg: DictConfig) -> int | float | None:
    """Train one config into its run directory. A single run returns its exit code (see `exit_code`), with
    which RunOutcome ends the command. A job of a sweep returns its trainer.objective (a test accuracy) if
    it completed, else None, which Hydra's Optuna sweeper records as a failed trial; the basic and joblib
    launchers ignore it, and the sweep's exit code comes from the tally."""
    hydra = HydraConfig.get()
    if cfg.resume:
        run_dir = RunDir(Path(cfg.resume))
        cfg = OmegaConf.merge(OmegaConf.load(run_dir.config), {"trainer": {"resume": "auto"}})
    else:
        run_dir = RunDir(Path(hydra.runtime.output_dir))
    code = _run(cfg, run_dir, hydra)
    if hydra.mode != RunMode.MULTIRUN:
        return code
    return run_dir.read_summary().get(TRAINER.settings(cfg.trainer)["objective"]) if code == 0 else None


def _run(cfg: DictConfig, run_dir: RunDir, hydra: DictConfig) -> int:
    """Train into run_dir under its lock; returns the run's exit code (see `exit_code`). Under torchrun
    the other ranks follow rank 0: they train only if it does, and write nothing."""
    from lrn_ablate.training.distributed import Ranks
    from lrn_ablate.training.loop import train

    multirun = hydra.mode == RunMode.MULTIRUN
    group = f"{cfg.experiment_name}-{Path(hydra.sweep.dir).name}" if multirun else cfg.experiment_name
    ranks = Ranks.from_env()
    launcher = OmegaConf.to_container(hydra.launcher, resolve=True)
    share = ranks.share() if ranks.distributed else share_from_launcher(launcher, hydra.job.num if multirun else 0)
    if not ranks.main:
        return _follow(cfg, run_dir, group, share, ranks)
    try:
        run_dir.lock()
    except UserError as err:
        ranks.from_main(False)
        print(f"lrn-ablate train: error: {err}", file=sys.stderr, flush=True)
        return 1
    go: bool | None = None
    try:
        go = _start(cfg, run_dir)
        ranks.from_main(go)  # the other ranks train only if rank 0 does
        if not go:
            return 0
        summary = train(cfg, run_dir, group, share, ranks)
        _print_outcome(run_dir, summary)
        if summary["status"] == "interrupted" and multirun:
            # Ctrl-C or SIGTERM stops the whole sweep, not only this job (Hydra then skips its end callbacks).
            print_tally(Path(hydra.sweep.dir))
            raise SystemExit(exit_code(summary))
        return exit_code(summary)
    except UserError as err:
        if not isinstance(err, OtherRun):
            _record_failure(run_dir, str(err))
        print(f"lrn-ablate train: error: {err}", file=sys.stderr, flush=True)
    except Exception as err:  # noqa: BLE001 - any crash must end as a recorded failed run, not a lost one
        (run_dir.path / "error.log").write_text(traceback.format_exc())
        message = f"{type(err).__name__}: {err}"
        _record_failure(run_dir, message)
        print(f"lrn-ablate train: run failed with {message} (traceback in {run_dir.path / 'error.log'})",
              file=sys.stderr, flush=True)
    finally:
        if go is None:
            ranks.from_main(False)  # _start failed: release the ranks waiting for its answer
        run_dir.unlock()
    return 1


def _follow(cfg: DictConfig, run_dir: RunDir, group: str, share: Share, ranks: Ranks) -> int:
    """A rank other than 0: train beside rank 0 if it trains; it alone writes, records and reports."""
    from lrn_ablate.training.loop import train

    if not ranks.from_main(None):
        return 0
    try:
        return exit_code(train(cfg, run_dir, group, share, ranks))
    except UserError as err:
        # A setting every rank meets, rank 0 has said; a file in this rank's share only, this rank must say.
        print(f"lrn-ablate train: error on rank {ranks.rank}: {err}", file=sys.stderr, flush=True)
        return 1


def _print_outcome(run_dir: RunDir, summary: dict) -> None:
    status, epochs = summary["status"], summary["epochs_completed"]
    if status == "completed":
        print(f"completed {epochs} epochs: test accuracy {summary['final_test_acc']:.4f} "
              f"(best {summary['best_test_acc']:.4f} at epoch {summary['best_epoch']}) -> {run_dir.path}", flush=True)
    elif status == "diverged":
        where = summary["diverged_at"]
        print(f"diverged: non-finite loss at epoch {where['epoch']}, step {where['step']} -> {run_dir.path}",
              file=sys.stderr, flush=True)
    else:
        print(f"{status} after {epochs} epochs; continue with `lrn-ablate train resume={run_dir.path}`",
              file=sys.stderr, flush=True)
