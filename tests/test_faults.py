"""Faults: killed runs resume bit for bit, signals stop cleanly, a sweep survives a bad job."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import cli_command, offline_env, read_metrics, read_summary, run_cli

# Enough steps that a kill lands at many different moments: startup, mid-epoch, checkpoint writes.
EPOCHS = 3
DETERMINISTIC_RUN = ["dataset=digits", f"trainer.epochs={EPOCHS}", "norm=lrn", "trainer.deterministic=true",
                     "logger=none", "trainer.batch_size=8", "seed=3"]
TIMING_COLUMNS = ("epoch_seconds", "images_per_second", "eval_seconds")


def train_into(run_dir: Path, cwd: Path, extra: list[str] = ()) -> subprocess.Popen:
    return subprocess.Popen([*cli_command(), "train", *DETERMINISTIC_RUN, f"hydra.run.dir={run_dir}", *extra],
                            cwd=cwd, env=offline_env(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def results(run_dir: Path) -> tuple[list[dict[str, str]], dict[str, torch.Tensor]]:
    rows = [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in read_metrics(run_dir)]
    weights = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]
    return rows, weights


def assert_same_run(a: Path, b: Path) -> None:
    rows_a, weights_a = results(a)
    rows_b, weights_b = results(b)
    assert rows_a == rows_b  # every digit of every loss and accuracy
    assert weights_a.keys() == weights_b.keys()
    for name in weights_a:
        assert torch.equal(weights_a[name], weights_b[name]), name


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """One uninterrupted run, and how long it took from launch to exit."""
    workdir = tmp_path_factory.mktemp("reference")
    began = time.perf_counter()
    assert train_into(workdir / "run", workdir).wait(timeout=300) == 0
    return workdir / "run", time.perf_counter() - began


def test_sigkill_at_random_points_then_resume_is_bit_identical(workdir, reference):
    reference, duration = reference
    rng = random.Random(1234)
    for attempt in range(5):
        run_dir = workdir / f"killed{attempt}"
        process = train_into(run_dir, workdir)
        time.sleep(rng.uniform(0.3, 0.95) * duration)
        process.kill()
        process.wait()
        if not (run_dir / "config.yaml").exists():
            continue  # killed before Hydra wrote anything: nothing to resume, a fresh start is the same
        resumed = run_cli(["train", f"resume={run_dir}"], workdir)
        assert resumed.returncode == 0, resumed.stderr
        assert read_summary(run_dir)["status"] == "completed"
        epochs = [int(r["epoch"]) for r in read_metrics(run_dir)]
        assert epochs == [1, 2, 3]  # no duplicated or missing epoch
        assert_same_run(reference, run_dir)


def test_sigterm_stops_cleanly_mid_epoch_and_resume_matches(workdir, reference):
    reference, _ = reference
    run_dir = workdir / "terminated"
    process = train_into(run_dir, workdir)
    while not (run_dir / "metrics.csv").exists() or not read_metrics(run_dir):
        time.sleep(0.05)  # the first epoch is done: the signal lands during a later one
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    summary = read_summary(run_dir)
    assert summary["status"] == "interrupted", summary
    assert "resume=" in stderr
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    assert state["position"]["step"] > 0 or state["position"]["epochs_done"] >= 1
    resumed = run_cli(["train", f"resume={run_dir}"], workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(reference, run_dir)


def test_submitit_requeues_a_signalled_job_which_continues_from_its_checkpoint(workdir, reference):
    """SLURM sends USR2 signal_delay_s before a job's time limit (and on pre-emption); submitit then calls the
    launcher's checkpoint hook, requeues the job and exits. submitit's local executor does the same, so the
    requeue path of hydra/launcher=slurm is exercised here with submitit_local."""
    reference, _ = reference
    sweep_dir = workdir / "sweep"
    process = subprocess.Popen([*cli_command(), "train", "-m", *DETERMINISTIC_RUN, "hydra/launcher=submitit_local",
                                f"hydra.sweep.dir={sweep_dir}"], cwd=workdir, env=offline_env(workdir),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = sweep_dir / "0"
    deadline = time.monotonic() + 240
    while not (run_dir / "metrics.csv").exists() or not read_metrics(run_dir):
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()[1]
        time.sleep(0.05)  # the first epoch is done: the signal lands during a later one
    before = read_metrics(run_dir)
    worker = subprocess.run(["pgrep", "-f", f"submitit.core._submit {sweep_dir}"], capture_output=True, text=True)
    os.kill(int(worker.stdout.split()[0]), signal.SIGUSR2)
    assert len(before) < EPOCHS  # signalled before the last epoch ended
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert f"sweep finished: 1 runs, 1 completed, 0 failed ({sweep_dir})" in stdout
    log = "".join(path.read_text() for path in sweep_dir.glob(".submitit/*/*_log.out"))
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log
    # The epochs done before the signal were kept, timings and all: the requeued job continued after them.
    assert read_metrics(run_dir)[:len(before)] == before
    assert_same_run(reference, run_dir)


def test_torn_metrics_line_is_repaired_on_resume(workdir):
    run_dir = workdir / "run"
    assert train_into(run_dir, workdir, ["trainer.epochs=2"]).wait(timeout=300) == 0
    state = torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)
    state["position"]["epochs_done"] = 1  # as if killed after writing epoch 2's row but before its checkpoint
    torch.save(state, run_dir / "checkpoint.pt")
    with open(run_dir / "metrics.csv", "a") as handle:
        handle.write("3,0.5,0.8")  # and a half-written line after it
    summary = read_summary(run_dir)
    summary["status"] = "running"
    (run_dir / "summary.json").write_text(json.dumps(summary))
    resumed = run_cli(["train", f"resume={run_dir}"], workdir)
    assert resumed.returncode == 0, resumed.stderr
    assert [int(r["epoch"]) for r in read_metrics(run_dir)] == [1, 2]
    assert (run_dir / "metrics.csv").read_text().endswith("\n")


def test_second_writer_is_refused(workdir):
    run_dir = workdir / "run"
    first = train_into(run_dir, workdir, ["trainer.epochs=30"])
    while not (run_dir / "summary.json").exists():
        time.sleep(0.05)
    second = run_cli(["train", *DETERMINISTIC_RUN, f"hydra.run.dir={run_dir}"], workdir, timeout=120)
    first.kill()
    first.wait()
    assert second.returncode != 0
    assert f"run directory {run_dir} is in use by process {first.pid}" in second.stderr
    assert "Traceback" not in second.stderr


def test_a_run_directory_holding_another_run_is_refused_and_left_as_it_was(workdir):
    run_dir = workdir / "run"
    first = run_cli(["train", "dataset=digits", "trainer.epochs=1", "logger=none", f"hydra.run.dir={run_dir}"],
                    workdir)
    assert first.returncode == 0, first.stderr
    summary, metrics = (run_dir / "summary.json").read_text(), (run_dir / "metrics.csv").read_text()
    other = run_cli(["train", "dataset=digits", "trainer.epochs=1", "logger=none", "norm=lrn",
                     f"hydra.run.dir={run_dir}"], workdir)
    assert other.returncode == 1
    assert f"run directory {run_dir} holds a run with other settings (norm." in other.stderr
    assert (run_dir / "summary.json").read_text() == summary  # still the completed run it was
    assert (run_dir / "metrics.csv").read_text() == metrics


def test_rerunning_a_sweep_skips_finished_jobs_and_continues_the_rest(workdir):
    sweep = workdir / "sweep"
    args = ["train", "-m", "dataset=digits", "trainer.epochs=2", "seed=0,1", "logger=none", f"hydra.sweep.dir={sweep}"]
    assert run_cli(args, workdir).returncode == 0
    unfinished = sweep / "1"
    summary = read_summary(unfinished)
    summary["status"] = "running"  # job 1 as if its machine died after epoch 2's checkpoint
    (unfinished / "summary.json").write_text(json.dumps(summary))
    before = (sweep / "0" / "metrics.csv").read_text()
    again = run_cli(args, workdir)
    assert again.returncode == 0, again.stderr
    assert f"skipped {sweep / '0'}: already completed" in again.stdout
    assert (sweep / "0" / "metrics.csv").read_text() == before
    assert read_summary(unfinished)["status"] == "completed"
    assert "2 completed" in again.stdout


def test_sweep_with_a_diverging_and_a_crashing_job_finishes_the_others(workdir):
    presets = workdir / "presets" / "experiment"
    presets.mkdir(parents=True)
    (presets / "ok.yaml").write_text("# @package _global_\nseed: 0\n")
    (presets / "explode.yaml").write_text("# @package _global_\noptim:\n  lr: 1.0e30\n")
    (presets / "no_gpu.yaml").write_text("# @package _global_\ntrainer:\n  device: cuda\n")
    sweep = workdir / "sweep"
    result = run_cli(["train", "-m", f"hydra.searchpath=[file://{workdir / 'presets'}]",
                      "experiment=ok,explode,no_gpu", "dataset=digits", "trainer.epochs=2", "logger=none",
                      f"hydra.sweep.dir={sweep}"], workdir, timeout=300)
    if torch.cuda.is_available():
        return  # the crashing job needs a machine without a GPU
    assert result.returncode == 1
    assert "sweep finished: 3 runs, 1 completed, 1 diverged, 1 failed" in result.stdout
    statuses = {read_summary(sweep / str(i))["status"] for i in range(3)}
    assert statuses == {"completed", "diverged", "failed"}
    diverged = read_summary(sweep / "1")
    assert diverged["diverged_at"]["epoch"] == 1 and diverged["diverged_at"]["step"] >= 1
    failed = read_summary(sweep / "2")
    assert "no CUDA GPU is visible" in failed["error"]
    assert "Traceback" not in result.stderr


def test_sigint_stops_the_whole_sweep_not_just_the_running_job(workdir):
    sweep = workdir / "sweep"
    process = subprocess.Popen([*cli_command(), "train", "-m", *DETERMINISTIC_RUN, "seed=0,1",
                                f"hydra.sweep.dir={sweep}"], cwd=workdir, env=offline_env(workdir),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (sweep / "0" / "metrics.csv").exists() or not read_metrics(sweep / "0"):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGINT
    assert read_summary(sweep / "0")["status"] == "interrupted"
    assert not (sweep / "1").exists()  # the next job never started
    assert "sweep finished: 1 runs, 0 completed, 0 failed, 1 interrupted" in stdout
