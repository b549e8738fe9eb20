"""Lightning's overhead: our ClassifierModule under a Lightning Trainer vs a hand-written loop over the
same pipeline (same ImageDataModule batches and BatchTransform, the same model and optimizer objects,
the same precision), in alternating windows of one run.

The hand-written loop does what a user without Lightning would write: transform, forward, label-smoothed
cross-entropy, backward, optimizer step, zero_grad. So the measured overhead is everything our
LightningModule adds on top (torchmetrics updates, ``self.log``) plus Lightning's loop and hooks.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import benchlib
import torch
import torch.nn.functional as F


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
    def window(self, steps: int) -> benchlib.Window:
        benchlib.sync(self.device)
        started = time.perf_counter()
        images = 0
        for _ in range(steps):
            batch, labels = self.next_batch()
            batch, labels = batch.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
            x = self.datamodule.transform(batch, train=True)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                logits = self.module(x)
            loss = F.cross_entropy(logits.float(), labels, label_smoothing=benchlib.LABEL_SMOOTHING)
            loss.backward()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            images += len(labels)
        benchlib.sync(self.device)
        return benchlib.Window(images, time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import pytorch_lightning as pl

    p = benchlib.parser(__doc__)
    p.add_argument("--batch-size", type=int, default=None, help="default 32 on the CPU, 256 on a GPU")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=None, help="steps per window (default 3 CPU, 20 GPU)")
    p.add_argument("--warmup", type=int, default=2)
    benchlib.add_precision_flag(p)
    args = p.parse_args(argv)
    device = benchlib.configure(args)
    if args.quick:
        args.image_size, args.rounds, args.steps, args.warmup = 64, 1, 1, 1
        args.batch_size = args.batch_size or 4
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 32)
    args.steps = args.steps or (20 if device.type == "cuda" else 3)
    load = benchlib.LoadMonitor()
    data = benchlib.load_cifar10(args.data_dir, synthetic_size=max(1024, args.batch_size * 24))

    from convlens.models import ResNet

    torch.manual_seed(0)
    precision = benchlib.resolve_precision(device, args.precision)
    datamodule = benchlib.cifar10_datamodule(data, args.image_size, args.batch_size)
    module = benchlib.classifier(ResNet(18, 10))
    hand: dict[str, HandLoop] = {}

    class StartHandLoop(pl.Callback):
        """The hand loop needs the set-up data module and the optimizer that Lightning created."""

        def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
            hand["loop"] = HandLoop(datamodule, pl_module, trainer.optimizers[0], device, precision)

    interleave = benchlib.interleaver(
        args.steps, args.warmup, {"hand": lambda: hand["loop"].window(args.steps)}, device
    )
    max_steps = args.warmup + args.rounds * args.steps
    trainer = benchlib.bench_trainer(device, precision, max_steps, [StartHandLoop(), interleave])
    trainer.fit(module, datamodule=datamodule)

    lightning = benchlib.summarize_windows(interleave.results["lightning"])
    hand_result = benchlib.summarize_windows(interleave.results["hand"])
    ratio = benchlib.paired_ratio(interleave.results["lightning"], interleave.results["hand"])
    overhead = {key: 1 - value for key, value in ratio.items()}  # slower Lightning windows -> positive overhead
    overhead["min"], overhead["max"] = overhead["max"], overhead["min"]
    run = {
        "config": {
            "model": "ResNet-18",
            "image_size": args.image_size,
            "batch_size": args.batch_size,
            "precision": precision,
            "channels_last": True,
            "rounds": args.rounds,
            "steps_per_window": args.steps,
            "data": data.origin,
        },
        "lightning": lightning,
        "hand": hand_result,
        "overhead": overhead,
        "goal_overhead": 0.05,
        "goal_met": overhead["median"] <= 0.05,
    }
    print(f"\nResNet-18 at {args.image_size}, batch {args.batch_size}, {device}, {precision}")
    print(
        benchlib.markdown_table(
            ["loop", "images/s (median)"],
            [("Lightning", lightning["images_per_s_median"]), ("hand-written", hand_result["images_per_s_median"])],
        )
    )
    print(
        f"Lightning overhead: {overhead['median']:.1%} (per-round range {overhead['min']:.1%} to "
        f"{overhead['max']:.1%}), goal <= 5%: {'met' if run['goal_met'] else 'NOT met'}"
    )
    benchlib.write_result(args, "lightning_overhead", run, load, device)
    return run


if __name__ == "__main__":
    main()
