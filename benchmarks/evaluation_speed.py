"""The evaluate stage's speed: its metrics against Quantus 0.6 doing the same work on the same model,
inputs and maps, and the whole stage on a demo run against the floor of its own model passes.

The model is the demo_faces FER CNN (random weights, seeded) on synthetic 48x48 faces with their
masks; the maps are saliency maps, and both sides recompute them with the same function where a
metric needs it. Per metric, the same work: pointing game, relevance mass and rank accuracy;
pixel flipping (our deletion curve pixel by pixel, ``patch=0``, on the equal-step share grid of
Quantus's ``features_in_step``, plus the all-removed end Quantus also takes) in ``--steps`` steps;
ROAD at five shares (ours also computes LeRF, twice the perturbations); the MPRT cascade over every
module with parameters, top down (ours re-initialises the same modules in the same order);
max-sensitivity over ``--samples`` noisy copies. Rounds alternate (ours, Quantus, ...) and report the
median time of each; the speed-up of the whole suite is Quantus's total over ours.

The stage part (:mod:`stage_passes`) times ``evaluate_run`` on a copy of ``--run`` with its default
settings against a replay of exactly its model passes, alternating over the same ``--rounds``.
Goals: stage <= 1.3x its passes, whole suite >= 1x Quantus, on the CPU; the load is recorded.

    .venv/bin/python benchmarks/evaluation_speed.py --device cpu   (also run by `make bench`)
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import arguments
import numpy as np
import quantus
import records
import stage_passes
import timing
import torch
from omegaconf import OmegaConf
from paths import ROOT
from torch import nn

from convlens.data.synthetic.faces import make_faces
from convlens.evaluate import faithfulness as faith
from convlens.evaluate import localisation as local
from convlens.evaluate.randomization import cascade
from convlens.evaluate.recompute import Recompute
from convlens.evaluate.robustness import RobustnessParams, max_sensitivity
from convlens.evaluate.similarity import spearman
from convlens.explain.attribution import SaliencyParams
from convlens.models import FerCNN

GOAL = 1.0  # whole suite vs Quantus, at least as fast
STAGE_GOAL = 1.3  # stage time over the time of its model passes, at most
FILL = -2.0  # the model input of a black pixel in the demo's normalisation
ROAD_SHARES = (0.1, 0.3, 0.5, 0.7, 0.9)
QUIET = {"disable_warnings": True, "display_progressbar": False}


def setup(images: int, device: torch.device) -> dict[str, Any]:
    """The demo_faces model (its recipe's widths, seeded random weights, eval mode), synthetic faces, masks,
    targets, saliency."""
    recipe = OmegaConf.load(ROOT / "conf" / "experiment" / "demo_faces.yaml").model
    torch.manual_seed(0)
    model = FerCNN(7, 1, widths=tuple(recipe.widths), hidden=recipe.hidden).eval().to(device)
    faces = make_faces(images, seed=0)
    inputs = ((torch.from_numpy(faces.images).float().permute(0, 3, 1, 2) / 255 - 0.5) / 0.25).to(device)
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1)
    saliency = Recompute("saliency", SaliencyParams(), torch.full_like(inputs[:1], FILL), 7)
    maps = saliency(model, inputs, targets)[""]
    return {"model": model, "inputs": inputs, "targets": targets, "masks": torch.from_numpy(faces.masks).to(device),
            "maps": maps, "saliency": saliency}  # fmt: skip


def ours(case: dict[str, Any], steps: int, samples: int) -> dict[str, Callable[[], object]]:
    """Our metrics, as the evaluation stage calls them."""
    probe = faith.Probe(case["model"], case["inputs"], case["targets"], torch.full_like(case["inputs"][:1], FILL))
    params = faith.FaithfulnessParams(shares=[k / steps for k in range(1, steps)], patch=0,
                                      road_percentages=list(ROAD_SHARES))  # fmt: skip
    filled = probe.fill.expand_as(probe.inputs)

    def localisation() -> object:
        return local.all_metrics(case["maps"], case["masks"])

    def pixel_flipping() -> object:
        ranks = faith.pixel_ranks(faith.patch_means(case["maps"], params.patch), probe.generator())
        curve = faith.switch_curve(probe, ranks, probe.inputs, probe.fill, params)
        return curve, faith.class_probability(probe.model, filled, probe.targets, params.batch_size)

    def road() -> object:
        return faith.road_curves(probe, faith.pixel_ranks(case["maps"], probe.generator()), params)

    def mprt() -> object:
        return [spearman(case["maps"], case["saliency"](randomized, case["inputs"], case["targets"])[""])
                for _, randomized in cascade(case["model"], _modules_top_down(case["model"]), 42)]  # fmt: skip

    def sensitivity() -> object:
        params = RobustnessParams(images=len(case["inputs"]), samples=samples)
        reference = {"": case["maps"]}
        return max_sensitivity(case["saliency"], case["model"], case["inputs"], case["targets"], reference, params)

    return {"localisation": localisation, "pixel_flipping": pixel_flipping, "road": road, "mprt": mprt,
            "max_sensitivity": sensitivity}  # fmt: skip


def theirs(case: dict[str, Any], steps: int, samples: int, device: torch.device) -> dict[str, Callable[[], object]]:
    """Quantus's metrics on the same model, arrays and explanation function."""
    arrays = {"model": case["model"], "x_batch": case["inputs"].cpu().numpy(), "y_batch": case["targets"].cpu().numpy(),
              "a_batch": case["maps"][:, None].cpu().numpy(), "device": str(device)}  # fmt: skip
    masks = case["masks"][:, None].cpu().numpy().astype(float)
    pixels = case["maps"][0].numel()

    def explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: Any) -> np.ndarray:
        x, y = torch.as_tensor(inputs, device=device), torch.as_tensor(targets, device=device)
        return case["saliency"](model, x, y)[""][:, None].cpu().numpy()

    def localisation() -> object:
        return [metric(**QUIET)(**arrays, s_batch=masks) for metric in
                (quantus.PointingGame, quantus.RelevanceMassAccuracy, quantus.RelevanceRankAccuracy)]  # fmt: skip

    def pixel_flipping() -> object:
        return quantus.PixelFlipping(features_in_step=pixels // steps, perturb_baseline=FILL, **QUIET)(**arrays)

    def road() -> object:
        return quantus.ROAD(percentages=[100 * share for share in ROAD_SHARES], **QUIET)(**arrays)

    def mprt() -> object:
        return quantus.MPRT(layer_order="top_down", seed=42, **QUIET)(**arrays, explain_func=explain)

    def sensitivity() -> object:
        return quantus.MaxSensitivity(nr_samples=samples, lower_bound=0.2, **QUIET)(**arrays, explain_func=explain)

    return {"localisation": localisation, "pixel_flipping": pixel_flipping, "road": road, "mprt": mprt,
            "max_sensitivity": sensitivity}  # fmt: skip


def _modules_top_down(model: nn.Module) -> list[str]:
    """Every module with parameters to reset, last first: Quantus's MPRT cascade."""
    return [name for name, module in reversed(list(model.named_modules())) if hasattr(module, "reset_parameters")]


def _seconds(run: Callable[[], object], device: torch.device) -> float:
    started = time.perf_counter()
    run()
    timing.sync(device)
    return time.perf_counter() - started


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Both parts, and the goals of both."""
    run = metrics_against_quantus(args, device)
    stage = stage_passes.measure(args.run, args.rounds, device, args.quick)
    stage["goal_met"] = stage["ratio"]["median"] <= STAGE_GOAL
    met = run["speedup_total"] >= GOAL and stage["goal_met"]
    goal = f"stage <= {STAGE_GOAL:g}x its model passes, whole suite >= {GOAL:g}x Quantus, on the CPU"
    return run | {"stage": stage, "goal": goal, "goal_met": met}


def metrics_against_quantus(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Per metric, ours and Quantus's median seconds over the alternating rounds, and the whole suite's ratio."""
    case = setup(args.images, device)
    sides = {"ours": ours(case, args.steps, args.samples), "quantus": theirs(case, args.steps, args.samples, device)}
    times: dict[str, dict[str, list[float]]] = {side: {name: [] for name in sides["ours"]} for side in sides}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sides["ours"]:  # warm-up: oneDNN builds its kernels on the first calls
            sides["ours"][name]()
        for index in range(args.rounds):
            for side in ("ours", "quantus") if index % 2 == 0 else ("quantus", "ours"):
                for name, run in sides[side].items():
                    times[side][name].append(_seconds(run, device))
    metrics = {name: {"ours_s": statistics.median(times["ours"][name]),
                      "quantus_s": statistics.median(times["quantus"][name])} for name in times["ours"]}  # fmt: skip
    for entry in metrics.values():
        entry["speedup"] = entry["quantus_s"] / entry["ours_s"]
    total = sum(m["quantus_s"] for m in metrics.values()) / sum(m["ours_s"] for m in metrics.values())
    widths = [module.out_channels for module in case["model"].modules() if isinstance(module, nn.Conv2d)]
    config = {"model": f"FerCNN demo_faces ({widths[0]}-{widths[-1]})", "images": args.images, "image_size": 48,
              "steps": args.steps, "road_shares": list(ROAD_SHARES), "samples": args.samples, "rounds": args.rounds,
              "mprt_modules": len(_modules_top_down(case["model"])), "quantus": quantus.__version__,
              "threads": torch.get_num_threads()}  # fmt: skip
    return {"config": config, "metrics": metrics, "speedup_total": total}


def show(run: dict[str, Any], device: torch.device) -> None:
    config, stage = run["config"], run["stage"]
    print(f"\n{config['model']} on {device}, {config['images']} images 48x48, Quantus {config['quantus']}")
    rows = [(name, m["ours_s"], m["quantus_s"], m["speedup"]) for name, m in run["metrics"].items()]
    print(records.table(["metric", "ours s", "Quantus s", "speed-up"], rows))
    print(f"whole suite: {run['speedup_total']:.2f}x Quantus's speed")
    print(f"\nevaluate stage on {stage['run']} ({config['rounds']} rounds), passes: {stage['passes']}")
    names = {"stage s": "stage_s", "model passes s": "replay_s", "stage / passes": "ratio"}
    rows = [(name, stage[key]["median"], stage[key]["min"], stage[key]["max"]) for name, key in names.items()]
    print(records.table(["", "median", "min", "max"], rows))
    print(f"goal {run['goal']}: {'met' if run['goal_met'] else 'NOT met'}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    p.add_argument("--images", type=int, default=16, help="synthetic faces evaluated at once")
    p.add_argument("--steps", type=int, default=8, help="pixel-flipping steps (48*48 must divide by it)")
    p.add_argument("--samples", type=int, default=5, help="noisy copies per image for max-sensitivity")
    p.add_argument("--rounds", type=int, default=7, help="alternating rounds of both parts; medians are reported")
    p.add_argument("--run", type=Path, default=None, help="a trained, visualized run directory (default "
                   f"{stage_passes.DEFAULT_RUN.relative_to(stage_passes.ROOT)}; {stage_passes.MAKE_ONE}); "
                   "the stage runs on a copy")  # fmt: skip
    args = p.parse_args(argv)
    stage_passes.check_run(args.run, args.quick)
    device = arguments.configure(args)
    if args.quick:
        args.images, args.samples, args.rounds = 4, 2, 1
    return records.record(args, "evaluation_speed", device, partial(measure, args, device), show)


if __name__ == "__main__":
    main()
