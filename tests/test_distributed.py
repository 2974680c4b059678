"""One run on two processes with torchrun (DDP on the gloo backend): it computes what one process computes
with the same seed and global batch, only rank 0 writes, and a signalled run continues from its checkpoint."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import cli_command, offline_env, read_metrics, read_summary, run_cli

from lrn_ablate.training.distributed import Ranks

# Batches of 20 leave a last batch of 17 (1437 training digits): the two ranks then hold 9 and 8 images,
# so the loss weighting of unequal shares is exercised in every epoch.
RUN = ["dataset=digits", "trainer.epochs=3", "norm=lrn", "trainer.batch_size=20", "trainer.deterministic=true",
       "trainer.threads=1", "seed=4"]


def torchrun(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--no-python",
            *cli_command(), "train", *args]


def test_ranks_split_a_batch_into_contiguous_shares_that_differ_by_at_most_one() -> None:
    import torch

    batch = torch.arange(17)
    shares = [Ranks(rank, 2).shard(batch) for rank in range(2)]
    assert [s.tolist() for s in shares] == [list(range(9)), list(range(9, 17))]
    assert Ranks().shard(batch) is batch


def test_a_last_batch_smaller_than_the_ranks_is_refused_and_ranks_draw_their_own_dropout() -> None:
    import torch

    from lrn_ablate.errors import UserError

    Ranks(0, 4).check_shares(4)
    with pytest.raises(UserError, match="the last batch of an epoch holds 3 images, fewer than the 4 ranks"):
        Ranks(0, 4).check_shares(3)
    masks = []
    for rank in range(2):
        Ranks(rank, 2).seed_dropout(seed=0, epoch=1)
        masks.append(torch.rand(8))
    assert not torch.equal(masks[0], masks[1])


@pytest.mark.parametrize(("augment", "crop_size"), [("flip_crop", None), ("flip", 6)])
def test_each_rank_fetches_and_augments_its_share_of_the_single_process_batch(augment: str,
                                                                              crop_size: int | None) -> None:
    import torch

    from lrn_ablate.data.batches import TrainBatches

    images = torch.randint(0, 256, (23, 3, 10, 10), dtype=torch.uint8)
    labels = torch.arange(23)

    def batches(ranks: Ranks) -> TrainBatches:
        return TrainBatches(images, labels, torch.zeros(3), torch.ones(3), 8, augment, 7, torch.device("cpu"),
                            crop_size=crop_size, shard=ranks.shard)

    single = list(batches(Ranks()).epoch(2, start_step=1))
    shares = [list(batches(Ranks(rank, 2)).epoch(2, start_step=1)) for rank in range(2)]
    assert len(single) == 2  # steps 2 and 3 of 8, 8, 7 images
    for step, (whole, whole_labels) in enumerate(single):
        assert torch.equal(torch.cat([shares[rank][step][0] for rank in range(2)]), whole)
        assert torch.equal(torch.cat([shares[rank][step][1] for rank in range(2)]), whole_labels)
    assert [len(labels) for _, labels in shares[1]] == [4, 3]


def assert_same_epochs(ddp: Path, single: Path) -> None:
    """Every epoch's losses agree to float tolerance, accuracies to one image of the 360 test digits."""
    rows, reference = read_metrics(ddp), read_metrics(single)
    assert [r["epoch"] for r in rows] == [r["epoch"] for r in reference] == ["1", "2", "3"]
    for row, ref in zip(rows, reference, strict=True):
        for column in ("train_loss", "test_loss"):
            assert math.isclose(float(row[column]), float(ref[column]), rel_tol=1e-5), (column, row, ref)
        assert abs(float(row["train_acc"]) - float(ref["train_acc"])) <= 1 / 1437
        assert abs(float(row["test_acc"]) - float(ref["test_acc"])) <= 1 / 360


@pytest.mark.slow
def test_two_rank_ddp_run_matches_one_process_and_continues_after_a_signal(workdir: Path) -> None:
    single = run_cli(["train", *RUN, "logger=none", f"hydra.run.dir={workdir / 'single'}"], cwd=workdir)
    assert single.returncode == 0, single.stderr

    # Interrupted by SIGTERM to torchrun (what SLURM or Ctrl-C sends), which passes it on to both ranks.
    command = torchrun([*RUN, "hydra.run.dir=ddp"])
    first = subprocess.Popen(command, cwd=workdir, env=offline_env(workdir), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    metrics = workdir / "ddp" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and first.poll() is None:
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    interrupted = read_summary(workdir / "ddp")
    assert interrupted["status"] == "interrupted", interrupted
    assert interrupted["signal"] == signal.SIGTERM

    again = subprocess.run(command, cwd=workdir, env=offline_env(workdir), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    summary = read_summary(workdir / "ddp")
    assert summary["status"] == "completed" and summary["world_size"] == 2
    assert_same_epochs(workdir / "ddp", workdir / "single")

    # One run directory, written by rank 0 alone: nothing beside it, one W&B run continued once (offline W&B
    # writes a folder per session; rank 1 logging too would double them).
    assert sorted(p.name for p in workdir.iterdir() if p.is_dir() and p.name != "data") == ["ddp", "single"]
    sessions = list((workdir / "ddp" / "wandb").glob("offline-run-*"))
    run_id = (workdir / "ddp" / "wandb_id.txt").read_text().strip()
    assert len(sessions) == 2 and {p.name.rsplit("-", 1)[1] for p in sessions} == {run_id}


def test_torchrun_refuses_a_sweep_in_one_sentence(workdir: Path) -> None:
    env = {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    result = subprocess.run([*cli_command(), "train", "-m", "dataset=digits", "seed=0,1"], cwd=workdir,
                            env={**offline_env(workdir), **env}, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "lrn-ablate train: error: torchrun runs one run on several processes, so it cannot run a sweep (-m); "
        "sweep with a launcher instead (hydra/launcher=joblib, submitit_local or slurm).")
    assert not any(workdir.iterdir())


def test_sync_bn_on_the_cpu_fails_in_one_sentence_on_every_rank(workdir: Path) -> None:
    result = subprocess.run(torchrun(["dataset=digits", "trainer.epochs=1", "norm=bn", "trainer.device=cpu",
                                      "trainer.threads=1", "+trainer.sync_bn=true", "hydra.run.dir=run"]),
                            cwd=workdir, env=offline_env(workdir), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    message = ("lrn-ablate train: error: trainer.sync_bn=true needs GPUs: PyTorch's SyncBatchNorm runs on CUDA only "
               "(on the CPU each rank normalizes over its own share of the batch; drop the setting).")
    assert result.stderr.count(message) == 1, result.stderr  # rank 0 says it; rank 1 stays silent
    summary = read_summary(workdir / "run")
    assert summary["status"] == "failed" and summary["epochs_completed"] == 0
