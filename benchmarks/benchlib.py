"""Shared pieces of the benchmark scripts: arguments, data (real, or a synthetic stand-in of the same
shape), the convlens and plain pipelines, interleaved timing, memory probes, load monitoring and the
JSON/table output.

Every speed is reported as a ratio against a baseline measured in the same process, in alternating
windows (A, B, A, B, ...), so that a busy shared machine slows both sides alike.

Rendering docs/benchmarks.md from the results is summarize.py's job (run_all.py calls it once at the
end); this module only writes the results, so it never imports summarize.py.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import functools
import json
import os
import platform
import shlex
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlens import atomic, hardware, provenance
from convlens.report import markdown

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = ROOT.parent / "shared" / "data"
RESULTS_DIR = ROOT / "benchmarks" / "results"
QUICK_RESULTS_DIR = Path(tempfile.gettempdir()) / "convlens-bench-quick"
CIFAR10_CONF = ROOT / "conf" / "data" / "cifar10.yaml"
#: The CPU extensions that decide fp32 vs bf16 speed, recorded with every run.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


# ----------------------------------------------------------------------------------------------------------------
# Arguments, device, output


def first_paragraph(doc: str) -> str:
    return " ".join(doc.split("\n\n", 1)[0].split())


def _shared_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder holding cifar10.npz / fer2013.csv(.xz) (default: ../shared/data next to the project); "
        "synthetic data of the same shape is used when a file is absent",
    )
    p.add_argument("--quick", action="store_true", help="tiny sizes and step counts on one thread: checks that "
                   "the scripts run, measures nothing")  # fmt: skip
    p.add_argument("--out", type=Path, default=None, help="results folder (default benchmarks/results; "
                   f"with --quick {QUICK_RESULTS_DIR})")  # fmt: skip
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--note", default="", help="free text stored with every run, e.g. the load conditions")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    return p


def _precision_flag() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument(
        "--precision",
        choices=("auto", "32-true", "bf16-mixed"),
        default="auto",
        help="of the convlens pipeline (throughput, lightning_overhead, profile_step); auto: what `make train` "
        "picks on this device",
    )
    return p


def _window_flags() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--batch-size", type=int, default=None, help="default 32 on the CPU, 256 on a GPU")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--rounds", type=int, default=5, help="alternating window pairs")
    p.add_argument("--steps", type=int, default=None, help="training steps per window (default 3 CPU, 20 GPU)")
    p.add_argument("--warmup", type=int, default=2, help="untimed convlens steps before the first window")
    return p


#: Parent parsers (``argparse.ArgumentParser(parents=[...])``): the flags of every script and of run_all.py;
#: --precision of the scripts that run the convlens pipeline; the window sizes of the scripts that
#: interleave it with a baseline (throughput.py, lightning_overhead.py, see :func:`window_sizes`).
SHARED_FLAGS = _shared_flags()
PRECISION_FLAG = _precision_flag()
WINDOW_FLAGS = _window_flags()


def window_sizes(args: argparse.Namespace, device: torch.device) -> None:
    """Fill in WINDOW_FLAGS' device-dependent defaults; --quick shrinks every size to a smoke test."""
    if args.quick:
        args.image_size, args.rounds, args.steps, args.warmup = 64, 1, 1, 1
        args.batch_size = args.batch_size or 4
    args.batch_size = args.batch_size or (256 if device.type == "cuda" else 32)
    args.steps = args.steps or (20 if device.type == "cuda" else 3)


def configure(args: argparse.Namespace) -> torch.device:
    """Apply the shared flags and pick the device. --quick runs on one thread unless --threads says
    otherwise: tiny multi-threaded kernels wait for each other on a busy machine, and a smoke test
    measures nothing."""
    if args.threads or args.quick:
        torch.set_num_threads(args.threads or 1)
    try:
        return hardware.resolve_device(args.device)
    except ValueError as error:
        raise SystemExit(f"--device {args.device}: {error}") from None


def results_dir(args: argparse.Namespace) -> Path:
    """Quick runs go to a temp folder unless --out says otherwise, so they never mix with real results."""
    if args.out is not None:
        return args.out
    return QUICK_RESULTS_DIR if args.quick else RESULTS_DIR


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so wall-clock windows measure finished work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def environment(device: torch.device) -> dict[str, Any]:
    """Hardware and software of this run (what docs/benchmarks.md shows next to every number)."""
    flags = hardware.cpu_flags()
    return {
        "cpu": hardware.cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in flags],
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git": provenance.git_state(),
    }


