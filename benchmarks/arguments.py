"""The command-line flags the benchmark scripts share (as argparse parent parsers), their
device-dependent defaults, and the settings a run records from them, so every script reads the same
flags the same way and run_all.py can pass them on unchanged."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from paths import DEFAULT_DATA_DIR, QUICK_RESULTS_DIR

from convlens import hardware


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


def add_runs_flag(parser: argparse.ArgumentParser) -> None:
    """``--runs``: the trained run directories a script measures (default: the ``make demo`` runs)."""
    parser.add_argument("--runs", type=Path, nargs="*", default=[], help="trained run directories (default: the "
                        "make demo runs; --quick without runs: a tiny run trained on the spot)")  # fmt: skip


def require_runs(args: argparse.Namespace, defaults: list[Path]) -> None:
    """Stop with how to make them when a run to measure is missing (--quick trains its own)."""
    missing = [path for path in args.runs or ([] if args.quick else defaults) if not path.is_dir()]
    if missing:
        raise SystemExit(f"no run at {', '.join(map(str, missing))}: make them with `make demo`, or pass --runs")


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


def step_config(args: argparse.Namespace) -> dict[str, Any]:
    """The settings every ResNet-18 step benchmark records: image size, batch size, rounds, steps per window."""
    return {
        "model": "ResNet-18",
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "steps_per_window": args.steps,
    }
