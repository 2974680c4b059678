"""How much each LRN layer of a trained run actually divides: |output| / |input| on training images.

    python scripts/lrn_activity.py RUN_DIR [RUN_DIR ...] [--images 512] [--out FILE.md]

LRN divides each activation by (k + alpha/n * sum of squares)^beta; when the activations are small that
denominator is 1 and the layer is the identity, so an LRN run cannot differ from a run without it. For
each run directory (its config.yaml and checkpoint.pt, at the last saved epoch) this builds the model as
`lrn-ablate train` does, feeds it --images training images (centre patches when the run trains on
patches), and reports, per LRN layer, mean |output| / mean |input| (1.0 = inactive) and mean |input|.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from entry import run
from omegaconf import OmegaConf

from lrn_ablate.data import DATASETS, build_dataset
from lrn_ablate.data.batches import EvalBatches
from lrn_ablate.models import build_model
from lrn_ablate.norms.lrn import LocalResponseNorm
from lrn_ablate.rundir import RunDir


def lrn_activity(run: RunDir, images: int) -> tuple[int, dict[str, tuple[float, float]]]:
    """(epochs done, {layer: (|output| / |input|, mean |input|)}) of the run's last checkpoint."""
    config = OmegaConf.to_container(OmegaConf.load(run.config), resolve=True)
    data = build_dataset(config["dataset"])
    dataset = DATASETS.settings(config["dataset"])
    side = dataset["crop_size"] or data.image_size
    model = build_model(config["model"], config["norm"], data.channels, side, data.num_classes)
    state = torch.load(run.checkpoint, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    mean, std = data.channel_stats()
    batch = EvalBatches(data.train_images[:images], data.train_labels[:images], mean, std, images,
                        torch.device("cpu"), False, dataset["crop_size"], 1)
    views, _ = next(iter(batch))
    seen: dict[str, tuple[float, float]] = {}

    def watch(name: str):
        def hook(_: torch.nn.Module, inputs: tuple[torch.Tensor], output: torch.Tensor) -> None:
            size = inputs[0].abs().mean().item()
            seen[name] = (output.abs().mean().item() / size, size)
        return hook

    for name, module in model.named_modules():
        if isinstance(module, LocalResponseNorm):
            module.register_forward_hook(watch(name))
    with torch.inference_mode():
        model(views[0])
    return state["position"]["epochs_done"], seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="run directories with config.yaml and checkpoint.pt")
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--out", type=Path, help="also write the table to this markdown file")
    args = parser.parse_args()
    lines = [f"- command: `python {' '.join(sys.argv)}`", "",
             "| run | epochs done | LRN layer | mean \\|output\\| / mean \\|input\\| | mean \\|input\\| |",
             "| --- | ---: | --- | ---: | ---: |"]
    for path in args.runs:
        epochs, layers = lrn_activity(RunDir(path), args.images)
        if not layers:
            lines.append(f"| {path.name} | {epochs} | (no LRN layer) | | |")
        lines += [f"| {path.name} | {epochs} | {name} | {ratio:.6f} | {size:.3g} |"
                  for name, (ratio, size) in layers.items()]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    run(main)
