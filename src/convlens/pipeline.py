"""`make demo` / `make all`: train, visualize and report each experiment in turn, timing every stage.

Each stage runs as its own process through the same entry point a user calls, so the demo
exercises exactly what `make train`, `make visualize` and `make report` do.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

#: The stages each experiment goes through, in order, each its own ``scripts/<stage>.py`` process.
PIPELINE_STAGES = ("train", "visualize", "evaluate", "report")


def run_stage(stage: str, experiment: str, overrides: list[str]) -> float:
    """Run ``scripts/<stage>.py`` and return its wall time. Exits on failure."""
    script = Path("scripts") / f"{stage}.py"
    print(f"[{experiment}] {stage} ...", flush=True)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, str(script), f"experiment={experiment}", *overrides])
    if result.returncode != 0:
        sys.exit(f"[{experiment}] {stage} failed (exit {result.returncode}); see the messages above")
    seconds = time.perf_counter() - started
    print(f"[{experiment}] {stage} done in {seconds:.1f} s", flush=True)
    return seconds


def run_pipeline(experiments: list[str], train_overrides: list[str]) -> dict[tuple[str, str], float]:
    times: dict[tuple[str, str], float] = {}
    for experiment in experiments:
        for stage in PIPELINE_STAGES:
            times[experiment, stage] = run_stage(stage, experiment, train_overrides if stage == "train" else [])
    return times


def print_times(times: dict[tuple[str, str], float]) -> None:
    print("\nstage times (wall clock, including process start):")
    for (experiment, stage), seconds in times.items():
        print(f"  {experiment:<20} {stage:<10} {seconds:7.1f} s")
    print(f"  {'total':<31} {sum(times.values()):7.1f} s")


def main(argv: list[str]) -> None:
    split = argv.index("--") if "--" in argv else len(argv)
    experiments, overrides = argv[:split], argv[split + 1 :]
    if not experiments:
        sys.exit("usage: pipeline.py EXPERIMENT [EXPERIMENT ...] [-- hydra overrides for train]")
    print_times(run_pipeline(experiments, overrides))
