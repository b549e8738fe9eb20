"""Training throughput of ResNet-18 at 224 on CIFAR-10: the convlens pipeline vs a plain torchvision
pipeline, in one run, in alternating windows; the device's matmul ceiling; each pipeline's peak memory.

convlens: ``trainer.fit`` of our ClassifierModule (channels_last; bf16-mixed on a GPU, fp32 on the CPU,
as ``make train`` picks) on our ImageDataModule (uint8 tensors on the device, BatchTransform on the
device). A window runs from one ``on_train_batch_end`` to another, so it includes the batch fetch, the
transform, forward, backward, the optimizer step, metric updates and Lightning's hooks.

plain: ``torchvision.datasets``-style dataset (uint8 array -> PIL image) with RandomCrop(32, padding=4),
RandomHorizontalFlip, Resize(224), ToTensor, Normalize in a DataLoader with 2 workers, the same
ResNet-18 (same initial weights) in NCHW fp32, and a hand-written loop; SGD with the same settings.
Each plain window starts a fresh DataLoader iterator, trains one untimed step, then times its steps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from functools import partial
from typing import Any

import arguments
import cifar10_data
import machine
import pipelines
import records
import timing
import torch

PROBE_PREFIX = "MEMORY_JSON "


def build_plain(data: cifar10_data.Loaded, args: Any, device: torch.device, state: dict | None) -> pipelines.PlainLoop:
    from convlens.models import ResNet

    net = ResNet(18, 10)
    if state is not None:
        net.load_state_dict(state)
    net = net.to(device)
    loader = pipelines.plain_loader(data, args.image_size, args.batch_size, args.workers, device)
    optimizer = pipelines.sgd(net.parameters(), pipelines.OPTIMIZER)
    return pipelines.PlainLoop(net, loader, optimizer, device, pipelines.LABEL_SMOOTHING)


def memory_probe(kind: str, data: cifar10_data.Loaded, args: Any, device: torch.device) -> dict[str, Any]:
    """Peak memory of one pipeline alone in this (fresh) process over ``--memory-steps`` steps."""
    from convlens.models import ResNet

    torch.manual_seed(0)
    with machine.MemorySampler() as sampler:
        if kind == "plain":
            build_plain(data, args, device, None).window(args.memory_steps)
        else:
            datamodule = cifar10_data.cifar10_datamodule(data, args.image_size, args.batch_size)
            module = pipelines.classifier(ResNet(18, 10))
            precision = pipelines.resolve_precision(device, args.precision, args.image_size)
            pipelines.bench_trainer(device, precision, args.memory_steps, []).fit(module, datamodule=datamodule)
    return sampler.result()


def probe_memory_in_subprocesses(argv: list[str]) -> dict[str, dict[str, Any]]:
    """Both probes at once, each in its own process, so neither sees the other's allocations."""
    script = __file__
    processes = {
        kind: subprocess.Popen(
            [sys.executable, script, *argv, "--memory-probe", kind],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind in ("convlens", "plain")
    }
    results = {}
    for kind, process in processes.items():
        stdout, stderr = process.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith(PROBE_PREFIX)]
        if process.returncode != 0 or not lines:
            raise RuntimeError(f"memory probe '{kind}' failed (exit {process.returncode}):\n{stderr[-3000:]}")
        results[kind] = json.loads(lines[-1][len(PROBE_PREFIX) :])
    return results


