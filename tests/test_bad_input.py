"""Every user mistake ends in one sentence and a non-zero exit; docs/errors.md lists each one.

Each case is (command-line arguments, exit code, the message). `<tmp>` stands for the test's folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli

ERRORS_DOC = Path(__file__).resolve().parents[1] / "docs" / "errors.md"
TRAIN = "lrn-ablate train: error: "

CASES = [
    (["train", "norm=nope"], 2,
     TRAIN + "norm=nope is not an option of norm; choose one of: bn, gn, in, ln, lrn, lrn_alexnet, lrn_caffe, "
             "lrn_cudaconvnet, none, pixel."),
    (["train", "trainer.epoch=3"], 2,
     TRAIN + "trainer.epoch is not a setting; `lrn-ablate train --help` lists them (to add a new key on purpose, "
             "write +trainer.epoch=...)."),
    (["train", "trainer.epochs=abc"], 2, TRAIN + "trainer.epochs must be a positive integer, got 'abc'."),
    (["train", "trainer.epochs=0"], 2, TRAIN + "trainer.epochs must be a positive integer, got 0."),
    (["train", "trainer.batch_size=-8"], 2, TRAIN + "trainer.batch_size must be a positive integer, got -8."),
    (["train", "trainer.threads=0"], 2, TRAIN + "trainer.threads must be auto or a positive integer, got 0."),
    (["train", "optim.lr=0"], 2, TRAIN + "optim.lr must be a number greater than 0, got 0."),
    (["train", "norm=lrn", "norm.size=0"], 2, TRAIN + "norm.size must be a positive integer, got 0."),
    (["train", "norm=lrn", "norm.alpha=-1e-4"], 2, TRAIN + "norm.alpha must be a number >= 0, got -0.0001."),
    (["train", "norm=lrn", "norm.beta=-0.75"], 2, TRAIN + "norm.beta must be a number >= 0, got -0.75."),
    (["train", "norm=lrn", "norm.k=-1"], 2, TRAIN + "norm.k must be a number >= 0, got -1."),
    (["train", "norm=lrn", "norm.convention=caffe", "norm.size=4"], 2,
     TRAIN + "norm.size must be odd with convention=caffe (a centred window), got 4."),
    (["train", "norm=lrn", "norm.convention=tf"], 2,
     TRAIN + "norm.convention must be one of pytorch, caffe, alexnet, article; got 'tf'."),
    (["train", "norm=gn", "norm.groups=4"], 2,
     TRAIN + "norm.groups=4 must divide the channel count of every norm slot (6, 16); it does not divide 6."),
    (["train", "norm=lrn", "norm.alpha=nan"], 2, TRAIN + "norm.alpha must be a finite number, got nan."),
    (["train", "optim.lr=1e400"], 2, TRAIN + "optim.lr must be a finite number, got inf."),
    (["train", "norm=bn", "norm.momentum=2"], 2, TRAIN + "norm.momentum must be a number >= 0 and <= 1, got 2."),
    (["train", "optim=adam", "optim.betas=[0.9]"], 2,
     TRAIN + "optim.betas must be a list of 2 values, each a number >= 0 and below 1, got [0.9]."),
    (["train", "model.conv_channels=[6]"], 2,
     TRAIN + "model.conv_channels must be a list of 2 values, each a positive integer, got [6]."),
    (["train", "model=alexnet_cifar", "model.towers=3"], 2,
     TRAIN + "model.towers=3 must divide every width in model.conv_channels [48, 128, 192, 192, 128]."),
    (["train", "model=alexnet_cifar", "model.dropout=1.0"], 2,
     TRAIN + "model.dropout must be a number >= 0 and below 1, got 1.0."),
    (["train", "model=alexnet_cifar", "dataset=mnist"], 2,
     TRAIN + "model=alexnet_cifar is built for 32x32 images but the dataset gives 28x28; resize the data "
             "(dataset.image_size for imagefolder) or set model.image_size=28 (model=alexnet_cifar is AlexNet made "
             "for 32x32)."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.image_size=-3"], 2,
     TRAIN + "dataset.image_size must be a positive integer or null, got -3."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.image_size=8"], 2,
     TRAIN + "model=lenet needs images of at least 16x16 pixels, but the dataset gives 8x8."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.channels=2"], 2,
     TRAIN + "dataset.channels must be one of 1, 3 or null, got 2."),
    (["train", "+dataset.test_views=10"], 2,
     TRAIN + "dataset.test_views=10 takes views of crops: set dataset.crop_size too (cuda-convnet: 24 on 32x32 "
             "images)."),
    (["train", "+dataset.crop_size=40"], 2, TRAIN + "dataset.crop_size=40 is larger than the 32x32 images."),
    (["train", "experiment=cudaconvnet_13pct", "dataset.augment=flip_crop"], 2,
     TRAIN + "dataset.augment=flip_crop pads and crops back to the full size; with dataset.crop_size use "
             "augment=flip (random crops and mirror images, as cuda-convnet) or none."),
    (["train", "experiment=cudaconvnet_13pct", "optim.layer_weight_decay.conv1=-1"], 2,
     TRAIN + "optim.layer_weight_decay must be a mapping of names to values, each a number >= 0, got "
             "{'conv1': -1, 'conv2': 0.0}."),
    (["train", "trainer.device=gpu"], 2, TRAIN + "trainer.device must be one of auto, cpu, cuda or cuda:N, got 'gpu'."),
    (["train", "logger.mode=onlin"], 2, TRAIN + "logger.mode must be one of offline, online, disabled; got 'onlin'."),
    (["train", "seed=1.5"], 2, TRAIN + "seed must be an integer, got 1.5."),
    (["train", "-m", "dataset=digits", "trainer.epochs=1,-1"], 2,
     TRAIN + "trainer.epochs must be a positive integer, got -1."),
    (["train", "-m", "hydra/sweeper=optuna_accuracy", "norm=lrn", "norm.alpha=tag(log, interval(0, 1e-1))"], 2,
     TRAIN + "norm.alpha: a log interval must start above 0; got 0."),
    (["train", "-m", "hydra/sweeper=optuna_accuracy", "norm=lrn", "norm.beta=interval(1, 0.5)"], 2,
     TRAIN + "norm.beta=interval(1, 0.5) is empty: its start must be below its end."),
    (["train", "-m", "hydra/sweeper=optuna_accuracy", "norm=lrn", "norm.alpha=interval(-1, 1)"], 2,
     TRAIN + "norm.alpha must be a number >= 0, got -1.0."),
    (["train", "-m", "norm=lrn", "norm.alpha=interval(1e-5, 1e-1)"], 2,
     TRAIN + "norm.alpha=interval(1e-5, 1e-1) is a range to search, which only a search sweeper draws from; add "
             "hydra/sweeper=optuna_accuracy, or give the values as a list (a,b,c)."),
    (["train", "-m", "hydra/sweeper=optuna", "norm=lrn"], 2,
     TRAIN + "hydra/sweeper=optuna minimises, but a run returns its test accuracy; use "
             "hydra/sweeper=optuna_accuracy, which maximises it (or set hydra.sweeper.direction)."),
    # Every trial diverges (lr 1e5): the search ends, with its tally, but has no best value.
    (["train", "-m", "hydra/sweeper=optuna_accuracy", "hydra.sweeper.n_trials=2", "norm=lrn",
      "norm.alpha=interval(1e-5, 1e-1)", "optim.lr=1e5", "dataset=digits", "trainer.epochs=1", "logger=none"], 1,
     TRAIN + "no trial of the search completed, so it has no best value; each run's summary.json (and error.log, "
             "where it failed) says how it ended."),
    (["train", "-m", "norm=none,lrn", "--cfg", "job"], 2,
     TRAIN + "--cfg runs nothing, so it cannot be combined with -m; drop -m to see what one job would use."),
    (["train", "dataset=imagefolder"], 2,
     TRAIN + "dataset=imagefolder needs dataset.root=<folder with train/ and test/>."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/missing"], 2,
     TRAIN + "dataset.root='<tmp>/missing' is not a directory; point it at a folder with train/ and test/."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/empty"], 2,
     TRAIN + "dataset.root='<tmp>/empty' has no train/ folder (expected train/<class>/*)."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/no_classes"], 2,
     TRAIN + "dataset.root='<tmp>/no_classes' has no class folders in train/ (expected train/<class>/*)."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "logger=none"], 1,
     TRAIN + "cannot read image <tmp>/corrupt/train/cat/broken.png (UnidentifiedImageError); "
             "remove or replace the file."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/mixed_sizes", "logger=none"], 1,
     TRAIN + "images differ in size (<tmp>/mixed_sizes/train/cat/a.png is 8x8, <tmp>/mixed_sizes/train/cat/b.png "
             "is 12x8); set dataset.image_size to resize them."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.workers=-1"], 2,
     TRAIN + "dataset.workers must be an integer >= 0, got -1."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.in_memory=false", "logger=none"], 1,
     TRAIN + "cannot read image <tmp>/corrupt/train/cat/broken.png (UnidentifiedImageError); "
             "remove or replace the file."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/mixed_sizes", "dataset.in_memory=false", "logger=none"], 1,
     TRAIN + "images differ in size (<tmp>/mixed_sizes/train/cat/a.png is 8x8, <tmp>/mixed_sizes/train/cat/b.png "
             "is 12x8); set dataset.image_size to resize them."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/corrupt", "dataset.decode=device"], 2,
     TRAIN + "dataset.decode=device decodes the batches of a streamed tree; set dataset.in_memory=false too."),
    (["train", "dataset=imagefolder", "dataset.root=<tmp>/not_jpeg", "dataset.in_memory=false", "dataset.decode=device",
      "logger=none"], 1,
     TRAIN + "dataset.decode=device decodes JPEG files only, and <tmp>/not_jpeg/train/cat/b.png is not one; use "
             "dataset.decode=workers."),
    (["train", "dataset=cifar10", "dataset.root=<tmp>/nothing_here", "dataset.download=false", "logger=none"], 1,
     TRAIN + "CIFAR-10 is not in <tmp>/nothing_here and dataset.download is false (Dataset not found or corrupted. "
             "You can use download=True to download it); download it there on a machine with network access, or "
             "pass dataset.root=<folder> (an ImageFolder tree with train/ and test/ works too)."),
    (["train", "dataset=digits", "trainer.device=cuda", "logger=none"], 1,
     TRAIN + "trainer.device=cuda but no CUDA GPU is visible; use trainer.device=auto or cpu."),
    (["train", "resume=<tmp>/empty"], 2, TRAIN + "resume=<tmp>/empty is not a run directory (it has no config.yaml)."),
    (["report", "<tmp>/empty"], 2, "lrn-ablate report: error: no run directories (folders with summary.json) "
                                   "under '<tmp>/empty'."),
    (["tarin"], 2, "lrn-ablate tarin: error: unknown command 'tarin'; the commands are train and report "
                   "(see `lrn-ablate --help`)."),
]


def make_trees(tmp: Path) -> None:
    from PIL import Image

    (tmp / "empty").mkdir()
    (tmp / "no_classes" / "train").mkdir(parents=True)
    (tmp / "no_classes" / "train" / "stray.png").write_bytes(b"")
    for split in ("train", "test"):
        for label in ("cat", "dog"):
            folder = tmp / "corrupt" / split / label
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8), (40, 80, 120)).save(folder / "ok.png")
    (tmp / "corrupt" / "train" / "cat" / "broken.png").write_bytes(b"this is not a png")
    for split in ("train", "test"):
        (tmp / "mixed_sizes" / split / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp / "mixed_sizes" / "train" / "cat" / "a.png")
    Image.new("RGB", (12, 8)).save(tmp / "mixed_sizes" / "train" / "cat" / "b.png")
    Image.new("RGB", (8, 8)).save(tmp / "mixed_sizes" / "test" / "cat" / "c.png")
    for name in ("train/cat/a.jpg", "train/cat/b.png", "train/dog/c.jpg", "test/cat/d.jpg"):
        (tmp / "not_jpeg" / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (16, 16), (40, 80, 120)).save(tmp / "not_jpeg" / name)


@pytest.mark.parametrize(("args", "code", "message"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_bad_input_gets_one_sentence(workdir, args, code, message):
    make_trees(workdir)
    result = run_cli([a.replace("<tmp>", str(workdir)) for a in args], workdir, timeout=120)
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [message.replace("<tmp>", str(workdir))]
    if code == 2:  # refused before anything was written
        assert not (workdir / "runs").exists() and not (workdir / "multirun").exists()


def test_errors_doc_lists_every_case():
    doc = ERRORS_DOC.read_text()
    for args, _, message in CASES:
        assert f"`lrn-ablate {' '.join(args)}`" in doc, args
        assert message.replace("|", "\\|") in doc, message
