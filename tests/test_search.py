"""Searches on Hydra's Optuna sweeper (hydra/sweeper=optuna_accuracy): a trial returns its test accuracy,
a diverged trial counts as failed without stopping the search, a killed search re-run continues, and the best
value is the best run's."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
import yaml
from conftest import cli_command, offline_env, read_summary, run_cli


@pytest.mark.slow
def test_a_three_trial_search_killed_and_rerun_writes_the_best_runs_value(workdir) -> None:
    sweep_dir = workdir / "search"
    # Seed 5 of the random sampler draws lr 1e5 (which diverges) once and 0.05 twice, with alpha from a log
    # interval: one failed trial before two completed ones. (Draws as Optuna 2.10's RandomSampler makes
    # them; another Optuna may draw otherwise, and the counts below would say so.)
    command = cli_command() + ["train", "-m", "hydra/sweeper=optuna_accuracy", "hydra/sweeper/sampler=random",
                               "hydra.sweeper.sampler.seed=5", "hydra.sweeper.n_trials=3", "norm=lrn",
                               "optim.lr=choice(0.05, 100000.0)", "norm.alpha=tag(log, interval(1e-5, 1e-1))",
                               "dataset=digits", "trainer.epochs=2", "logger=none", f"hydra.sweep.dir={sweep_dir}"]
    # Killed (SIGTERM) once the second trial has completed; the seeded sampler draws the same settings again,
    # so the re-run hands Optuna the finished trials' values and trains only what is left.
    first = subprocess.Popen(command, cwd=workdir, env=offline_env(workdir), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    second_trial = sweep_dir / "1" / "summary.json"
    deadline = time.monotonic() + 180
    while first.poll() is None and not (second_trial.exists() and read_summary(second_trial.parent)["status"]
                                        == "completed"):
        assert time.monotonic() < deadline, "the second trial did not complete"
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    first.wait(timeout=60)
    finished = (sweep_dir / "1" / "metrics.csv").stat().st_mtime_ns

    result = run_cli(command[len(cli_command()):], cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert f"skipped {sweep_dir / '1'}: already completed" in result.stdout
    assert (sweep_dir / "1" / "metrics.csv").stat().st_mtime_ns == finished
    assert f"sweep finished: 3 runs, 2 completed, 1 diverged, 0 failed ({sweep_dir})" in result.stdout

    runs = {path.parent: read_summary(path.parent) for path in sweep_dir.glob("*/summary.json")}
    completed = {run: summary for run, summary in runs.items() if summary["status"] == "completed"}
    best_run = max(completed, key=lambda run: completed[run]["final_test_acc"])
    best_config = yaml.safe_load((best_run / "config.yaml").read_text())
    assert best_config["optim"]["lr"] == 0.05 and 1e-5 <= best_config["norm"]["alpha"] <= 1e-1

    found = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert found["best_value"] == completed[best_run]["final_test_acc"]
    assert found["best_params"] == {"optim.lr": 0.05, "norm.alpha": best_config["norm"]["alpha"]}

    report = run_cli(["report", str(sweep_dir), "--out", str(workdir / "report")], cwd=workdir)
    assert report.returncode == 0, report.stderr
    assert "found 3 runs in 3 groups (2 completed, 1 diverged)" in report.stderr


def test_interval_sweeps_are_checked_at_both_ends() -> None:
    from lrn_ablate.errors import UserError
    from lrn_ablate.launch.precheck import check_overrides

    search = ["hydra/sweeper=optuna_accuracy", "norm=lrn"]
    check_overrides([*search, "norm.alpha=tag(log, interval(1e-5, 1e-1))", "norm.beta=interval(0.5, 1.0)"])
    with pytest.raises(UserError, match=r"norm.beta must be a number >= 0, got -0.5"):
        check_overrides([*search, "norm.beta=interval(-0.5, 1.0)"])
    with pytest.raises(UserError, match=r"norm.k must be a finite number, got inf"):
        check_overrides([*search, "norm.k=interval(0, 1e400)"])
