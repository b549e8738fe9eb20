"""Everything the report reads from a run directory, loaded once; the report recomputes no results."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from convlens import provenance
from convlens.lineage import FileHashes, changed_inputs
from convlens.report.curves import EpochCurves, read_epoch_curves
from convlens.rundir import (
    CLASS_NAMES,
    CONFIG,
    CONFUSION_CSV,
    EVALUATION_JSON,
    MANIFEST,
    METRICS,
    TENSORBOARD,
    RunDirError,
    check_run_dir,
)
from convlens.untrusted import read_json


@dataclass(frozen=True)
class RunData:
    """A finished run as the report sees it.

    ``label`` names the run without any machine-specific prefix; ``confusion`` is the test confusion
    matrix (rows: true class) or None without a test; ``manifest`` is None before `make visualize`.
    """

    root: Path
    label: str
    config: DictConfig
    metrics: dict[str, Any]
    provenance: dict[str, Any]
    class_names: list[str]
    confusion: np.ndarray | None
    curves: EpochCurves
    manifest: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    hashes: FileHashes

    @property
    def maps_stale(self) -> list[str]:
        """The files the maps were drawn from that changed since (a resume's new best checkpoint)."""
        return changed_inputs(self.manifest, self.hashes)

    @property
    def evaluation_stale(self) -> list[str]:
        """The files the evaluation read that changed since (maps drawn again, a new checkpoint)."""
        return changed_inputs(self.evaluation, self.hashes)

    def made_from(self) -> dict[str, str]:
        """The report's own lineage: the sha256 of the run files it is made from."""
        return self.hashes.record([CONFIG, METRICS, CLASS_NAMES, CONFUSION_CSV, MANIFEST, EVALUATION_JSON])

    @property
    def experiment(self) -> str:
        return str(self.config.experiment_name)


def read_run(path: str | Path) -> RunData:
    """Load a trained run; a RunDirError says what is missing when training did not finish."""
    root = check_run_dir(path)
    if not (root / METRICS).is_file():
        raise RunDirError(f"{run_label(root)} has no {METRICS}: its training did not finish; train it again")
    return RunData(
        root=root,
        label=run_label(root),
        config=OmegaConf.load(root / CONFIG),
        metrics=_json(root / METRICS),
        provenance=provenance.read(root),
        class_names=_json(root / CLASS_NAMES),
        confusion=read_confusion(root / CONFUSION_CSV),
        curves=read_epoch_curves(root / TENSORBOARD),
        manifest=_json(root / MANIFEST) if (root / MANIFEST).is_file() else None,
        evaluation=_json(root / EVALUATION_JSON) if (root / EVALUATION_JSON).is_file() else None,
        hashes=FileHashes(root),
    )


def run_label(root: Path) -> str:
    """The run's path relative to the working directory (what `RUN=` takes), or, for a run outside
    it, its last two path parts, so that no absolute path of the machine is ever shown."""
    relative = os.path.relpath(root.resolve(), Path.cwd().resolve())
    return relative if not relative.startswith("..") else f"{root.resolve().parent.name}/{root.resolve().name}"


def read_confusion(path: Path) -> np.ndarray | None:
    """The confusion matrix written by the train stage (header row and first column are class names)."""
    if not path.is_file():
        return None
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return np.array([[int(count) for count in row[1:]] for row in rows], dtype=np.int64)


def _json(path: Path) -> Any:
    return read_json(path)