def measure(
    args: argparse.Namespace, argv: list[str], data: cifar10_data.Loaded, device: torch.device
) -> dict[str, Any]:
    """Both pipelines in alternating windows of one Trainer run, the ceiling between them, then the
    memory probes."""
    from convlens.models import ResNet

    precision = pipelines.resolve_precision(device, args.precision, args.image_size)
    torch.manual_seed(0)
    net = ResNet(18, 10)
    flops = pipelines.train_flops_per_image(ResNet(18, 10), 3, args.image_size)
    plain = build_plain(data, args, device, net.state_dict())
    datamodule = cifar10_data.cifar10_datamodule(data, args.image_size, args.batch_size)
    module = pipelines.classifier(net)
    ceiling_dtype = torch.bfloat16 if precision.startswith("bf16") else torch.float32
    ceiling_size = 8192 if device.type == "cuda" else 2048
    interleave = timing.interleaver(
        args.steps,
        args.warmup,
        {
            "plain": lambda: plain.window(args.steps),
            "ceiling_gflops": lambda: machine.matmul_gflops(device, ceiling_dtype, ceiling_size),
        },
        device,
    )
    max_steps = args.warmup + args.rounds * args.steps
    pipelines.bench_trainer(device, precision, max_steps, [interleave]).fit(module, datamodule=datamodule)
    windows = interleave.results

    memory = probe_memory_in_subprocesses([a for a in argv if a != "--memory-probe"])
    ceiling = statistics.median(windows["ceiling_gflops"])
    ceiling_rate = ceiling * 1e9 / flops
    convlens = timing.summarize_windows(windows["lightning"])
    plain_result = timing.summarize_windows(windows["plain"])
    speedup = timing.paired_ratio(windows["lightning"], windows["plain"])
    goal = 5.0 if device.type == "cuda" else 1.4
    return {
        "config": arguments.step_config(args)
        | {
            "warmup": args.warmup,
            "plain_workers": args.workers,
            "optimizer": pipelines.OPTIMIZER,
            "data": data.origin,
        },
        "convlens": convlens | {"precision": precision, "channels_last": True, "memory": memory["convlens"]},
        "plain": plain_result | {"precision": "32-true", "channels_last": False, "memory": memory["plain"]},
        "speedup": speedup,
        "goal_speedup": goal,
        "goal_met": speedup["median"] >= goal,
        "train_gflop_per_image": flops / 1e9,
        "ceiling": {
            "dtype": str(ceiling_dtype).removeprefix("torch."),
            "matmul_size": ceiling_size,
            "gflops_median": ceiling,
            "gflops_windows": [round(g, 1) for g in windows["ceiling_gflops"]],
            "images_per_s": ceiling_rate,
        },
        "convlens_fraction_of_ceiling": convlens["images_per_s_median"] / ceiling_rate,
        "plain_fraction_of_ceiling": plain_result["images_per_s_median"] / ceiling_rate,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    parents = [arguments.SHARED_FLAGS, arguments.PRECISION_FLAG, arguments.WINDOW_FLAGS]
    p = argparse.ArgumentParser(description=arguments.first_paragraph(__doc__), parents=parents)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers of the plain pipeline")
    p.add_argument("--memory-steps", type=int, default=3)
    p.add_argument("--memory-probe", choices=("convlens", "plain"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    device = arguments.configure(args)
    arguments.window_sizes(args, device)
    if args.quick:
        args.memory_steps = 1
    data = cifar10_data.load_cifar10(args.data_dir, synthetic_size=max(1024, args.batch_size * 24))

    if args.memory_probe:
        print(PROBE_PREFIX + json.dumps(memory_probe(args.memory_probe, data, args, device)))
        return {}
    return records.record(args, "throughput", device, partial(measure, args, argv, data, device), show)


def show(run: dict[str, Any], device: torch.device) -> None:
    ceiling = run["ceiling"]
    rows = []
    for name in ("convlens", "plain"):
        result, memory = run[name], run[name]["memory"]
        rows.append(
            (
                name,
                result["images_per_s_median"],
                run[f"{name}_fraction_of_ceiling"],
                result["precision"],
                result["channels_last"],
                memory["peak_rss_mb"],
                memory["peak_tree_pss_mb"],
                memory["gpu_peak_allocated_mb"],
            )
        )
    columns = [
        "pipeline",
        "images/s (median)",
        "of ceiling",
        "precision",
        "channels_last",
        "peak RSS MB",
        "peak PSS MB (with workers)",
        "GPU peak MB",
    ]
    config = run["config"]
    print(f"\nResNet-18 at {config['image_size']}, batch {config['batch_size']}, {device}, {config['data']}")
    print(records.table(columns, rows))
    speedup = run["speedup"]
    print(
        f"speedup convlens/plain: {speedup['median']:.2f}x (per-round range {speedup['min']:.2f}-"
        f"{speedup['max']:.2f}), goal {run['goal_speedup']}x: {'met' if run['goal_met'] else 'NOT met'}"
    )
    print(
        f"ceiling: {ceiling['gflops_median']:.0f} GFLOP/s ({ceiling['dtype']} {ceiling['matmul_size']}^2 matmul) / "
        f"{run['train_gflop_per_image']:.2f} GFLOP per image = {ceiling['images_per_s']:.1f} images/s"
    )


if __name__ == "__main__":
    main()
