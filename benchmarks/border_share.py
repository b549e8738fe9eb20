"""How much of each gradient method's attribution lies in the image's 2-px border, against the border's
share of the objects' own masks: a map that piles mass on the edge, where the objects are not, points
at an artefact of the model (zero padding) or of the data, not at evidence.

For each trained run (``--runs``; default the two ``make demo`` runs) the first ``--images`` test
images are explained for the predicted class with the visualize stage's registered methods at their
default settings (saliency, guided backprop, SmoothGrad, gradient x input, Integrated Gradients).
Per image, the share of the map's mass in the border (the localised map, as the evaluation scores it,
and the magnitudes ``|map|`` of the signed methods) and the share of the mask's pixels there; each
averaged over the images, and their ratio. The goal (issue 23): every method within ``GOAL`` times
the objects' share. Per run also where the first max-pool routes the gradient (corners, edges,
inside: :func:`pool_routing`). Results go to benchmarks/results/border_share.json and docs/spatial_bias.md.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import arguments
import records
import stage_passes
import torch
import torch.nn.functional as F
from paths import ROOT
from torch import Tensor

from convlens.evaluate.recompute import Recompute
from convlens.explain.routing import routed_values
from convlens.explain.selection import predict
from convlens.registry import method_settings
from convlens.rundir import load_run

METHODS = ("saliency", "guided_backprop", "smoothgrad", "gradient_x_input", "integrated_gradients")
#: The border's width in model-input pixels.
BORDER = 2
#: The goal: each method's border share at most this multiple of the objects' own.
GOAL = 1.5
DEFAULT_RUNS = [ROOT / "outputs" / name / "latest" for name in ("demo_shapes", "demo_faces")]


def border(height: int, width: int, pixels: int = BORDER) -> Tensor:
    """(H, W) bool: the pixels within ``pixels`` of the image's edge."""
    band = torch.ones(height, width, dtype=torch.bool)
    band[pixels:-pixels, pixels:-pixels] = False
    return band


def corners(height: int, width: int, pixels: int = BORDER) -> Tensor:
    """(H, W) bool: the four ``pixels`` x ``pixels`` corner blocks, where the demo maps were seen to light up."""
    band = torch.zeros(height, width, dtype=torch.bool)
    for rows in (slice(0, pixels), slice(height - pixels, height)):
        for cols in (slice(0, pixels), slice(width - pixels, width)):
            band[rows, cols] = True
    return band


def border_share(maps: Tensor, band: Tensor) -> float:
    """The mean over images of the share of each (H, W) non-negative map's mass in ``band``; all-zero
    maps, which have no share, are left out."""
    total = maps.flatten(1).sum(dim=1)
    inside = (maps * band).flatten(1).sum(dim=1)
    return float((inside[total > 0] / total[total > 0]).mean())


def density(maps: Tensor, region: Tensor, reference: Tensor) -> float:
    """Mean over images of the map's mass per pixel in ``region`` over its mass per pixel in
    ``reference`` (both (B, H, W) bool): above 1, the region draws more attribution than the reference."""

    def per_pixel(where: Tensor) -> Tensor:
        return (maps * where).flatten(1).sum(dim=1) / where.flatten(1).sum(dim=1).clamp_min(1)

    found, base = per_pixel(region), per_pixel(reference)
    return float((found[base > 0] / base[base > 0]).mean())


def ratio(share: float, objects: float) -> float | None:
    """``share`` over the objects' share; None (no ratio, and the goal cannot be met) when no object reaches
    the border."""
    return share / objects if objects > 0 else None


def test_batch(run_dir: Path, images: int) -> tuple[Any, Tensor, Tensor, Tensor]:
    """The run, its first ``images`` test inputs, the predicted classes and the masks at the input size."""
    run = load_run(run_dir)
    split = run.datamodule.split("test")
    inputs = run.datamodule.preprocess(split.images[:images])
    masks = F.interpolate(split.masks[:images, None].float(), size=inputs.shape[-2:], mode="nearest")[:, 0]
    return run, inputs, predict(run.model, inputs).argmax(1), masks


