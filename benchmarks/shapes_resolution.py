"""Which image side and model width make the shapes demo's maps mean something (issue 23, item 1): per
option, the demo recipe trained over a few seeds, then its test accuracy (overall and the weakest class),
the size of every CAM layer, the pointing game of Grad-CAM and LayerCAM at each layer against random
maps, and the gradient maps' border share (border_share.py).

An option is ``render:input:width[:epochs]``: the side the shapes are drawn at (``data.source.size``),
the model input (``data.image_size``; larger than ``render`` means upsampled), the ResNet-18 width
factor and the epochs (default the demo's). Each seed is trained by ``scripts/train.py`` in a child
process, timed by wall clock and by the child's CPU time (user + system), which a shared machine inflates
less. Example: ``python benchmarks/shapes_resolution.py --options 32:33:0.5 65:65:0.25 97:97:0.125
--seeds 0 1``. Results go to benchmarks/results/shapes_resolution.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import arguments
import border_share
import records
import torch
from paths import ROOT
from scipy import stats
from stage_passes import TINY_TRAIN
from torch import Tensor

from convlens.evaluate.localisation import pointing_game, random_baseline
from convlens.explain.cam import MIN_CAM_SIZE, CamParams, grad_cam, layer_cam, map_sizes
from convlens.explain.method import ExplainBatch
from convlens.explain.selection import predict
from convlens.rundir import load_run

CAMS = {"grad_cam": grad_cam, "layer_cam": layer_cam}
LAYERS = CamParams().layers
#: Random maps per image for the pointing game's baseline, as the evaluate stage's default.
RANDOM_DRAWS = 16


def parse_option(text: str) -> dict[str, Any]:
    """``render:input:width[:epochs]`` as a dict (epochs None: the demo's)."""
    render, side, width, *epochs = text.split(":")
    return {
        "render": int(render),
        "side": int(side),
        "width": float(width),
        "epochs": int(epochs[0]) if epochs else None,
    }


def train_overrides(option: dict[str, Any], seed: int, run_dir: Path, quick: bool) -> list[str]:
    """The demo recipe with this option's sizes, width, epochs and seed."""
    found = [f"data.source.size={option['render']}", f"data.image_size={option['side']}",
             f"model.width_factor={option['width']}", f"seed={seed}", f"paths.output_dir={run_dir}",
             "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]  # fmt: skip
    found += [f"trainer.max_epochs={option['epochs']}"] if option["epochs"] else []
    return found + (TINY_TRAIN if quick else [])


def train(overrides: list[str]) -> dict[str, float]:
    """Run scripts/train.py experiment=demo_shapes in a child process with this tree's source first on the
    path; its wall time and CPU time (user + system) in seconds."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
    command = [sys.executable, "scripts/train.py", "experiment=demo_shapes", *overrides]
    subprocess.run(command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return {"wall_seconds": time.perf_counter() - start, "cpu_seconds": cpu}


def class_accuracies(run: Any) -> dict[str, float]:
    """Test accuracy overall and per class, from the run's best checkpoint."""
    split = run.datamodule.split("test")
    predicted = predict(run.model, run.datamodule.preprocess(split.images)).argmax(1)
    correct = (predicted == split.labels).float()
    names = run.datamodule.class_names
    return {
        "test": float(correct.mean()),
        **{name: float(correct[split.labels == k].mean()) for k, name in enumerate(names)},
    }


def pointing(maps: Tensor, masks: Tensor, baseline: Tensor) -> dict[str, float]:
    """Mean pointing game of ``maps`` and of random maps, and the one-sided paired Wilcoxon p-value."""
    hits = pointing_game(maps, masks)
    keep = ~hits.isnan()
    p = stats.wilcoxon(hits[keep].numpy(), baseline[keep].numpy(), alternative="greater").pvalue
    return {"pointing_game": float(hits[keep].mean()), "random": float(baseline[keep].mean()), "p": float(p)}


def cam_rows(run_dir: Path, images: int) -> dict[str, Any]:
    """Every CAM layer's size and each CAM method's pointing game there against random maps."""
    run, inputs, targets, masks = border_share.test_batch(run_dir, images)
    batch = ExplainBatch(inputs, targets, run.black_image(), run.datamodule.num_classes)
    generator = torch.Generator().manual_seed(0)
    baseline = random_baseline(masks.bool(), RANDOM_DRAWS, generator)["pointing_game"]
    found = {name: method(run.model, inputs, targets, LAYERS) for name, method in CAMS.items()}
    sizes = map_sizes(run.model, batch, LAYERS)
    return {layer: {"size": list(sizes[layer]), **{name: pointing(maps[layer], masks.bool(), baseline)
                                                   for name, maps in found.items()}}
            for layer in LAYERS}  # fmt: skip


def measure_seed(option: dict[str, Any], seed: int, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Train one seed of one option, then score its accuracy, CAMs and border share."""
    run_dir = folder / f"{option['render']}_{option['side']}_{option['width']}_{seed}"
    timing = train(train_overrides(option, seed, run_dir, args.quick))
    border = border_share.measure_run(run_dir, args.images)
    keys = ("ratio_absolute", "border_density", "corner_density")
    shares = {name: {key: row[key] for key in keys} for name, row in border["methods"].items()}
    return {"seed": seed, **timing, "accuracy": class_accuracies(load_run(run_dir)),
            "cams": cam_rows(run_dir, args.images), "objects_share": border["objects_share"],
            "border_ratio": shares}  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    options = [parse_option(text) for text in args.options]
    with tempfile.TemporaryDirectory(prefix="convlens-shapes-") as folder:
        for option in options:
            option["seeds"] = [measure_seed(option, seed, args.keep or Path(folder), args) for seed in args.seeds]
    config = {"images": args.images, "layers": list(LAYERS), "random_draws": RANDOM_DRAWS,
              "threads": torch.get_num_threads()}  # fmt: skip
    return {"config": config, "options": options}


def _ratio(value: float | dict[str, float]) -> float:
    """A method's border ratio; the first results stored the ratio alone, later ones the densities with it."""
    return value if isinstance(value, float) else value["ratio_absolute"]


def summary(option: dict[str, Any]) -> list[Any]:
    """One table row: the option, mean times, accuracy range, weakest class, the deepest CAM layer drawn
    (at least ``MIN_CAM_SIZE`` on a side) and its scores."""
    seeds = option["seeds"]
    tests = [seed["accuracy"]["test"] for seed in seeds]
    weakest = min((value, name) for seed in seeds for name, value in seed["accuracy"].items() if name != "test")
    sizes = {layer: row["size"][0] for layer, row in seeds[0]["cams"].items()}
    deepest = next((layer for layer in reversed(LAYERS) if sizes[layer] >= MIN_CAM_SIZE), LAYERS[-1])

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    cams = [mean([seed["cams"][deepest][name]["pointing_game"] for seed in seeds]) for name in CAMS]
    chance = mean([seed["cams"][deepest]["grad_cam"]["random"] for seed in seeds])
    border = max(_ratio(value) for seed in seeds for value in seed["border_ratio"].values())
    return [f"{option['render']}->{option['side']} px, width {option['width']}", option["epochs"] or "demo",
            mean([seed["wall_seconds"] for seed in seeds]), mean([seed["cpu_seconds"] for seed in seeds]),
            f"{min(tests):.3f}-{max(tests):.3f}", f"{weakest[1]} {weakest[0]:.2f}",
            " ".join(f"{layer[-1]}:{size}" for layer, size in sizes.items()), deepest, *cams, chance,
            border]  # fmt: skip


def show(result: dict[str, Any], device: torch.device) -> None:
    keys = ("option", "epochs", "train wall s", "train cpu s", "test acc", "weakest class", "CAM sizes",
            "deepest drawn", *(f"{name} PG" for name in CAMS), "random PG", "worst border ratio")  # fmt: skip
    print(records.table(keys, [summary(option) for option in result["options"]]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    parser.add_argument("--options", nargs="+", default=["32:33:0.5", "65:65:0.25"], help="render:input:width[:epochs]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="training seeds per option")
    parser.add_argument("--images", type=int, default=200, help="test images scored per run")
    parser.add_argument("--keep", type=Path, default=None, help="train the runs into this folder and keep them "
                        "(default: a temporary one), e.g. to visualize and evaluate them after")  # fmt: skip
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.seeds = 16, args.seeds[:1]
    device = arguments.configure(args)
    return records.record(args, "shapes_resolution", device, lambda: measure(args), show)


if __name__ == "__main__":
    main()
