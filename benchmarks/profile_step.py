"""Where a ResNet-18 training step at 224 spends its time in the convlens pipeline (ImageDataModule
batches, BatchTransform, channels_last ClassifierModule under a Lightning Trainer).

Two measurements over the same run: (1) wall-clock regions of each step (transform, forward, the rest
of training_step, backward, optimizer step, everything else) on unprofiled steps, giving the share of
time that is not the model's own work (forward + backward + optimizer step); (2) torch.profiler's top
operators over a few more steps.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from functools import partial
from typing import Any

import arguments
import cifar10_data
import pipelines
import pytorch_lightning as pl
import records
import timing
import torch
from torch import Tensor

MODEL_REGIONS = ("forward", "backward", "optimizer_step")
REGIONS = ("transform", *MODEL_REGIONS, "training_step_rest", "other")


class RegionClock(pl.Callback):
    """Accumulates wall time per region of each training step (synchronizing a GPU at every boundary,
    which costs a little throughput but makes the regions true)."""

    def __init__(self, device: torch.device, warmup: int, steps: int) -> None:
        self.device, self.warmup, self.steps = device, warmup, steps
        self.current: dict[str, float] = defaultdict(float)
        self.totals: dict[str, float] = defaultdict(float)
        self.marks: dict[str, float] = {}
        self.done = 0
        self.last_end = 0.0
        self.step_seconds = 0.0
        self.images = 0

    def now(self) -> float:
        timing.sync(self.device)
        return time.perf_counter()

    def begin(self, region: str) -> None:
        self.marks[region] = self.now()

    def end(self, region: str) -> None:
        self.current[region] += self.now() - self.marks.pop(region)

    def timed_transform(self, transform: Any) -> Any:
        clock = self

        class Timed:
            def __call__(self, images: Tensor, train: bool, generator: torch.Generator | None = None) -> Tensor:
                clock.begin("transform")
                x = transform(images, train, generator)
                clock.end("transform")
                return x

            def __getattr__(self, name: str) -> Any:
                return getattr(transform, name)

        return Timed()

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        module.net.register_forward_pre_hook(lambda *_: self.begin("forward"))
        module.net.register_forward_hook(lambda *_: self.end("forward"))
        optimizer = trainer.optimizers[0]
        # Lightning runs training_step and backward in a closure inside optimizer.step(), so the step's own
        # work starts after the backward pass (on_after_backward) and ends at the post-step hook.
        optimizer.register_step_post_hook(lambda *_: self.end("optimizer_step"))
        self.last_end = self.now()

    def on_train_batch_start(self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, index: int) -> None:
        self.begin("training_step")

    def on_before_backward(self, trainer: pl.Trainer, module: pl.LightningModule, loss: Tensor) -> None:
        self.end("training_step")
        self.begin("backward")

    def on_after_backward(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self.end("backward")
        self.begin("optimizer_step")

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        end = self.now()
        self.done += 1
        if self.warmup < self.done <= self.warmup + self.steps:
            step = end - self.last_end
            self.step_seconds += step
            self.images += len(batch[1])
            self.current["training_step_rest"] = self.current.pop("training_step") - self.current["forward"]
            self.current["other"] = step - sum(self.current.values())
            for region, seconds in self.current.items():
                self.totals[region] += seconds
        self.current = defaultdict(float)
        self.last_end = self.now()


class Profile(pl.Callback):
    """torch.profiler over the steps after ``start`` training steps."""

    def __init__(self, device: torch.device, start: int) -> None:
        self.start, self.done = start, 0
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        self.profiler = torch.profiler.profile(activities=activities)
        self.seconds = 0.0
        self.device = device

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        self.done += 1
        if self.done == self.start:
            self.profiler.start()
            self.started = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        timing.sync(self.device)
        self.seconds = time.perf_counter() - self.started
        self.profiler.stop()


def top_ops(profile: Profile, steps: int, device: torch.device, count: int) -> list[dict[str, Any]]:
    """The operators with the most self time, per step, and their share of the profiled wall time."""
    key = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = sorted(profile.profiler.key_averages(), key=lambda e: getattr(e, key), reverse=True)
    wall_us = profile.seconds * 1e6
    return [
        {
            "op": event.key,
            "calls_per_step": event.count / steps,
            "self_ms_per_step": getattr(event, key) / steps / 1e3,
            "share": getattr(event, key) / wall_us,
        }
        for event in events[:count]
    ]


def measure(args: argparse.Namespace, data: cifar10_data.Loaded, device: torch.device) -> dict[str, Any]:
    """Region clock over the first steps after warm-up, then torch.profiler over the last ones."""
    from convlens.models import ResNet

    precision = pipelines.resolve_precision(device, args.precision, args.image_size)
    torch.manual_seed(0)
    datamodule = cifar10_data.cifar10_datamodule(data, args.image_size, args.batch_size)
    module = pipelines.classifier(ResNet(18, 10), channels_last=args.channels_last)
    clock = RegionClock(device, args.warmup, args.steps)
    datamodule.transform = clock.timed_transform(datamodule.transform)
    profile = Profile(device, args.warmup + args.steps)
    total_steps = args.warmup + args.steps + args.profile_steps
    trainer = pipelines.bench_trainer(device, precision, total_steps, [clock, profile])
    trainer.fit(module, datamodule=datamodule)

    regions = {
        name: {"ms_per_step": clock.totals[name] / args.steps * 1e3, "share": clock.totals[name] / clock.step_seconds}
        for name in REGIONS
    }
    config = {
        "model": "ResNet-18",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "precision": precision,
        "channels_last": args.channels_last,
        "warmup": args.warmup,
        "steps": args.steps,
        "profile_steps": args.profile_steps,
        "data": data.origin,
    }
    return {
        "config": config,
        "step_seconds": clock.step_seconds / args.steps,
        "images_per_s": clock.images / clock.step_seconds,
        "regions": regions,
        "outside_model_share": 1 - sum(regions[name]["share"] for name in MODEL_REGIONS),
        "top_ops": top_ops(profile, args.profile_steps, device, 15),
    }


def show(run: dict[str, Any], device: torch.device) -> None:
    config = run["config"]
    print(
        f"\nconvlens training step, ResNet-18 at {config['image_size']}, batch {config['batch_size']}, {device}, "
        f"{config['precision']}, channels_last={config['channels_last']}: {run['step_seconds']:.3f} s/step, "
        f"{run['images_per_s']:.2f} images/s"
    )
    print(
        records.table(
            ["region", "ms/step", "share"], [(n, r["ms_per_step"], r["share"]) for n, r in run["regions"].items()]
        )
    )
    print(
        "share of the step outside the model's own work (forward, backward, optimizer step): "
        f"{run['outside_model_share']:.1%}\n"
    )
    print(
        records.table(
            ["op", "calls/step", "self ms/step", "share"],
            [(o["op"], o["calls_per_step"], o["self_ms_per_step"], o["share"]) for o in run["top_ops"]],
        )
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parents = [arguments.SHARED_FLAGS, arguments.PRECISION_FLAG]
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=parents)
    p.add_argument("--batch-size", type=int, default=None, help="default 16 on the CPU, 256 on a GPU")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--steps", type=int, default=5, help="steps timed by region")
    p.add_argument("--profile-steps", type=int, default=2, help="steps under torch.profiler")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    args = p.parse_args(argv)
    if args.quick:
        args.image_size, args.warmup, args.steps, args.profile_steps = 64, 1, 1, 1
        args.batch_size = args.batch_size or 4
    device = arguments.configure(args)
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 16)
    data = cifar10_data.load_cifar10(args.data_dir, synthetic_size=max(512, args.batch_size * 16))
    return records.record(args, "profile_step", device, partial(measure, args, data, device), show)


if __name__ == "__main__":
    main()