class LoadMonitor:
    """How busy the machine was with other work while a benchmark ran: the load average and the share
    of all CPU time that processes outside this one (and its children) used."""

    def __init__(self) -> None:
        self.start_load = os.getloadavg()
        self.start_wall = time.perf_counter()
        self.start_busy = _busy_cpu_seconds()
        self.start_own = _own_cpu_seconds()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.start_wall
        capacity = wall * (os.cpu_count() or 1)
        busy = _busy_cpu_seconds() - self.start_busy
        own = _own_cpu_seconds() - self.start_own
        return {
            "load_average_start": [round(v, 2) for v in self.start_load],
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
            "other_processes_cpu_share": round(max(0.0, busy - own) / capacity, 3) if capacity else None,
            "own_cpu_share": round(own / capacity, 3) if capacity else None,
            "wall_seconds": round(wall, 1),
        }


def _busy_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_cpu_seconds() -> float:
    """CPU time of this process and its children, including finished ones (e.g. DataLoader workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


def command_line(argv: list[str] | None = None) -> str:
    """The command as recorded: absolute paths in it (``/x``, ``--flag=/x``, ``key=/x``) relative to the
    working directory, so no machine-specific prefix lands in the results."""
    script, *arguments = sys.argv if argv is None else argv
    return shlex.join(["python", provenance.portable_path(script), *map(_portable_argument, arguments)])


def _portable_argument(argument: str) -> str:
    prefix, separator, value = argument.partition("=") if "=" in argument else ("", "", argument)
    return f"{prefix}{separator}{provenance.portable_path(value) if value.startswith('/') else value}"


def write_result(
    args: argparse.Namespace, name: str, run: dict[str, Any], load: LoadMonitor, device: torch.device
) -> Path:
    """Append this run to ``<out>/<name>.json`` (``{"benchmark": name, "runs": [...]}``), so every run
    made stays on record. It only writes: summarize.py renders docs/benchmarks.md from these files."""
    path = results_dir(args) / f"{name}.json"
    record = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command_line(),
        "quick": args.quick,
        "note": args.note,
        "environment": environment(device),
        "load": load.stop(),
        **run,
    }
    existing = json.loads(path.read_text()) if path.exists() else {"benchmark": name, "runs": []}
    existing["runs"].append(record)
    atomic.write_text(path, json.dumps(existing, indent=1) + "\n")
    print(f"results appended to {path}")
    if path.parent == RESULTS_DIR:
        print("docs/benchmarks.md: rendered by run_all.py at its end, or by python benchmarks/summarize.py")
    return path


def record(
    args: argparse.Namespace,
    name: str,
    device: torch.device,
    measure: Callable[[], dict[str, Any]],
    show: Callable[[dict[str, Any], torch.device], None],
) -> dict[str, Any]:
    """The end of every script's ``main``: ``measure()`` the run while the load is monitored, ``show`` its
    tables on stdout, append it to ``<out>/<name>.json``; returns the run."""
    load = LoadMonitor()
    run = measure()
    show(run, device)
    write_result(args, name, run, load, device)
    return run


def num(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, whole numbers from ``10 ** (digits - 1)`` on; blank for None."""
    if value is None:
        return ""
    return f"{value:.{digits}g}" if abs(value) < 10 ** (digits - 1) else f"{value:.0f}"


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table of raw values for stdout: floats and None through :func:`num`, the rest as text."""
    cells = [[num(value) if value is None or isinstance(value, float) else str(value) for value in row] for row in rows]
    return markdown.table(columns, cells)


# ----------------------------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True)
class Loaded:
    """A dataset for the benchmarks and where it came from (``origin`` says 'synthetic' when it is)."""

    arrays: Any  # convlens.data.DatasetArrays
    origin: str


class Preloaded:
    """A data source (``load()``) over arrays that are already in memory, for ``ImageDataModule``."""

    def __init__(self, arrays: Any) -> None:
        self.arrays = arrays

    def load(self) -> Any:
        return self.arrays


def load_cifar10(data_dir: Path, synthetic_size: int = 4096) -> Loaded:
    """The real CIFAR-10 cache read in place (never copied), or random uint8 images of its shape."""
    from convlens.data.arrays import ArraySplit, DatasetArrays
    from convlens.data.cifar10 import CIFAR10_CLASSES, CIFAR10Source

    path = data_dir / "cifar10.npz"
    if path.is_file():
        return Loaded(CIFAR10Source(str(data_dir)).load(), f"real: {provenance.portable_path(path)}")
    rng = np.random.default_rng(0)

    def split(size: int) -> ArraySplit:
        images = rng.integers(0, 256, (size, 32, 32, 3), dtype=np.uint8)
        return ArraySplit(images, rng.integers(0, 10, size).astype(np.int64))

    origin = (
        f"synthetic: {provenance.portable_path(path)} not found, {synthetic_size} random 32x32x3 uint8 images "
        "(speeds comparable)"
    )
    print(f"NOTE: {origin}")
    arrays = DatasetArrays(split(synthetic_size), split(256), split(256), CIFAR10_CLASSES)
    return Loaded(arrays, origin)


def cifar10_settings() -> dict[str, Any]:
    """conf/data/cifar10.yaml as plain values (mean, std, augmentation)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(CIFAR10_CONF), resolve=False)


