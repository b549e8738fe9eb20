"""Distributed training (``trainer=ddp``): which process writes the run directory, and what the first
process tells the others, so that all ranks train into one run directory in one precision.

Lightning's DDP launcher starts the other processes of a machine by running the same command again
(with ``LOCAL_RANK`` set) once ``trainer.fit`` begins; they inherit the first process's environment, in
which it leaves the run directory it created and the precision it chose. Processes that a cluster starts
(SLURM, torchrun) on other machines cannot inherit it: they need ``paths.output_dir`` given explicitly.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from convlens.config import ConfigError

#: Environment variable with the first process's run directory and precision (JSON).
HANDOFF_ENV = "CONVLENS_DDP_HANDOFF"
#: Environment variables launchers set to a process's rank: torchrun, SLURM, Lightning's launcher.
RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK")
PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true")


@dataclass(frozen=True)
class Handoff:
    run_dir: Path
    precision: str


def is_first_process() -> bool:
    """Whether this process is global rank 0 (or the only one), from what its launcher set; known before
    Lightning sets up its distributed environment, which happens only once training starts."""
    return all(os.environ.get(name, "0").strip() == "0" for name in RANK_VARIABLES)


def hand_off(run_dir: Path, precision: str) -> None:
    """Leave the run directory and precision for the processes Lightning's launcher starts from this one."""
    os.environ[HANDOFF_ENV] = json.dumps({"run_dir": str(run_dir), "precision": precision})


def inherited() -> Handoff | None:
    """The first process's run directory and precision in a process it started, else None. The value
    is checked (an existing directory, a known precision) before use."""
    if is_first_process() or HANDOFF_ENV not in os.environ:
        return None
    try:
        value = json.loads(os.environ[HANDOFF_ENV])
        run_dir, precision = Path(value["run_dir"]), value["precision"]
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"{HANDOFF_ENV} is not what convlens sets: {error}") from None
    if not run_dir.is_dir() or precision not in PRECISIONS:
        raise ConfigError(f"{HANDOFF_ENV}: no run directory {run_dir} or unknown precision {precision!r}")
    return Handoff(run_dir, precision)


def follower_run_dir(output_dir: str | None) -> Path:
    """The run directory of a process other than the first that was not started by it (another machine):
    ``paths.output_dir``, which the first process creates; this one writes nothing there itself."""
    if output_dir is None:
        raise ConfigError(
            "a DDP process on another machine cannot learn the run directory the first process creates: "
            "give all processes the same paths.output_dir=<a new folder on a shared file system>"
        )
    return Path(output_dir)
