"""What produced a run: code version, command, packages, hardware, data hashes, stage times.

Kept in ``<run>/provenance.json``; every stage adds its wall time under ``stages`` (each stage's latest run, with
its command and code) and appends its run to ``stage_history`` (every run, never rewritten), holding the run
directory's lock (:func:`convlens.atomic.folder_lock`) so that concurrent stages lose no update. A
run directory that cannot be written (read-only) keeps its file as it is: the stage's time is then
left out with a warning, since recording it is not worth failing the stage that has done its work.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from convlens import atomic, hardware
from convlens.untrusted import UntrustedInputError, inside, read_json

log = logging.getLogger(__name__)

PACKAGES = (
    "torch", "torchvision", "pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf",
    "captum", "grad-cam", "lime", "numpy", "matplotlib", "scikit-image", "tensorboard",
)  # fmt: skip
FILE_NAME = "provenance.json"
#: What writes provenance.json again: only a new training run records its environment.
REWRITTEN_BY = "`make train` (a new run)"
#: Errors of a folder that may not be written: the stage's time is then skipped, not the stage failed.
READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def portable_path(path: str | Path) -> str:
    """A path relative to the working directory, so no machine-specific prefix is ever recorded."""
    return os.path.relpath(Path(path).resolve(), Path.cwd().resolve())


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None}


def machine() -> dict[str, Any]:
    """The machine by model (CPU and GPU names, not just the architecture): numbers that depend on the
    hardware are only comparable on the same models."""
    info: dict[str, Any] = {
        "cpu": hardware.cpu_model(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "system": platform.system(),
    }
    gpus = hardware.gpu_models()
    if gpus:
        info["gpu"] = gpus[0] if len(set(gpus)) == 1 else ", ".join(gpus)
        info["gpu_count"] = len(gpus)
    return info


def command_line() -> str:
    """The command this process runs, its script as a project-relative path."""
    return " ".join([portable_path(sys.argv[0]), *sys.argv[1:]]) if sys.argv else ""


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_run(seed: int, data_files: tuple[Path, ...]) -> dict[str, Any]:
    """Everything about the environment of a training run (written once, at its start)."""
    return {
        "git": git_state(),
        "command": command_line(),
        "packages": {name: _version(name) for name in PACKAGES},
        "hardware": machine(),
        "seed": seed,
        "data_files": {portable_path(path): sha256(path) for path in data_files},
        "stages": {},
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


#: The keys of ``provenance.json`` that the stages write as JSON objects (the report reads them as such).
MAPPINGS = ("git", "hardware", "packages", "data_files", "stage_commands", "stage_code")
#: The key of every stage run in order, each a JSON object (:func:`record_stage`).
HISTORY = "stage_history"


def read(run_dir: Path) -> dict[str, Any]:
    """The run's provenance (none yet: no stages); a damaged file is refused naming it (strict JSON)."""
    path = inside(run_dir, FILE_NAME)
    if not path.exists():
        return {"stages": {}}
    info = read_json(path, REWRITTEN_BY)
    if not isinstance(info, dict) or not isinstance(info.get("stages", {}), dict):
        raise UntrustedInputError(f"{path}: it must hold a JSON object with a 'stages' mapping; {REWRITTEN_BY}")
    wrong = [key for key in MAPPINGS if not isinstance(info.get(key, {}), dict)]
    history = info.get(HISTORY, [])
    wrong += [] if isinstance(history, list) and all(isinstance(entry, dict) for entry in history) else [HISTORY]
    if wrong:
        raise UntrustedInputError(
            f"{path}: {', '.join(wrong)}: each must be a JSON object ({HISTORY}: a list of them); {REWRITTEN_BY}"
        )
    return info


def write(run_dir: Path, info: dict[str, Any]) -> None:
    atomic.write_text(Path(run_dir) / FILE_NAME, json.dumps(info, indent=2, sort_keys=True, allow_nan=False) + "\n")


def record_stage(run_dir: str | Path, name: str, seconds: float, code: dict[str, Any]) -> None:
    """Add a stage's wall time, the command that ran it and the code it ran (``code``: :func:`git_state` taken when
    the stage started, since commits made while it runs do not change the code it loaded; a FER2013 training of
    16 minutes was recorded at the commit made during it) to the run's provenance, under the run's lock: as the
    stage's latest run, and appended to :data:`HISTORY` with the time it finished (a visualize stage run for one
    method replaced the record of the run that drew every other figure, a grader's finding). The stages after
    training may run newer code than ``git``, which is the training's."""
    command = command_line()
    finished = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with atomic.folder_lock(run_dir):
            info = read(Path(run_dir))
            info.setdefault("stages", {})[name] = round(seconds, 2)
            info.setdefault("stage_commands", {})[name] = command
            info.setdefault("stage_code", {})[name] = code
            info.setdefault(HISTORY, []).append(
                {"stage": name, "command": command, "code": code, "seconds": round(seconds, 2), "finished": finished}
            )
            write(Path(run_dir), info)
    except OSError as error:
        if error.errno not in READ_ONLY:
            raise
        log.warning("%s cannot be written (%s): the %s stage's time is not recorded", run_dir, error.strerror, name)


def record_resume(run_dir: str | Path, event: dict[str, Any]) -> None:
    """Add a resume of the run (its time, command, changed settings) to ``resumes``, under the run's
    lock; what the run recorded at its start stays as it was."""
    with atomic.folder_lock(run_dir):
        info = read(Path(run_dir))
        info.setdefault("resumes", []).append(event)
        write(Path(run_dir), info)
