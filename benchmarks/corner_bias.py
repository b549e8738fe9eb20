"""Where do a ResNet's input gradients sit, and why: the top-left bias of even input sizes.

Every stride-2 layer of a ResNet (the 7x7 stem convolution, the max-pool, the first convolution and
the projection shortcut of layer2..4) samples input positions 0, 2, 4, ... With an even input side
the last position, N-2, leaves the last row and column uncovered, so each downsampling shifts the
sampling grid by half its stride towards the top-left: after the five of them the grid of layer4
positions is 0, 32, 64, ... input pixels, its centre 15.5 px above and left of the image centre for
every N = 32k, and exactly centred for N = 32k + 1. A global average pool over that grid then sees
the image through receptive fields centred up and left (at 32 px, one 1x1 layer4 position whose
receptive field is centred on pixel (0, 0)).

Part 1 measures this on the architecture alone: randomly initialised ResNet-18s (batch norm with
random statistics, eval mode), the gradient of the pooled layer4 output w.r.t. random inputs, at
even and odd sides. Part 2 measures the vanilla-gradient saliency of trained runs (``--runs``) on
their test images next to where the objects are (the synthetic sets' masks), so a shift of the
maps can be told apart from a shift of the data. Part 3 prices the fix: the time of a ResNet-18
training step (fp32, channels-last, batched tiny-map weight gradients, as ``demo_shapes`` trains)
at 33 px against 32 px, in alternating windows of one process. Results go to
benchmarks/results/corner_bias.json and docs/spatial_bias.md.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

import arguments
import numpy as np
import records
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlens.explain.attribution import saliency_map, vanilla_gradients
from convlens.explain.selection import predict
from convlens.models import ResNet
from convlens.models.layers import layer_output
from convlens.rundir import load_run
from convlens.training.conv_grad import hook_batched_weight_grads

SIDES = (32, 33, 64, 65, 96, 97, 224, 225)
#: The corner blocks of the issue's measurement: 4x4 pixels.
CORNER = 4


def layer4_grid_offset(side: int) -> float:
    """Pixels by which the centre of layer4's sampling grid lies up/left of the image centre."""
    size = side
    for _ in range(5):  # stem conv, max-pool, layer2, layer3, layer4: kernel k, stride 2, padding k // 2
        size = (size - 1) // 2 + 1
    return (side - 1) / 2 - 16 * (size - 1)


