"""`make demo` / `make all`: every stage of each experiment in turn, timed; ends with the table the README shows.

Each stage runs as its own process through the same entry point a user calls, so the demo
exercises exactly what `make train`, `make visualize` and `make report` do.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from convlens.report.markdown import table

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


def summary_table(times: dict[tuple[str, str], float], outputs: Path = Path("outputs")) -> str:
    """The markdown table the README shows: per experiment its accuracy (from the run ``latest`` points
    at) and every stage's wall time, on the CPU named in the first line."""
    experiments = list(dict.fromkeys(experiment for experiment, _ in times))
    header = ["experiment", "val / test accuracy", *(f"{stage} (s)" for stage in PIPELINE_STAGES), "total (s)"]
    rows = []
    for experiment in experiments:
        seconds = [times.get((experiment, stage)) for stage in PIPELINE_STAGES]
        cells = ["-" if value is None else f"{value:.0f}" for value in seconds]
        total = sum(value for value in seconds if value is not None)
        rows.append([f"`{experiment}`", _accuracy(outputs / experiment / "latest"), *cells, f"{total:.0f}"])
    rows.append(["all", "", *[""] * len(PIPELINE_STAGES), f"{sum(times.values()):.0f}"])
    cpu = _read(outputs / experiments[-1] / "latest" / "provenance.json", lambda found: found["hardware"]["cpu"])
    return f"on {cpu or 'an unrecorded CPU'}, wall clock including process starts:\n\n{table(header, rows)}"


def _accuracy(run: Path) -> str:
    """``val / test`` of the run's metrics.json, '-' where there is none (e.g. outputs elsewhere)."""
    found = _read(run / "metrics.json", lambda metrics: f"{metrics['val']['acc']:.3f} / {metrics['test']['acc']:.3f}")
    return found or "-"


def _read(path: Path, pick: Callable[[Any], str]) -> str | None:
    """One value of a JSON file a stage wrote; None where it is missing (this table only reports)."""
    try:
        return pick(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str]) -> None:
    split = argv.index("--") if "--" in argv else len(argv)
    experiments, overrides = argv[:split], argv[split + 1 :]
    if not experiments:
        sys.exit("usage: pipeline.py EXPERIMENT [EXPERIMENT ...] [-- hydra overrides for train]")
    print("\n" + summary_table(run_pipeline(experiments, overrides)))
