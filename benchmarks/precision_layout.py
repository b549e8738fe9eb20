"""Does precision (fp32 vs bf16 autocast) or memory layout (NCHW vs channels_last) matter for a
ResNet-18 training step at 224 on this device? The bare step (forward, cross-entropy, backward, SGD
step) on a fixed batch, so only the model's arithmetic is compared; the four variants take turns in
every round (rotating the order) and each speed is a ratio to fp32 NCHW in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from functools import partial
from typing import Any

import arguments
import pipelines
import records
import timing
import torch
import torch.nn.functional as F
from torch import Tensor, nn

VARIANTS = (("fp32", "nchw"), ("fp32", "channels_last"), ("bf16", "nchw"), ("bf16", "channels_last"))


class Variant:
    """One model copy (same initial weights) with its own optimizer, run in one precision and layout
    (and, with ``batched_weight_grad``, convlens's weight gradients for tiny-map convolutions)."""

    def __init__(
        self,
        precision: str,
        layout: str,
        state: dict,
        device: torch.device,
        batch: tuple,
        batched_weight_grad: bool = False,
    ) -> None:
        from convlens.models import ResNet
        from convlens.training.conv_grad import hook_batched_weight_grads

        self.precision, self.layout, self.device = precision, layout, device
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        net = ResNet(18, 10)
        net.load_state_dict(state)
        self.net: nn.Module = net.to(device, memory_format=fmt)
        if batched_weight_grad:
            hook_batched_weight_grads(self.net)
        self.optimizer = pipelines.sgd(self.net.parameters(), pipelines.OPTIMIZER)
        self.images = batch[0].to(device).contiguous(memory_format=fmt)
        self.labels = batch[1].to(device)

    def step(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            logits = self.net(self.images)
        F.cross_entropy(logits.float(), self.labels, label_smoothing=pipelines.LABEL_SMOOTHING).backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def window(self, steps: int) -> float:
        timing.sync(self.device)
        started = time.perf_counter()
        for _ in range(steps):
            self.step()
        timing.sync(self.device)
        return steps * len(self.labels) / (time.perf_counter() - started)


def seeded_start(batch_size: int, image_size: int) -> tuple[dict[str, Tensor], tuple[Tensor, Tensor]]:
    """ResNet-18 initial weights and one random batch (images, labels), both from seed 0: what every
    compared model copy starts from."""
    from convlens.models import ResNet

    torch.manual_seed(0)
    state = ResNet(18, 10).state_dict()
    batch = torch.randn(batch_size, 3, image_size, image_size), torch.randint(0, 10, (batch_size,))
    return state, batch


def measure(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """The four variants in turns (rotating the order each round); speeds relative to fp32 NCHW."""
    state, batch = seeded_start(args.batch_size, args.image_size)
    variants = [Variant(precision, layout, state, device, batch) for precision, layout in VARIANTS]
    for variant in variants:  # warm-up: oneDNN builds its kernels on the first steps
        variant.window(1)
    rates: dict[int, list[float]] = {index: [] for index in range(len(variants))}
    for round_index in range(args.rounds):
        order = [(round_index + k) % len(variants) for k in range(len(variants))]
        for index in order:
            rates[index].append(variants[index].window(args.steps))

    reference = rates[0]
    rows = []
    for index, variant in enumerate(variants):
        ratios = [a / b for a, b in zip(rates[index], reference, strict=True)]
        rows.append(
            {
                "precision": variant.precision,
                "layout": variant.layout,
                "images_per_s_median": statistics.median(rates[index]),
                "images_per_s_windows": [round(r, 3) for r in rates[index]],
                "vs_fp32_nchw": statistics.median(ratios),
            }
        )
    return {"config": arguments.step_config(args), "variants": rows}


def show(run: dict[str, Any], device: torch.device) -> None:
    config = run["config"]
    print(f"\nResNet-18 training step at {config['image_size']}, batch {config['batch_size']}, {device}")
    print(
        records.table(
            ["precision", "layout", "images/s (median)", "vs fp32 NCHW"],
            [(r["precision"], r["layout"], r["images_per_s_median"], r["vs_fp32_nchw"]) for r in run["variants"]],
        )
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=[arguments.SHARED_FLAGS])
    p.add_argument("--batch-size", type=int, default=None, help="default 16 on the CPU, 256 on a GPU")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2, help="steps per window")
    args = p.parse_args(argv)
    device = arguments.configure(args)
    if args.quick:
        args.image_size, args.rounds, args.steps, args.batch_size = 64, 1, 1, args.batch_size or 4
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 16)
    return records.record(args, "precision_layout", device, partial(measure, args, device), show)


if __name__ == "__main__":
    main()