def cifar10_datamodule(data: Loaded, image_size: int, batch_size: int, seed: int = 0) -> Any:
    """The convlens data module with the cifar10 experiment's transform settings."""
    from convlens.data import ImageDataModule

    conf = cifar10_settings()
    return ImageDataModule(
        name="cifar10",
        source=Preloaded(data.arrays),
        num_classes=10,
        channels=3,
        image_size=image_size,
        mean=conf["mean"],
        std=conf["std"],
        batch_size=batch_size,
        eval_batch_size=batch_size,
        augment=conf["augment"],
        seed=seed,
    )


# ----------------------------------------------------------------------------------------------------------------
# The plain baseline: torchvision transforms on PIL images in DataLoader workers, NCHW, a hand-written loop


class PILImages(torch.utils.data.Dataset):
    """What ``torchvision.datasets.CIFAR10.__getitem__`` does: uint8 HWC array -> PIL image -> transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: Callable[[Any], Tensor]) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.images[index])), int(self.labels[index])


def plain_transform(image_size: int, padding: int, mean: Sequence[float], std: Sequence[float]) -> Callable:
    from torchvision import transforms

    return transforms.Compose(
        [
            transforms.RandomCrop(32, padding=padding),
            transforms.RandomHorizontalFlip(),
            transforms.Resize(image_size),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )


def plain_loader(data: Loaded, image_size: int, batch_size: int, workers: int, device: torch.device) -> Any:
    conf = cifar10_settings()
    transform = plain_transform(image_size, conf["augment"]["crop_padding"], conf["mean"], conf["std"])
    dataset = PILImages(data.arrays.train.images, data.arrays.train.labels, transform)
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
    )


@dataclass
class Window:
    """One timed window: how many images were trained on in how many seconds."""

    images: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.images / self.seconds


class PlainLoop:
    """The plain baseline's training loop, run in windows.

    Each window starts a fresh DataLoader iterator (its workers are shut down between windows, so they
    never steal CPU from the other pipeline's windows), trains ``warmup`` untimed steps while the workers
    fill their queue, then times ``steps`` steps.
    """

    def __init__(
        self,
        model: nn.Module,
        loader: Any,
        optimizer: torch.optim.Optimizer,
        device: torch.device,
        label_smoothing: float,
    ) -> None:
        self.model, self.loader, self.optimizer, self.device = model, loader, optimizer, device
        self.label_smoothing = label_smoothing

    def step(self, images: Tensor, labels: Tensor) -> None:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        loss = F.cross_entropy(self.model(images), labels, label_smoothing=self.label_smoothing)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def window(self, steps: int, warmup: int = 1) -> Window:
        self.model.train()
        batches = iter(self.loader)
        for _ in range(warmup):
            self.step(*next(batches))
        sync(self.device)
        started = time.perf_counter()
        images = 0
        for _ in range(steps):
            batch = next(batches)
            self.step(*batch)
            images += len(batch[1])
        sync(self.device)
        seconds = time.perf_counter() - started
        del batches  # shuts the workers down
        return Window(images, seconds)


def sgd(parameters: Any, settings: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, **settings)


#: The optimizer of every speed benchmark (the cifar10_resnet18 recipe's SGD; lr lowered so that random
#: synthetic labels cannot blow the weights up into NaNs, which would change the speed of the arithmetic).
OPTIMIZER = {"lr": 0.02, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
LABEL_SMOOTHING = 0.1


# ----------------------------------------------------------------------------------------------------------------
# The convlens pipeline under a Lightning Trainer


def step_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every ResNet-18 step benchmark records: image size, batch size, rounds, steps per window."""
    return {
        "model": "ResNet-18",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "steps_per_window": args.steps,
    }


def resolve_precision(device: torch.device, requested: str, image_size: int) -> str:
    """``auto``: what `make train` uses on this device for the benchmarks' ResNet-18 (trainer.precision=auto:
    on the CPU, the faster of fp32 and bf16 in a probe of its convolutions); else ``requested``."""
    from convlens.models import ResNet
    from convlens.training.run import resolve_precision as resolve

    return resolve(requested, device.type, ResNet(18, 10), (3, image_size, image_size))[0]


def classifier(net: nn.Module, channels_last: bool = True, compile: bool = False) -> Any:
    from convlens.training.module import ClassifierModule

    return ClassifierModule(
        net,
        functools.partial(torch.optim.SGD, **OPTIMIZER),
        None,
        [str(i) for i in range(net.num_classes)],
        LABEL_SMOOTHING,
        channels_last=channels_last,
        compile=compile,
    )


def bench_trainer(device: torch.device, precision: str, max_steps: int, callbacks: list[Any]) -> Any:
    """A Trainer as `make train` builds it, minus what writes files (logger, checkpoints, progress bar)."""
    import logging

    import pytorch_lightning as pl

    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return pl.Trainer(
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision,
        max_steps=max_steps,
        max_epochs=-1,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        log_every_n_steps=10,  # as conf/trainer/default.yaml
        callbacks=callbacks,
    )


def interleaver(steps: int, warmup: int, others: dict[str, Callable[[], Any]], device: torch.device) -> Any:
    """A Lightning callback that times windows of ``steps`` training steps of the Trainer it runs in and,
    after each window, calls every function in ``others`` once (each measures itself and returns its
    result, e.g. a ``Window``): windows alternate A, B, A, B, ... Time spent in ``others`` is excluded
    from the Trainer's windows, which run from one ``on_train_batch_end`` to another and so include the
    batch fetch, the transform, the step and Lightning's hooks."""
    import pytorch_lightning as pl

    class Interleave(pl.Callback):
        def __init__(self) -> None:
            self.results: dict[str, list[Any]] = {"lightning": [], **{name: [] for name in others}}
            self.done = 0
            self.images = 0
            self.started = 0.0

        def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
            self.done += 1
            self.images += len(batch[1])
            if self.done < warmup or (self.done - warmup) % steps:
                return
            sync(device)
            if self.done > warmup:
                self.results["lightning"].append(Window(self.images, time.perf_counter() - self.started))
                for name, run in others.items():
                    self.results[name].append(run())
            self.images = 0
            sync(device)
            self.started = time.perf_counter()

    return Interleave()


def summarize_windows(windows: list[Window]) -> dict[str, Any]:
    rates = [w.rate for w in windows]
    return {
        "images_per_s_median": statistics.median(rates),
        "images_per_s_windows": [round(r, 3) for r in rates],
        "window_seconds": [round(w.seconds, 2) for w in windows],
    }


def paired_ratio(numerator: list[Window], denominator: list[Window]) -> dict[str, float]:
    """Median and range of the per-round ratios (each round: adjacent windows of both sides)."""
    ratios = [a.rate / b.rate for a, b in zip(numerator, denominator, strict=True)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


# ----------------------------------------------------------------------------------------------------------------
# Arithmetic: work per image and the machine's matmul ceiling


def train_flops_per_image(net: nn.Module, channels: int, image_size: int) -> float:
    """FLOPs of one training step (forward + backward) per image, counted by torch's FlopCounterMode
    (convolutions and matmuls; 1 multiply-add = 2 FLOPs)."""
    from torch.utils.flop_counter import FlopCounterMode

    batch = 2
    x = torch.randn(batch, channels, image_size, image_size)
    labels = torch.zeros(batch, dtype=torch.long)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(net(x), labels).backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch


def matmul_gflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``size`` x ``size`` matrix product: the dense-arithmetic
    ceiling that any training pipeline on this device is capped by."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best


# ----------------------------------------------------------------------------------------------------------------
# Memory


class MemorySampler:
    """Peak memory while a block runs, sampled: RSS of this process, and RSS and PSS summed over this
    process and its children (PSS counts the pages that forked DataLoader workers share with their parent
    only once). Sampled rather than ``ru_maxrss``, which Linux carries over from the parent across exec."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks = {"rss": 0, "tree_rss": 0, "tree_pss": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        rss = tree_rss = tree_pss = 0
        for process in (me, *me.children(recursive=True)):
            try:
                info = process.memory_full_info()
            except psutil.Error:
                continue
            rss = rss or info.rss
            tree_rss += info.rss
            tree_pss += getattr(info, "pss", info.rss)
        for key, value in (("rss", rss), ("tree_rss", tree_rss), ("tree_pss", tree_pss)):
            self.peaks[key] = max(self.peaks[key], value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, float | None]:
        mib = 2**20
        gpu = torch.cuda.max_memory_allocated() / mib if torch.cuda.is_available() else None
        return {
            "peak_rss_mb": round(self.peaks["rss"] / mib, 1),
            "peak_tree_rss_mb": round(self.peaks["tree_rss"] / mib, 1),
            "peak_tree_pss_mb": round(self.peaks["tree_pss"] / mib, 1),
            "gpu_peak_allocated_mb": None if gpu is None else round(gpu, 1),
        }
