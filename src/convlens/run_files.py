"""One checked reader per file of a run directory (the names: :mod:`convlens.rundir`).

A run directory is input: a file may be truncated, hand-edited, a list where a mapping belongs, or a
symlink out of the run. Each reader returns what its stage wrote, or refuses the file with a
:class:`RunFileError` naming it and the command that writes it again; none lets a raw
``JSONDecodeError``, ``KeyError`` or ``IndexError`` through, and none follows a symlink out of the run
(:func:`run_file`). JSON is read strictly: ``NaN`` and ``Infinity`` are refused.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import yaml
from omegaconf import DictConfig, OmegaConf, ValidationError

from convlens.config import TrainConfig, known_part
from convlens.lineage import MADE_FROM
from convlens.rundir import CLASS_NAMES, CONFIG, CONFUSION_CSV, EVALUATION_JSON, MANIFEST, METRICS, RunDirError
from convlens.untrusted import UntrustedInputError, inside, read_json

#: The splits a manifest may name (``selection.split``).
SPLITS = ("train", "val", "test")
#: What ``metrics.json`` must hold for the report: key -> check.
METRICS_REQUIRED: dict[str, Callable[[Any], bool]] = {
    "model": lambda value: isinstance(value, str),
    "parameters": lambda value: _is_count(value),
    "epochs": lambda value: _is_count(value),
    "data": lambda value: isinstance(value, dict) and isinstance(value.get("sizes"), dict),
    "best_epoch": lambda value: value is None or _is_count(value),
}
#: The nodes of ``config.yaml`` a stage builds (``_target_``) or reads as a mapping.
BUILT_NODES = ("model", "data", "data.source", "optimizer", "scheduler")
#: What ``evaluation/evaluation.json`` must hold at its top level: key -> type.
EVALUATION_REQUIRED = {"methods": dict, "settings": dict, "baselines": dict, "images": list}


class RunFileError(RunDirError, UntrustedInputError):
    """A file of a run directory that is damaged or not what its stage writes; the message names both
    the file and the command that writes it again."""


def train_command() -> str:
    return "`make train` (a new run)"


def visualize_command(root: Path) -> str:
    return f"`make visualize RUN={root}`"


def evaluate_command(root: Path) -> str:
    return f"`make evaluate RUN={root}`"


def run_file(root: Path, name: str | Path) -> Path:
    """``root / name`` resolved, refused when it (or a folder on its way) is a symlink that leaves the run."""
    return inside(root, str(name))


def run_folder(root: Path, name: str | Path) -> Path:
    """``root / name`` resolved, refused when it or any file under it is a symlink that leaves the run."""
    folder = run_file(root, name)
    for path in folder.rglob("*") if folder.is_dir() else ():
        run_file(root, Path(name) / path.relative_to(folder))
    return folder


def read_config(root: Path) -> DictConfig:
    """``config.yaml``: the run's resolved config, with the keys every stage reads back."""
    try:
        config = OmegaConf.load(run_file(root, CONFIG))
    except (yaml.YAMLError, OSError, UnicodeDecodeError, ValueError) as error:
        _refuse(root, CONFIG, f"it cannot be read as YAML ({str(error).splitlines()[0]})", train_command())
    if not isinstance(config, DictConfig) or not _is_count(OmegaConf.select(config, "data.num_classes")):
        _refuse(root, CONFIG, "it must be a mapping with data.num_classes", train_command())
    _check_config_types(root, config)
    return config


def _check_config_types(root: Path, config: DictConfig) -> None:
    """Every key the train schema types holds a value of its type (keys it no longer has are let through:
    older runs), and the nodes a stage builds or reads as mappings are mappings where present."""
    try:
        OmegaConf.merge(OmegaConf.structured(TrainConfig), known_part(config, TrainConfig))
    except ValidationError as error:
        where = f"{error.full_key}: " if error.full_key else ""
        _refuse(root, CONFIG, f"{where}{str(error).splitlines()[0]}", train_command())
    for key in BUILT_NODES:
        node = OmegaConf.select(config, key)
        if node is not None and not isinstance(node, DictConfig):
            _refuse(root, CONFIG, f"{key} must be a mapping with a _target_, not {node!r}", train_command())


def read_metrics(root: Path) -> dict[str, Any]:
    """``metrics.json``: the train stage's final numbers; a run without it did not finish training."""
    path = run_file(root, METRICS)
    if not path.is_file():
        raise RunDirError(f"{root} has no {METRICS}: its training did not finish; train it again ({train_command()})")
    metrics = read_json(path, train_command())
    _mapping(root, METRICS, metrics, train_command())
    for key, fits in METRICS_REQUIRED.items():
        if not fits(metrics.get(key)):
            _refuse(root, METRICS, f"'{key}' is missing or malformed ({metrics.get(key)!r})", train_command())
    for split in SPLITS:
        if metrics.get(split) is not None and not _numbers(metrics[split], ("acc", "loss")):
            _refuse(root, METRICS, f"'{split}' must hold the numbers acc and loss", train_command())
    balanced = {key: value for key, value in (metrics.get("test") or {}).items() if key in ("balanced_acc", "macro_f1")}
    if not all(value is None or _is_number(value) for value in balanced.values()):
        _refuse(root, METRICS, "'test' balanced_acc and macro_f1 must be numbers (or null)", train_command())
    per_class = metrics.get("per_class_accuracy") or {}
    if not isinstance(per_class, dict) or not all(_is_number(value) for value in per_class.values()):
        _refuse(root, METRICS, "'per_class_accuracy' must map class names to accuracies", train_command())
    return metrics


