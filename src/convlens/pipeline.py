"""`make demo` / `make all`: every stage of each experiment in turn, timed; ends with the table the README shows.

Each stage runs as its own process through the same entry point a user calls (``scripts/<stage>.py``
as ``__main__``), so the demo exercises exactly what `make train`, `make visualize` and `make report`
do. After :func:`preload` the processes are forked from this one, which has imported the libraries
every stage needs: importing torch, Lightning, torchvision, captum and matplotlib takes 5-12 s per
process on a 2-core CPU, which eight fresh interpreters would pay eight times. The table reports that
one-time start. Forking is safe only while this process has run no tensor operation (a forked child
of a process whose OpenMP threads have started hangs in its first parallel operation), so without
:func:`preload` each stage is a fresh interpreter.
"""

from __future__ import annotations

import importlib
import os
import runpy
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from convlens import provenance
from convlens.config import register_configs
from convlens.report.markdown import table
from convlens.run_files import read_metrics
from convlens.rundir import CONF, RunDirError, resumed_run_dir, unused_run_dir
from convlens.stage import script as stage_script
from convlens.untrusted import UntrustedInputError, safe_name

Found = TypeVar("Found")

#: The stages each experiment goes through, in order, each its own ``scripts/<stage>.py`` process.
PIPELINE_STAGES = ("train", "visualize", "evaluate", "report")
#: Modules every stage process would import itself, imported once before the stages are forked.
SHARED_IMPORTS = (
    "torch",
    "torch._dynamo",  # imported lazily by the first convolution of each process
    "pytorch_lightning",
    "torchvision",
    "captum.attr",
    "pytorch_grad_cam",
    "matplotlib.pyplot",
    "convlens.training.run",
    "convlens.visualize.stage",
    "convlens.evaluate.stage",
    "convlens.report.build",
)


_preloaded = False  # set by preload(): from then on run_script forks


def preload() -> float:
    """Import :data:`SHARED_IMPORTS` (no tensor operation runs, so no thread pool exists to be forked)
    so that :func:`run_script` forks from now on; returns the seconds it took. Call it before any
    tensor work in this process."""
    global _preloaded
    started = time.perf_counter()
    for module in SHARED_IMPORTS:
        importlib.import_module(module)
    _preloaded = True
    return time.perf_counter() - started


def run_script(script: Path, args: list[str]) -> int:
    """``python script args`` as its own process, forked after :func:`preload`, a fresh interpreter
    otherwise; its exit status."""
    if not _preloaded:
        return subprocess.run([sys.executable, str(script), *args]).returncode
    pid = os.fork()
    if pid == 0:
        os._exit(_run_in_child(script, args))
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def run_stage(stage: str, experiment: str, overrides: list[str]) -> float:
    """Run ``scripts/<stage>.py`` for ``experiment`` (:func:`run_script`) and return its wall time.
    Exits on failure."""
    script = stage_script(stage)
    print(f"[{experiment}] {stage} ...", flush=True)
    started = time.perf_counter()
    returncode = run_script(script, [f"experiment={experiment}", *overrides])
    if returncode != 0:
        sys.exit(f"[{experiment}] {stage} failed (exit {returncode}); see the messages above")
    seconds = time.perf_counter() - started
    print(f"[{experiment}] {stage} done in {seconds:.1f} s", flush=True)
    return seconds


def _run_in_child(script: Path, args: list[str]) -> int:
    """In the forked child: the script as ``python script args`` would run it; its exit status.
    A parent that is itself a Hydra app (`make compare`) leaves Hydra initialized: cleared first."""
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    sys.argv = [str(script), *args]
    try:
        runpy.run_path(str(script), run_name="__main__")
        status = 0
    except SystemExit as exit_:
        status = _exit_status(exit_.code)
    except BaseException:  # noqa: BLE001 - an uncaught error ends the stage as the interpreter would
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return status


def _exit_status(code: object) -> int:
    """``sys.exit(code)`` -> the process status the interpreter gives it (a message is printed, status 1)."""
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=sys.stderr)
    return 1


