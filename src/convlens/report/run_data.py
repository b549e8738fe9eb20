"""Everything the report reads from a run directory, loaded once; the report recomputes no results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from convlens import provenance, run_files
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
    check_run_dir,
)


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
    def train_counts(self) -> list[int] | None:
        """The training images per class as ``metrics.json`` records them (runs trained before 2026-12-07 do not),
        or None where the record is missing or not one count per class."""
        counts = (self.metrics.get("data") or {}).get("train_class_counts")
        valid = isinstance(counts, list) and len(counts) == len(self.class_names)
        valid = valid and all(type(count) is int and count >= 0 for count in counts) and sum(counts) > 0
        return counts if valid else None

    @property
    def experiment(self) -> str:
        return str(self.config.experiment_name)


def synthetic(config: DictConfig) -> bool:
    """Whether a run's data is convlens's own synthetic kind (its config's source), not real images."""
    return str(config.data.get("source", {}).get("_target_", "")).endswith("SyntheticSource")


def training_node(config: DictConfig, key: str) -> Any:
    """``optimizer`` / ``scheduler``; runs made before those config groups kept them under ``module``."""
    return config[key] if key in config else OmegaConf.select(config, f"module.{key}")


def schedule_name(config: DictConfig) -> str | None:
    """The class name of the run's learning-rate schedule (``OneCycleLR``); None without one."""
    node = training_node(config, "scheduler")
    target = node.get("_target_") if node else None
    return str(target).rsplit(".", 1)[-1] if target else None


def read_run(path: str | Path) -> RunData:
    """Load a trained run, each file through its checked reader (:mod:`convlens.run_files`): a missing,
    damaged or out-of-run file is refused naming it and the command that writes it again."""
    root = check_run_dir(path)
    metrics = run_files.read_metrics(root)
    config = run_files.read_config(root)
    class_names = run_files.read_class_names(root, int(config.data.num_classes))
    return RunData(
        root=root,
        label=run_label(root),
        config=config,
        metrics=metrics,
        provenance=provenance.read(root),
        class_names=class_names,
        confusion=run_files.read_confusion(root, class_names),
        curves=read_epoch_curves(run_files.run_folder(root, TENSORBOARD)),
        manifest=run_files.read_manifest(root),
        evaluation=run_files.read_evaluation(root),
        hashes=FileHashes(root),
    )


def run_label(root: Path) -> str:
    """The run's path relative to the working directory (what `RUN=` takes), or, for a run outside
    it, its last two path parts, so that no absolute path of the machine is ever shown."""
    relative = os.path.relpath(root.resolve(), Path.cwd().resolve())
    return relative if not relative.startswith("..") else f"{root.resolve().parent.name}/{root.resolve().name}"
