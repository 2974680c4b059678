"""Sweeps on Hydra's joblib and submitit launchers: jobs side by side, each with its share of the cores or its
own GPU."""

from __future__ import annotations

import pytest
from conftest import read_metrics, read_summary, run_cli

from lrn_ablate.training.share import Share, share_from_launcher, usable_cores

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
SUBMITIT_LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"


def test_auto_threads_split_the_cores_between_parallel_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("lrn_ablate.training.share.usable_cores", lambda: 8)
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": 2}, 0).threads("auto") == 4
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": 3}, 0).threads("auto") == 2
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": 16}, 0).threads("auto") == 1
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": -1}, 0).threads("auto") == 1  # joblib: every core
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": -5}, 0).threads("auto") == 2  # all but four
    assert share_from_launcher({"_target_": JOBLIB, "n_jobs": 2}, 0).threads(3) == 3  # a number is kept
    assert share_from_launcher({"_target_": BASIC}, 5).threads("auto") is None  # one job: torch's default
    # submitit: each job is a process of its own, with the cores the launcher asked for.
    assert share_from_launcher({"_target_": SUBMITIT_LOCAL, "cpus_per_task": 3}, 0).threads("auto") == 3
    assert share_from_launcher({"_target_": SLURM, "cpus_per_task": None}, 0).threads("auto") is None
    assert share_from_launcher({"_target_": SLURM, "cpus_per_task": 8}, 0).threads(2) == 2


def test_auto_device_gives_each_parallel_job_its_own_gpu() -> None:
    jobs = [share_from_launcher({"_target_": JOBLIB, "n_jobs": 4}, num) for num in range(5)]
    assert [share.device("auto", gpus=4) for share in jobs] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0"]
    assert [share.device("auto", gpus=2) for share in jobs[:3]] == ["cuda:0", "cuda:1", "cuda:0"]
    assert jobs[3].device("auto", gpus=1) == "cuda"
    assert jobs[3].device("auto", gpus=0) == "cpu"
    assert jobs[3].device("cuda:1", gpus=4) == "cuda:1"  # an explicit device is kept
    assert Share(slot=3).device("auto", gpus=4) == "cuda"  # jobs one at a time: the default GPU


@pytest.mark.slow
def test_joblib_sweep_runs_jobs_side_by_side_and_matches_the_basic_launcher(workdir) -> None:
    sweep = ["train", "-m", "dataset=digits", "trainer.epochs=2", "norm=none,lrn", "logger=none",
             "trainer.deterministic=true"]
    parallel = run_cli([*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                        f"hydra.sweep.dir={workdir / 'joblib'}"], cwd=workdir)
    assert parallel.returncode == 0, parallel.stderr
    assert "is launching 2 jobs" in parallel.stdout + parallel.stderr
    assert f"sweep finished: 2 runs, 2 completed, 0 failed ({workdir / 'joblib'})" in parallel.stdout
    threads = max(1, usable_cores() // 2)
    for job in ("0", "1"):
        assert read_summary(workdir / "joblib" / job)["device"] == f"cpu ({threads} threads)"

    # The basic launcher, one job after the other with the same thread count, computes the same epochs.
    serial = run_cli([*sweep, f"trainer.threads={threads}", f"hydra.sweep.dir={workdir / 'basic'}"], cwd=workdir)
    assert serial.returncode == 0, serial.stderr
    for job in ("0", "1"):
        assert read_metrics(workdir / "joblib" / job)[-1]["test_acc"] == read_metrics(workdir / "basic" / job)[-1][
            "test_acc"]

    # Re-running the parallel sweep skips the finished jobs.
    again = run_cli([*sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     f"hydra.sweep.dir={workdir / 'joblib'}"], cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already completed") == 2

    # submitit's local launcher runs each job in a process of its own, with cpus_per_task threads: the
    # same epochs again, and a re-run leaves the finished runs as they are.
    submitit = [*sweep, "hydra/launcher=submitit_local", f"hydra.launcher.cpus_per_task={threads}",
                f"hydra.sweep.dir={workdir / 'submitit'}"]
    local = run_cli(submitit, cwd=workdir)
    assert local.returncode == 0, local.stderr
    assert f"sweep finished: 2 runs, 2 completed, 0 failed ({workdir / 'submitit'})" in local.stdout
    for job in ("0", "1"):
        assert read_summary(workdir / "submitit" / job)["device"] == f"cpu ({threads} threads)"
        assert read_metrics(workdir / "submitit" / job)[-1]["test_acc"] == read_metrics(workdir / "basic" / job)[-1][
            "test_acc"]
    written = [(workdir / "submitit" / job / "metrics.csv").stat().st_mtime_ns for job in ("0", "1")]
    local_again = run_cli(submitit, cwd=workdir)
    assert local_again.returncode == 0, local_again.stderr
    assert [(workdir / "submitit" / job / "metrics.csv").stat().st_mtime_ns for job in ("0", "1")] == written


def test_the_slurm_preset_requeues_timed_out_jobs() -> None:
    from hydra import compose, initialize_config_module

    with initialize_config_module(config_module="lrn_ablate.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                      return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == SLURM
    assert launcher.partition == "gpu" and launcher.gpus_per_task == 1 and launcher.cpus_per_task == 8
    # USR2 comes signal_delay_s before the limit; submitit requeues a job up to max_num_timeout times.
    assert launcher.signal_delay_s > 0 and launcher.max_num_timeout > 0
    assert cfg.trainer.resume == "auto"  # what makes a requeued job continue from its checkpoint
    assert share_from_launcher(dict(launcher), 0).threads("auto") == 8
