"""Convolution weight gradients on tiny maps: oneDNN's own path vs one batched matrix product
(``convlens.training.conv_grad``), for single convolutions and for the fp32 ResNet-18 training step
of ``demo_shapes`` (batch 128; at 32 px ``layer3`` and ``layer4`` run on 2x2 and 1x1 maps, at the
demo's 33 px on 3x3 and 2x2).

Part 1 times the weight gradient alone for the 3x3 convolutions of a ResNet's four stages at
``--image-size`` (see :func:`stage_maps`), oneDNN's ``convolution_backward`` against convlens's
``batched_weight_gradient``; this is what sets ``MAX_POSITIONS``. Part 2 trains two copies of the
model (same initial weights, same batch), without and with the hooks, in alternating windows; the
speed-up is the median ratio of the rounds. Both are CPU measurements: on a GPU the hooks are never installed.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from typing import Any

import arguments
import records
import torch
from precision_layout import Variant, seeded_start
from torch import nn

from convlens.training.conv_grad import batched_weight_gradient


def stage_maps(image_size: int) -> list[tuple[int, int]]:
    """(channels, map side) of the 3x3 convolutions of a ResNet-18's layer4..layer1 at ``image_size``
    (stem: 7x7 stride-2 convolution and 3x3 stride-2 max-pool; each later stage halves, rounding up):
    at 32 px 1, 2, 4, 8; at 33 px 2, 3, 5, 9."""
    side = (image_size - 1) // 2 + 1
    side = (side - 1) // 2 + 1
    sides = [side]
    for _ in range(3):
        sides.append((sides[-1] - 1) // 2 + 1)
    return list(zip((512, 256, 128, 64), reversed(sides), strict=True))


def _milliseconds(fn: Any, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def onednn_weight_gradient(x: torch.Tensor, conv: nn.Conv2d, grad: torch.Tensor) -> torch.Tensor:
    """oneDNN's weight gradient alone, as autograd calls it (input and bias gradients masked off)."""
    settings = [list(conv.stride), list(conv.padding), list(conv.dilation), False, [0, 0], conv.groups]
    return torch.ops.aten.convolution_backward(grad, x, conv.weight, None, *settings, [False, True, False])[1]


def weight_gradient_times(batch: int, image_size: int, repeats: int) -> list[dict[str, Any]]:
    """Median ms of the weight gradient of one 3x3 convolution (channels_last, padding 1), both ways."""
    rows = []
    for channels, side in stage_maps(image_size):
        fmt = torch.channels_last
        conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(memory_format=fmt)
        x = torch.randn(batch, channels, side, side).contiguous(memory_format=fmt)
        grad = torch.randn(batch, channels, side, side).contiguous(memory_format=fmt)
        with torch.no_grad():
            plain_ms = _milliseconds(partial(onednn_weight_gradient, x, conv, grad), repeats)
            batched_ms = _milliseconds(partial(batched_weight_gradient, x, grad, conv), repeats)
        rows.append({"channels": channels, "map": f"{side}x{side}", "positions": side * side,
                     "onednn_ms": plain_ms, "batched_ms": batched_ms, "speedup": plain_ms / batched_ms})  # fmt: skip
    return rows


def training_step_ratio(args: Any, device: torch.device) -> dict[str, Any]:
    """Alternating windows of the two model copies; images/s and the median per-round ratio."""
    state, batch = seeded_start(args.batch_size, args.image_size)
    variants = {flag: Variant("fp32", "channels_last", state, device, batch, batched_weight_grad=flag)
                for flag in (False, True)}  # fmt: skip
    for variant in variants.values():  # warm-up: oneDNN builds its kernels on the first steps
        variant.window(1)
    rates: dict[bool, list[float]] = {False: [], True: []}
    for round_index in range(args.rounds):
        for flag in (False, True) if round_index % 2 == 0 else (True, False):
            rates[flag].append(variants[flag].window(args.steps))
    ratios = [b / a for a, b in zip(rates[False], rates[True], strict=True)]
    return {
        "plain_images_per_s": statistics.median(rates[False]),
        "batched_images_per_s": statistics.median(rates[True]),
        "speedup": statistics.median(ratios),
        "speedup_min": min(ratios),
        "speedup_max": max(ratios),
    }


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    torch.set_flush_denormal(True)  # as the train stage does
    return {
        "config": arguments.step_config(args),
        "convolutions": weight_gradient_times(args.batch_size, args.image_size, args.repeats),
        "training_step": training_step_ratio(args, device),
    }


def show(run: dict[str, Any], device: torch.device) -> None:
    config, step = run["config"], run["training_step"]
    print(f"\nWeight gradient of one 3x3 convolution, batch {config['batch_size']}, channels_last, fp32, {device}")
    print(records.table(
        ["channels", "map", "oneDNN ms", "batched ms", "speed-up"],
        [(r["channels"], r["map"], r["onednn_ms"], r["batched_ms"], r["speedup"]) for r in run["convolutions"]],
    ))  # fmt: skip
    print(
        f"\nResNet-18 training step at {config['image_size']} px, batch {config['batch_size']}: plain "
        f"{step['plain_images_per_s']:.0f} img/s, batched weight gradients {step['batched_images_per_s']:.0f} img/s, "
        f"speed-up {step['speedup']:.2f}x (rounds {step['speedup_min']:.2f}-{step['speedup_max']:.2f})"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    p.add_argument("--batch-size", type=int, default=128, help="demo_shapes trains with 128")
    p.add_argument("--image-size", type=int, default=32, help="demo_shapes trains at 32 px")
    p.add_argument("--rounds", type=int, default=6, help="alternating window pairs")
    p.add_argument("--steps", type=int, default=4, help="training steps per window")
    p.add_argument("--repeats", type=int, default=10, help="timed repeats per single convolution")
    args = p.parse_args(argv)
    device = arguments.configure(args)
    if args.quick:
        args.batch_size, args.rounds, args.steps, args.repeats = 8, 2, 1, 2
    if device.type != "cpu":
        print("conv_weight_grad: a CPU measurement (the hooks are installed only for CPU training); using the CPU")
        device = torch.device("cpu")
    return records.record(args, "conv_weight_grad", device, partial(measure, args, device), show)


if __name__ == "__main__":
    main()
