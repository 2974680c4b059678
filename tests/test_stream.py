"""dataset.in_memory=false: an ImageFolder tree streamed from disk by DataLoader workers gives the batches, the
statistics and the training run of the tree decoded into memory."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cli_command, offline_env, read_metrics, read_summary, run_cli
from PIL import Image

from lrn_ablate.data import stream
from lrn_ablate.data.batches import BatchPlan
from lrn_ablate.data.folder import load_image_folder
from lrn_ablate.data.stream import open_image_folder
from lrn_ablate.errors import UserError

PLAN = BatchPlan(batch_size=8, eval_batch_size=6, augment="flip", crop_size=8, test_views=10, seed=3,
                 device=torch.device("cpu"), channels_last=False)


def random_tree(root: Path, train: int = 37, test: int = 11, side: int = 12, suffix: str = "png",
                channels: int = 3) -> list[Path]:
    """Random RGB (or grey) images in two classes; returns the training files in the order ImageFolder lists
    them."""
    rng = np.random.default_rng(0)
    for split, count in (("train", train), ("test", test)):
        for i in range(count):
            folder = root / split / ("a" if i % 3 else "b")
            folder.mkdir(parents=True, exist_ok=True)
            pixels = rng.integers(0, 256, (side, side, channels), dtype=np.uint8)
            image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
            image.save(folder / f"{i:03d}.{suffix}", quality=75)  # (quality: JPEG only)
    return sorted((root / "train").glob(f"*/*.{suffix}"))


def test_streamed_batches_are_the_in_memory_batches_also_from_a_later_step(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    random_tree(tmp_path / "tree")
    in_memory = load_image_folder(tmp_path / "tree").batches(PLAN, lambda tensor: tensor)
    streamed = open_image_folder(tmp_path / "tree", None, None, workers=2).batches(PLAN, lambda tensor: tensor)
    for epoch, start in ((1, 0), (2, 3)):  # from step 3: where a run resumed mid-epoch continues
        pairs = list(zip(in_memory[0].epoch(epoch, start), streamed[0].epoch(epoch, start), strict=True))
        assert len(pairs) == 5 - start  # 37 images in batches of 8
        for (images, labels), (streamed_images, streamed_labels) in pairs:
            assert torch.equal(images, streamed_images) and torch.equal(labels, streamed_labels)
    evaluated = list(zip(in_memory[1], streamed[1], strict=True))
    assert len(evaluated) == 2
    for (views, labels), (streamed_views, streamed_labels) in evaluated:
        assert views.shape[0] == 10
        assert torch.equal(views, streamed_views) and torch.equal(labels, streamed_labels)


@pytest.mark.parametrize(("image_size", "channels", "stored"), [(None, None, 3), (8, None, 3), (None, 1, 3),
                                                               (8, None, 1)])
def test_jpeg_batches_decoded_on_the_device_are_the_workers_batches(tmp_path: Path, image_size: int | None,
                                                                    channels: int | None, stored: int,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # On the CPU, torchvision's decoder (libjpeg-turbo) and its antialiased resize give PIL's pixels, and
    # colour made grey (channels=1) follows PIL's rule; `stored` 1 is a tree of greyscale JPEG files.
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    random_tree(tmp_path / "tree", suffix="jpg", channels=stored)
    by_workers = open_image_folder(tmp_path / "tree", image_size, channels, workers=2).batches(PLAN, lambda t: t)
    on_device = open_image_folder(tmp_path / "tree", image_size, channels, workers=2,
                                  on_device=True).batches(PLAN, lambda t: t)
    batches = list(zip(by_workers[0].epoch(1, 0), on_device[0].epoch(1, 0), strict=True))
    assert len(batches) == 5 and batches[0][0][0].shape[1] == (channels or stored)
    for (images, labels), (decoded, decoded_labels) in batches:
        assert torch.equal(images, decoded) and torch.equal(labels, decoded_labels)
    for (views, labels), (decoded, decoded_labels) in zip(by_workers[1], on_device[1], strict=True):
        assert torch.equal(views, decoded) and torch.equal(labels, decoded_labels)


def test_a_broken_jpeg_decoded_on_the_device_is_named(tmp_path: Path) -> None:
    files = random_tree(tmp_path / "tree", train=4, test=1, side=16, suffix="jpg")
    streamed = open_image_folder(tmp_path / "tree", None, None, workers=0, on_device=True).train
    files[2].write_bytes(b"\xff\xd8\xff\xe0 the JPEG markers, then nothing a decoder can use")
    with pytest.raises(UserError, match=f"^cannot decode image {re.escape(str(files[2]))} \\(.+\\); remove or "
                                        "replace the file.$"):
        streamed.decode([0, 1, 2, 3], [streamed[i][0] for i in range(4)], torch.device("cpu"))


def test_streamed_statistics_are_those_of_the_evenly_spaced_sample(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(stream, "STATS_SAMPLE", 5)
    files = random_tree(tmp_path / "tree")
    # 37 files, 5 evenly spaced: the first, the last and every ninth between.
    pixels = np.stack([np.asarray(Image.open(files[i])) for i in (0, 9, 18, 27, 36)]).reshape(-1, 3) / 255.0
    mean, std = open_image_folder(tmp_path / "tree", None, None, workers=0).stats
    np.testing.assert_allclose(mean.numpy(), pixels.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(std.numpy(), pixels.std(axis=0, ddof=1), rtol=1e-6)


def digits_tree(root: Path) -> None:
    """scikit-learn's handwritten digits (8x8, 17 grey levels) as PNG files, 1,200 to train on, the rest to test."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    for i, (image, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        folder = root / ("train" if i < 1200 else "test") / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((image * 15).astype(np.uint8)).save(folder / f"{i}.png")