def method_row(views: dict[str, Tensor], masks: Tensor, objects: float) -> dict[str, float]:
    """One method's border shares (the localised map and the magnitudes), their ratios to the objects'
    share, and the magnitudes' density in the border and the corners against the background inside them
    (pixels off the objects and off the border): an edge artefact shows as a density above 1."""
    band, corner, off_objects = border(*masks.shape[-2:]), corners(*masks.shape[-2:]), masks == 0
    background = off_objects & ~band
    localised, absolute = border_share(views["localised"], band), border_share(views["absolute"], band)
    return {"share": localised, "share_absolute": absolute, "ratio": ratio(localised, objects),
            "ratio_absolute": ratio(absolute, objects),
            "border_density": density(views["absolute"], band & off_objects, background),
            "corner_density": density(views["absolute"], corner & off_objects, background)}  # fmt: skip


def pool_routing(model: torch.nn.Module, inputs: Tensor, targets: Tensor) -> dict[str, Any] | None:
    """Where the model's first max-pool passes the class score's gradient back: the share of the values
    entering it that receive any, at the 2x2 corners of its input, along the rest of its outer 2 rows and
    columns, and inside (None: no max-pool). A window at the edge holds fewer real values (the rest is
    padding), so an edge value wins it, and is routed, more often."""
    found = routed_values(model, inputs, targets)
    if found is None:
        return None
    pool, values = found
    routed = values.float().mean(dim=(0, 1))
    corner, band = corners(*routed.shape), border(*routed.shape)
    regions = {"corners": corner, "edges": band & ~corner, "inside": ~band}
    return {"pool": pool, **{name: float(routed[region].mean()) for name, region in regions.items()}}


def measure_run(run_dir: Path, images: int) -> dict[str, Any]:
    """Border shares of every method's maps and of the masks on one run's test images."""
    run, inputs, targets, masks = test_batch(run_dir, images)
    band = border(*inputs.shape[-2:])
    objects = border_share(masks, band)
    methods = {}
    for name in METHODS:
        method = Recompute(name, method_settings(name, {}), run.black_image(), run.datamodule.num_classes)
        methods[name] = method_row(method.views(run.model, inputs, targets)[""], masks, objects)
    ratios = [row[key] for row in methods.values() for key in ("ratio", "ratio_absolute")]
    worst = None if None in ratios else max(ratios)
    return {"run": f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}", "data": run.datamodule.name,
            "side": int(inputs.shape[-1]), "images": len(inputs), "area_share": float(band.float().mean()),
            "objects_share": objects, "methods": methods, "pool_routing": pool_routing(run.model, inputs, targets),
            "worst_ratio": worst,
            "goal_met": worst is not None and worst <= GOAL}  # fmt: skip


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick and not args.runs:
        with tempfile.TemporaryDirectory(prefix="convlens-border-") as folder:
            runs = [measure_run(stage_passes.tiny_run(Path(folder)), args.images)]
    else:
        runs = [measure_run(path, args.images) for path in args.runs or DEFAULT_RUNS]
    config = {
        "images": args.images,
        "border_pixels": BORDER,
        "methods": list(METHODS),
        "threads": torch.get_num_threads(),
    }
    return {"config": config, "runs": runs, "goal": GOAL, "goal_met": all(run["goal_met"] for run in runs)}


def show(result: dict[str, Any], device: torch.device) -> None:
    keys = ("share", "share_absolute", "ratio", "ratio_absolute", "border_density", "corner_density")
    print("objects_share: the masks' share in the border; area_share: the border's share of the image")
    rows = [[run["run"], name, run["objects_share"], run["area_share"], *(row[key] for key in keys)]
            for run in result["runs"] for name, row in run["methods"].items()]  # fmt: skip
    keys = ("run", "method", "objects_share", "area_share", *keys)
    print(records.table(keys, rows))
    worst = [f"{run['run']} worst {records.num(run['worst_ratio']) or 'none (no object in the border)'}"
             for run in result["runs"]]  # fmt: skip
    print(f"goal: every ratio <= {GOAL}: " + ", ".join(worst))
    for run in result["runs"]:
        routing = run.get("pool_routing")
        if routing:
            shares = ", ".join(f"{name} {routing[name]:.3f}" for name in ("corners", "edges", "inside"))
            print(f"{run['run']}: share of the values entering {routing['pool']} that receive gradient: {shares}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    arguments.add_runs_flag(parser)
    parser.add_argument("--images", type=int, default=200, help="test images per run")
    args = parser.parse_args(argv)
    if args.quick:
        args.images = 16
    arguments.require_runs(args, DEFAULT_RUNS)
    device = arguments.configure(args)
    return records.record(args, "border_share", device, lambda: measure(args), show)


if __name__ == "__main__":
    main()
