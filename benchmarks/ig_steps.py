"""How many Integrated Gradients steps the evaluation needs: the completeness error at each step count.

Integrated Gradients' attributions sum to the class score's change from the baseline to the image
(Sundararajan et al. 2017, completeness); a Riemann sum over too few steps misses it. For each trained
run (``--runs``; default the two ``make demo`` runs), the first ``--images`` test images are explained
for the predicted class from the run's black image with captum's ``IntegratedGradients`` at each of
``--steps`` (Gauss-Legendre, captum's default, as the visualize stage uses), and captum's convergence
delta is divided by the score's change: the relative completeness error per image, its median and
maximum. It measures accuracy, not time, so the load does not matter. Results go to
benchmarks/results/ig_steps.json and docs/trust.md cites them: the step count the stages use is the
smallest with a median error under ``GOAL`` on every run.
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
from captum.attr import IntegratedGradients
from paths import ROOT

from convlens.explain.selection import predict
from convlens.rundir import load_run

DEFAULT_RUNS = [ROOT / "outputs" / name / "latest" for name in ("demo_shapes", "demo_faces")]
DEFAULT_STEPS = (8, 16, 32, 64)
#: The median relative completeness error the stages' step count must stay under.
GOAL = 0.015


def errors(run_dir: Path, images: int, steps: int) -> torch.Tensor:
    """Per image, |captum's convergence delta| / |score(image) - score(black)| at ``steps``."""
    run = load_run(run_dir)
    inputs = run.datamodule.preprocess(run.datamodule.split("test").images[:images])
    targets = predict(run.model, inputs).argmax(1)
    black = run.black_image().expand_as(inputs)
    _, delta = IntegratedGradients(run.model).attribute(
        inputs, black, target=targets, n_steps=steps, return_convergence_delta=True
    )
    with torch.no_grad():
        change = (run.model(inputs) - run.model(black)).gather(1, targets[:, None])[:, 0]
    return delta.abs() / change.abs().clamp_min(1e-6)


def measure_run(run_dir: Path, images: int, steps: tuple[int, ...]) -> dict[str, Any]:
    rows = {}
    for count in steps:
        found = errors(run_dir, images, count)
        rows[str(count)] = {"median": float(found.median()), "max": float(found.max())}
    return {"run": f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}", "images": images, "steps": rows}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.quick and not args.runs:
        with tempfile.TemporaryDirectory(prefix="convlens-ig-") as folder:
            runs = [measure_run(stage_passes.tiny_run(Path(folder)), args.images, tuple(args.steps))]
    else:
        runs = [measure_run(path, args.images, tuple(args.steps)) for path in args.runs or DEFAULT_RUNS]
    smallest = [min((int(steps) for steps, found in run["steps"].items() if found["median"] < GOAL), default=None)
                for run in runs]  # fmt: skip
    enough = None if None in smallest else max(smallest)
    return {"config": {"images": args.images, "steps": args.steps}, "runs": runs, "goal": GOAL, "enough": enough}


def show(result: dict[str, Any], device: torch.device) -> None:
    rows = [[run["run"], steps, found["median"], found["max"]]
            for run in result["runs"] for steps, found in run["steps"].items()]  # fmt: skip
    print(records.table(("run", "steps", "median relative error", "max relative error"), rows))
    print(f"fewest steps with a median error under {GOAL} on every run: {result['enough']}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    arguments.add_runs_flag(parser)
    parser.add_argument("--images", type=int, default=64, help="test images per run")
    parser.add_argument("--steps", type=int, nargs="+", default=list(DEFAULT_STEPS), help="step counts to compare")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.steps = 4, [4, 8]
    arguments.require_runs(args, DEFAULT_RUNS)
    device = arguments.configure(args)
    return records.record(args, "ig_steps", device, lambda: measure(args), show)


if __name__ == "__main__":
    main()