@pytest.mark.slow
def test_a_streamed_run_stopped_by_sigterm_to_its_group_continues_and_trains_as_in_memory(workdir: Path) -> None:
    digits_tree(workdir / "digits")
    run = ["train", "dataset=imagefolder", f"dataset.root={workdir / 'digits'}", "dataset.image_size=32",
           "dataset.augment=flip_crop", "norm=lrn", "trainer.epochs=3", "trainer.batch_size=32", "trainer.threads=1",
           "trainer.deterministic=true", "logger=none"]
    memory = run_cli([*run, "hydra.run.dir=memory"], workdir)
    assert memory.returncode == 0, memory.stderr

    # SIGTERM to the whole process group, DataLoader workers included, as torchrun and SLURM send it.
    streamed = [*cli_command(), *run, "dataset.in_memory=false", "dataset.workers=2", "hydra.run.dir=streamed"]
    first = subprocess.Popen(streamed, cwd=workdir, env=offline_env(workdir), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    metrics = workdir / "streamed" / "metrics.csv"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2) and first.poll() is None:
        assert time.monotonic() < deadline, "no epoch finished"
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGTERM)
    _, stderr = first.communicate(timeout=60)
    assert read_summary(workdir / "streamed")["status"] == "interrupted", stderr
    again = subprocess.run(streamed, cwd=workdir, env=offline_env(workdir), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    assert read_summary(workdir / "streamed")["status"] == "completed"

    rows, reference = read_metrics(workdir / "streamed"), read_metrics(workdir / "memory")
    assert len(rows) == len(reference) == 3
    for row, reference_row in zip(rows, reference, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert float(row[key]) == pytest.approx(float(reference_row[key]), rel=1e-6), key


@pytest.mark.slow
def test_a_run_decoding_jpeg_on_the_device_trains_as_the_in_memory_run(workdir: Path) -> None:
    random_tree(workdir / "tree", train=200, test=50, side=16, suffix="jpg")
    run = ["train", "dataset=imagefolder", f"dataset.root={workdir / 'tree'}", "dataset.augment=flip",
           "trainer.epochs=2", "trainer.batch_size=32", "trainer.threads=1", "trainer.deterministic=true",
           "logger=none"]
    memory = run_cli([*run, "hydra.run.dir=memory"], workdir)
    assert memory.returncode == 0, memory.stderr
    decoded = run_cli([*run, "dataset.in_memory=false", "dataset.decode=device", "hydra.run.dir=device"], workdir)
    assert decoded.returncode == 0, decoded.stderr
    rows, reference = read_metrics(workdir / "device"), read_metrics(workdir / "memory")
    assert len(rows) == len(reference) == 2
    for row, reference_row in zip(rows, reference, strict=True):
        for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
            assert float(row[key]) == pytest.approx(float(reference_row[key]), rel=1e-6), key


# Starts DataLoader workers again and again, as every epoch and evaluation does, while being signalled.
STARTING_WORKERS = """
import os, sys, torch
from pathlib import Path
from lrn_ablate.data.stream import open_image_folder, stream
from lrn_ablate.training.signals import StopRequest
files = open_image_folder(Path(sys.argv[1]), None, None, workers=0).train
with StopRequest() as stop:
    print("ready", flush=True)
    for _ in range(30):
        for _ in stream(files, [[0, 1], [2, 3]], 2, torch.device("cpu")):
            pass
    print("signal", stop.signum, flush=True)
    os._exit(0)  # before StopRequest gives SIGTERM its default action back
"""


def test_workers_that_are_starting_when_the_group_is_signalled_survive(tmp_path: Path) -> None:
    # PyTorch's handler in a new worker re-raises a SIGTERM its parent did not send; until the worker has
    # run our worker_init_fn, one from torchrun or SLURM killed it, and the run failed (a CI run, stop 23).
    random_tree(tmp_path / "tree", train=6, test=2)
    child = subprocess.Popen([sys.executable, "-c", STARTING_WORKERS, str(tmp_path / "tree")],
                             env=offline_env(tmp_path) | {"XDG_CACHE_HOME": str(tmp_path / "cache")},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert child.stdout is not None and child.stdout.readline() == "ready\n"
    deadline = time.monotonic() + 120
    while child.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(ProcessLookupError):  # it has just ended
            os.killpg(child.pid, signal.SIGTERM)
        time.sleep(0.002)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err[-2000:]
    assert out == f"signal {int(signal.SIGTERM)}\n"


@pytest.mark.slow
def test_streamed_jobs_run_side_by_side_on_the_joblib_launcher(workdir: Path) -> None:
    # A joblib job runs in a loky worker, whose default process context cannot start DataLoader workers.
    random_tree(workdir / "tree")
    result = run_cli(["train", "-m", "dataset=imagefolder", f"dataset.root={workdir / 'tree'}", "dataset.image_size=16",
                      "dataset.in_memory=false", "seed=0,1", "trainer.epochs=1", "logger=none",
                      "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", f"hydra.sweep.dir={workdir / 'sweep'}"],
                     workdir)
    assert result.returncode == 0, result.stderr
    assert f"sweep finished: 2 runs, 2 completed, 0 failed ({workdir / 'sweep'})" in result.stdout