def read_class_names(root: Path, classes: int) -> list[str]:
    """``class_names.json``: one name per class of the run's data (``classes``), in label order."""
    names = read_json(run_file(root, CLASS_NAMES), train_command())
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        _refuse(root, CLASS_NAMES, "it must be a list of class names", train_command())
    if len(names) != classes:
        _refuse(root, CLASS_NAMES, f"it names {len(names)} classes, the run's data has {classes}", train_command())
    return names


def read_confusion(root: Path, class_names: list[str]) -> np.ndarray | None:
    """``confusion_matrix.csv`` (header row and first column: class names; rows: true class), or None
    for a run without a test; a class count or a cell that does not fit is refused."""
    path = run_file(root, CONFUSION_CSV)
    if not path.is_file():
        return None
    classes = len(class_names)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        counts = np.array([[int(count) for count in row[1:]] for row in rows[1:]], dtype=np.int64)
    except (csv.Error, UnicodeDecodeError, ValueError, OverflowError) as error:
        _refuse(root, CONFUSION_CSV, f"it is not a table of whole numbers ({error})", train_command())
    if len(rows[0] if rows else []) != classes + 1 or counts.shape != (classes, classes) or (counts < 0).any():
        _refuse(
            root, CONFUSION_CSV, f"it must be a {classes} x {classes} table of counts with a header", train_command()
        )
    return counts


def read_manifest(root: Path) -> dict[str, Any] | None:
    """``visualizations/manifest.json``, or None before the visualize stage ran (figure paths in it are
    checked where they are used: :func:`convlens.report.assets.check_figure_file`)."""
    path = run_file(root, MANIFEST)
    if not path.is_file():
        return None
    manifest = read_json(path, visualize_command(root))
    _mapping(root, MANIFEST, manifest, visualize_command(root))
    methods, entries = manifest.get("methods", {}), manifest.get("entries", [])
    if not isinstance(methods, dict) or not all(isinstance(summary, dict) for summary in methods.values()):
        _refuse(root, MANIFEST, "'methods' must map method names to their records", visualize_command(root))
    if not isinstance(entries, list) or not all(_is_entry(entry) for entry in entries):
        _refuse(root, MANIFEST, "'entries' must be a list of records with a 'method' name, a 'layer' (a name, a "
                "list of names or null) and 'images' (a list of records)", visualize_command(root))  # fmt: skip
    if not all(isinstance(summary.get("notes", []), list) for summary in methods.values()):
        _refuse(root, MANIFEST, "each method's 'notes' must be a list", visualize_command(root))
    if not isinstance(manifest.get("comparison", {}), dict | None):
        _refuse(root, MANIFEST, "'comparison' must be a record of the comparison figure", visualize_command(root))
    if manifest.get("split", "test") not in SPLITS:
        _refuse(root, MANIFEST, f"'split' must be one of {', '.join(SPLITS)}", visualize_command(root))
    _made_from(root, MANIFEST, manifest, visualize_command(root))
    return manifest


def read_evaluation(root: Path) -> dict[str, Any] | None:
    """``evaluation/evaluation.json``, or None before the evaluate stage ran; every number finite."""
    path = run_file(root, EVALUATION_JSON)
    if not path.is_file():
        return None
    evaluation = read_json(path, evaluate_command(root))
    _mapping(root, EVALUATION_JSON, evaluation, evaluate_command(root))
    for key, kind in EVALUATION_REQUIRED.items():
        if not isinstance(evaluation.get(key), kind):
            _refuse(root, EVALUATION_JSON, f"'{key}' is missing or not a {kind.__name__}", evaluate_command(root))
    _made_from(root, EVALUATION_JSON, evaluation, evaluate_command(root))
    return evaluation


def _mapping(root: Path, name: str | Path, value: Any, rewrite: str) -> None:
    if not isinstance(value, dict):
        _refuse(root, name, f"it must hold a JSON object, not {type(value).__name__}", rewrite)


def _made_from(root: Path, name: str | Path, record: dict[str, Any], rewrite: str) -> None:
    """The lineage record, if any (older versions wrote none): run-relative paths mapped to sha256 digests."""
    made_from = record.get(MADE_FROM, {})
    if not isinstance(made_from, dict) or not all(isinstance(digest, str) for digest in made_from.values()):
        _refuse(root, name, f"'{MADE_FROM}' must map run files to their sha256", rewrite)


def _refuse(root: Path, name: str | Path, problem: str, rewrite: str) -> NoReturn:
    raise RunFileError(f"{root / name} is not what its stage writes ({problem}); {rewrite} writes it again")


def _numbers(record: Any, keys: tuple[str, ...]) -> bool:
    return isinstance(record, Mapping) and all(_is_number(record.get(key)) for key in keys)


def _is_entry(entry: Any) -> bool:
    """A manifest entry: a method name, a layer (a name, a list of names or null) and a list of image records."""
    if not isinstance(entry, dict) or not isinstance(entry.get("method"), str):
        return False
    layer, images = entry.get("layer"), entry.get("images") or []
    names = layer if isinstance(layer, list) else [layer]
    return (
        all(name is None or isinstance(name, str) for name in names)
        and isinstance(images, list)
        and all(isinstance(image, dict) for image in images)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
