"""Lightning's overhead: our ClassifierModule under a Lightning Trainer vs a hand-written loop over the
same pipeline (same ImageDataModule batches and BatchTransform, the same model and optimizer objects,
the same precision), in alternating windows of one run.

The hand-written loop does what a user without Lightning would write: transform, forward, label-smoothed
cross-entropy, backward, optimizer step, zero_grad. So the measured overhead is everything our
LightningModule adds on top (torchmetrics updates, ``self.log``) plus Lightning's loop and hooks.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from functools import partial
from typing import Any

import arguments
import cifar10_data
import pipelines
import records
import timing
import torch
import torch.nn.functional as F

#: The issue's bar: Lightning may cost at most this share of the hand loop's speed.
GOAL = 0.05


class HandLoop:
    """Trains ``module`` with ``optimizer`` on the data module's own training batches, in windows."""

    def __init__(
        self, datamodule: Any, module: Any, optimizer: torch.optim.Optimizer, device: torch.device, precision: str
    ) -> None:
        self.datamodule, self.module, self.optimizer, self.device = datamodule, module, optimizer, device
        self.autocast = precision.startswith("bf16")
        self.loader = datamodule.train_dataloader()  # its own iterator: the same batch order as Lightning's
        self.epoch = 0
        self.batches: Iterator = iter(self.loader)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return next(self.batches)
        except StopIteration:
            self.epoch += 1
            self.loader.sampler.set_epoch(self.epoch)
            self.batches = iter(self.loader)
            return next(self.batches)

    @torch.enable_grad()
    def window(self, steps: int) -> timing.Window:
        timing.sync(self.device)
        started = time.perf_counter()
        images = 0
        for _ in range(steps):
            batch, labels = self.next_batch()
            batch, labels = batch.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            x = self.datamodule.transform(batch, train=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.module(x)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=pipelines.LABEL_SMOOTHING)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            images += len(labels)
        timing.sync(self.device)
        return timing.Window(images, time.perf_counter() - started)


def measure(args: argparse.Namespace, data: cifar10_data.Loaded, device: torch.device) -> dict[str, Any]:
    """One Trainer run whose windows alternate with windows of the hand loop over the same objects."""
    import pytorch_lightning as pl

    from convlens.models import ResNet

    torch.manual_seed(0)
    precision = pipelines.resolve_precision(device, args.precision, args.image_size)
    datamodule = cifar10_data.cifar10_datamodule(data, args.image_size, args.batch_size)
    module = pipelines.classifier(ResNet(18, 10))
    hand: dict[str, HandLoop] = {}

    class StartHandLoop(pl.Callback):
        """The hand loop needs the set-up data module and the optimizer that Lightning created."""

        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            hand["loop"] = HandLoop(datamodule, pl_module, trainer.optimizers[0], device, precision)

    interleave = timing.interleaver(args.steps, args.warmup, {"hand": lambda: hand["loop"].window(args.steps)}, device)
    max_steps = args.warmup + args.rounds * args.steps
    trainer = pipelines.bench_trainer(device, precision, max_steps, [StartHandLoop(), interleave])
    trainer.fit(module, datamodule=datamodule)

    lightning = timing.summarize_windows(interleave.results["lightning"])
    hand_result = timing.summarize_windows(interleave.results["hand"])
    ratio = timing.paired_ratio(interleave.results["lightning"], interleave.results["hand"])
    overhead = {key: 1 - value for key, value in ratio.items()}  # slower Lightning windows -> positive overhead
    overhead["min"], overhead["max"] = overhead["max"], overhead["min"]
    return {
        "config": arguments.step_config(args) | {"precision": precision, "channels_last": True, "data": data.origin},
        "lightning": lightning,
        "hand": hand_result,
        "overhead": overhead,
        "goal_overhead": GOAL,
        "goal_met": overhead["median"] <= GOAL,
    }


def show(run: dict[str, Any], device: torch.device) -> None:
    config, overhead = run["config"], run["overhead"]
    print(f"\nResNet-18 at {config['image_size']}, batch {config['batch_size']}, {device}, {config['precision']}")
    rows = [
        ("Lightning", run["lightning"]["images_per_s_median"]),
        ("hand-written", run["hand"]["images_per_s_median"]),
    ]
    print(records.table(["loop", "images/s (median)"], rows))
    print(
        f"Lightning overhead: {overhead['median']:.1%} (per-round range {overhead['min']:.1%} to "
        f"{overhead['max']:.1%}), goal <= {GOAL:.0%}: {'met' if run['goal_met'] else 'NOT met'}"
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parents = [arguments.SHARED_FLAGS, arguments.PRECISION_FLAG, arguments.WINDOW_FLAGS]
    args = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=parents).parse_args(argv)
    device = arguments.configure(args)
    arguments.window_sizes(args, device)
    data = cifar10_data.load_cifar10(args.data_dir, synthetic_size=max(1024, args.batch_size * 24))
    return records.record(args, "lightning_overhead", device, partial(measure, args, data, device), show)


if __name__ == "__main__":
    main()