def run_pipeline(
    experiments: list[str], train_overrides: list[str]
) -> tuple[dict[tuple[str, str], float], dict[str, Path]]:
    """Every stage of each experiment in turn; the stages' wall times and each experiment's run directory. The
    stages after training are given the run it wrote (``run=``), not ``<experiment>/latest``: with
    ``paths.latest=false``, ``experiment_name=`` or ``paths.outputs_dir=`` among the overrides that link names
    another run, whose maps and evaluation they replaced."""
    times, runs = {}, {}
    for experiment in experiments:
        runs[experiment], overrides = planned_run(experiment, train_overrides)
        times[experiment, "train"] = run_stage("train", experiment, overrides)
        for stage in PIPELINE_STAGES[1:]:
            times[experiment, stage] = run_stage(stage, experiment, [f"run={runs[experiment]}"])
    return times, runs


def planned_run(experiment: str, overrides: list[str]) -> tuple[Path, list[str]]:
    """The run directory the train stage will write for ``experiment`` with ``overrides``, and the overrides that
    make it that one: ``paths.output_dir`` where given, the run a checkpoint resumes (``ckpt_path`` into a run
    directory), else a new ``<outputs_dir>/<experiment_name>/<time>`` added as ``paths.output_dir``. Composed as
    ``scripts/train.py`` composes it; a config error stops here with Hydra's message, before any stage."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose(config_name="train", overrides=[f"experiment={experiment}", *overrides])
    except (HydraException, OmegaConfBaseException) as error:
        sys.exit(f"[{experiment}] train: {error}")
    if cfg.paths.output_dir is not None:
        return Path(cfg.paths.output_dir), overrides
    resumed = resumed_run_dir(cfg.ckpt_path)
    if resumed is not None:
        return resumed, overrides
    root = unused_run_dir(Path(cfg.paths.outputs_dir) / safe_name(cfg.experiment_name, "experiment_name"))
    return root, [*overrides, f"paths.output_dir={root}"]


def summary_table(times: dict[tuple[str, str], float], runs: dict[str, Path], start_seconds: float = 0.0) -> str:
    """The markdown table the README shows: per experiment its run's accuracy and every stage's wall time, the
    one-time ``start_seconds`` of :func:`preload`, on the CPU the last run names."""
    experiments = list(dict.fromkeys(experiment for experiment, _ in times))
    header = ["experiment", "val / test accuracy", *(f"{stage} (s)" for stage in PIPELINE_STAGES), "total (s)"]
    rows = []
    for experiment in experiments:
        seconds = [times.get((experiment, stage)) for stage in PIPELINE_STAGES]
        cells = ["-" if value is None else f"{value:.0f}" for value in seconds]
        total = sum(value for value in seconds if value is not None)
        rows.append([f"`{experiment}`", _accuracy(runs[experiment]), *cells, f"{total:.0f}"])
    rows.append(["start (imports, once)", "", *[""] * len(PIPELINE_STAGES), f"{start_seconds:.0f}"])
    rows.append(["all", "", *[""] * len(PIPELINE_STAGES), f"{start_seconds + sum(times.values()):.0f}"])
    cpu = _read(runs[experiments[-1]], _cpu)
    timing = "wall clock of each stage's process, the imports they share counted once"
    return f"on {cpu or 'an unrecorded CPU'}, {timing}:\n\n{table(header, rows)}"


def _accuracy(run: Path) -> str:
    """``val / test`` of the run's metrics.json, '-' where there is none (e.g. outputs elsewhere)."""
    metrics = _read(run, read_metrics)
    if metrics is None or metrics.get("val") is None or metrics.get("test") is None:
        return "-"
    return f"{metrics['val']['acc']:.3f} / {metrics['test']['acc']:.3f}"


def _cpu(run: Path) -> str | None:
    """The CPU the run's provenance.json records."""
    hardware = provenance.read(run).get("hardware")
    cpu = hardware.get("cpu") if isinstance(hardware, dict) else None
    return cpu if isinstance(cpu, str) else None


def _read(run: Path, read: Callable[[Path], Found]) -> Found | None:
    """What a checked reader finds in the run; None where the run is missing, or (warned, naming the file
    and the command that writes it again) damaged: this table only reports."""
    if not run.is_dir():
        return None
    try:
        return read(run)
    except (RunDirError, UntrustedInputError) as error:
        print(f"warning: {error}", file=sys.stderr)
        return None


def main(argv: list[str]) -> None:
    split = argv.index("--") if "--" in argv else len(argv)
    experiments, overrides = argv[:split], argv[split + 1 :]
    if not experiments:
        sys.exit("usage: pipeline.py EXPERIMENT [EXPERIMENT ...] [-- hydra overrides for train]")
    start_seconds = preload()
    times, runs = run_pipeline(experiments, overrides)
    print("\n" + summary_table(times, runs, start_seconds))