def map_statistics(maps: np.ndarray) -> dict[str, float]:
    """Statistics of (B, H, W) non-negative maps: the share of the mass per quadrant, the centroid's
    offset from the centre as a fraction of the side (negative: up/left), the mean of each map
    normalized by its maximum in the top-left and top-right 4x4 corners, and how often the maximum
    lies in the top-left quadrant."""
    batch, height, width = maps.shape
    total = maps.sum(axis=(1, 2)) + 1e-12
    top, left = height // 2, width // 2
    quadrants = {"tl": maps[:, :top, :left], "tr": maps[:, :top, left:], "bl": maps[:, top:, :left],
                 "br": maps[:, top:, left:]}  # fmt: skip
    rows, cols = np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    centroid_y = ((maps * rows).sum(axis=(1, 2)) / total - (height - 1) / 2) / height
    centroid_x = ((maps * cols).sum(axis=(1, 2)) / total - (width - 1) / 2) / width
    normalized = maps / (maps.reshape(batch, -1).max(axis=1)[:, None, None] + 1e-12)
    argmax = maps.reshape(batch, -1).argmax(axis=1)
    stats = {f"share_{name}": float((part.sum(axis=(1, 2)) / total).mean()) for name, part in quadrants.items()}
    stats |= {
        "centroid_y": float(centroid_y.mean()),
        "centroid_x": float(centroid_x.mean()),
        "corner_tl": float(normalized[:, :CORNER, :CORNER].mean()),
        "corner_tr": float(normalized[:, :CORNER, -CORNER:].mean()),
        "argmax_in_tl": float(((argmax // width < top) & (argmax % width < left)).mean()),
    }
    return stats


def randomized(seed: int) -> nn.Module:
    """A ResNet-18 with random weights and random batch-norm statistics, in eval mode."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = ResNet(18, 10, 3)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            count = module.num_features
            module.weight.data = torch.rand(count, generator=generator) + 0.5
            module.bias.data = torch.randn(count, generator=generator) * 0.1
            module.running_mean = torch.randn(count, generator=generator) * 0.1
            module.running_var = torch.rand(count, generator=generator) + 0.5
    return model.eval()


def pooled_layer4_gradient(model: nn.Module, inputs: Tensor) -> np.ndarray:
    """|d mean(layer4 output) / d input|, max over channels: where the pooled features look."""
    inputs = inputs.clone().requires_grad_(True)
    layer_output(model, inputs, "layer4").mean().backward()
    return saliency_map(inputs.grad).numpy()


def architecture(sides: list[int], seeds: int, batch: int) -> list[dict[str, Any]]:
    rows = []
    for side in sides:
        maps = []
        for seed in range(seeds):
            inputs = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(1000 + seed))
            maps.append(pooled_layer4_gradient(randomized(seed), inputs))
        layer4 = layer_output(randomized(0), torch.zeros(1, 3, side, side), "layer4").shape[-1]
        rows.append({"side": side, "layer4": f"{layer4}x{layer4}", "grid_offset_px": layer4_grid_offset(side),
                     **map_statistics(np.concatenate(maps))})  # fmt: skip
    return rows


def trained(run_dir: Path, images: int) -> dict[str, Any]:
    """Saliency of a trained run's predicted class on its first test images, next to the masks."""
    run = load_run(run_dir)
    split = run.datamodule.split("test")
    inputs = run.datamodule.preprocess(split.images[:images])
    targets = predict(run.model, inputs).argmax(1)
    maps = saliency_map(vanilla_gradients(run.model, inputs, targets)).numpy()
    row = {"run": f"{run_dir.resolve().parent.name}/{run_dir.resolve().name}", "side": int(inputs.shape[-1]),
           "data": run.datamodule.name, **map_statistics(maps)}  # fmt: skip
    if split.masks is not None:
        masks = torch.nn.functional.interpolate(split.masks[:images, None].float(), size=inputs.shape[-2:])[:, 0]
        row |= {f"mask_{key}": value for key, value in map_statistics(masks.numpy()).items() if key.startswith("share")}
    return row


def step_cost(sides: tuple[int, int], batch: int, steps: int, rounds: int) -> dict[str, Any]:
    """Median ratio of training-step times at ``sides[1]`` vs ``sides[0]`` over ``rounds`` rounds of
    ``steps`` steps each, the two sides alternating so that a busy machine slows both alike."""
    torch.manual_seed(0)
    model = ResNet(18, 10, 3).to(memory_format=torch.channels_last).train()
    hook_batched_weight_grads(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    inputs = {side: torch.randn(batch, 3, side, side).contiguous(memory_format=torch.channels_last) for side in sides}
    labels = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(0))

    def window(side: int) -> float:
        started = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(inputs[side]), labels).backward()
            optimizer.step()
        return (time.perf_counter() - started) / steps

    for side in sides:
        window(side)  # warm-up: oneDNN picks its kernels per shape
    times = {side: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            times[side].append(window(side))
    ratios = [slow / fast for slow, fast in zip(times[sides[1]], times[sides[0]], strict=True)]
    per_step = {str(side): statistics.median(seconds) for side, seconds in times.items()}
    return {
        "sides": list(sides),
        "batch": batch,
        "seconds_per_step": per_step,
        "ratio_median": statistics.median(ratios),
        "ratio_min": min(ratios),
        "ratio_max": max(ratios),
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    runs = [trained(path, args.images) for path in args.runs]
    cost = step_cost((32, 33), args.cost_batch, args.cost_steps, args.cost_rounds)
    return {"architecture": architecture(args.sides, args.seeds, args.batch), "trained": runs, "step_cost": cost}


def show(run: dict[str, Any], device: torch.device) -> None:
    keys = ("side", "layer4", "grid_offset_px", "share_tl", "share_br", "centroid_y", "centroid_x", "corner_tl",
            "corner_tr", "argmax_in_tl")  # fmt: skip
    print(records.table(keys, [[row[key] for key in keys] for row in run["architecture"]]))
    keys = ("run", "side", "share_tl", "mask_share_tl", "share_br", "mask_share_br", "centroid_y", "centroid_x",
            "corner_tl", "corner_tr", "argmax_in_tl")  # fmt: skip
    print(records.table(keys, [[row.get(key) for key in keys] for row in run["trained"]]))
    cost = run["step_cost"]
    spread = f"{cost['ratio_min']:.2f}-{cost['ratio_max']:.2f}"
    print(f"training step at 33 px / 32 px: {cost['ratio_median']:.2f}x (rounds {spread})")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    parser.add_argument("--sides", type=int, nargs="+", default=list(SIDES))
    parser.add_argument("--seeds", type=int, default=4, help="random initialisations per side")
    parser.add_argument("--batch", type=int, default=8, help="random inputs per initialisation")
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="trained run directories to measure")
    parser.add_argument("--images", type=int, default=200, help="test images per trained run")
    parser.add_argument("--cost-batch", type=int, default=128, help="batch of the step-time comparison")
    parser.add_argument("--cost-steps", type=int, default=5, help="steps per timed window")
    parser.add_argument("--cost-rounds", type=int, default=7, help="alternating windows per side")
    args = parser.parse_args(argv)
    if args.quick:
        args.sides, args.seeds, args.batch, args.images = [32, 33], 1, 2, 16
        args.cost_batch, args.cost_steps, args.cost_rounds = 8, 1, 1
    device = arguments.configure(args)
    return records.record(args, "corner_bias", device, lambda: measure(args), show)


if __name__ == "__main__":
    main()
