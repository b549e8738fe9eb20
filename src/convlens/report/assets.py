"""The report's figures: drawn (learning curves) or copied from the run, under ``<report>/figures/``.

The folder is rebuilt on every report, so figures of an earlier run never linger, and the links
in report.md are relative to the report folder, which can therefore be moved or zipped as is.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convlens.figures.curves import learning_curves_figure
from convlens.report.curves import EpochCurves
from convlens.report.run_data import CONFUSION_PNG, VISUALIZATIONS, RunData

log = logging.getLogger(__name__)

FIGURES = "figures"
LEARNING_CURVES = f"{FIGURES}/learning_curves.png"
CONFUSION_MATRIX = f"{FIGURES}/confusion_matrix.png"
#: Matplotlib stamps its version into PNGs by default; a stable file needs no such metadata.
PNG_METADATA = {"Software": None}


def visualization_link(entry: dict[str, Any]) -> str:
    """Where a manifest entry's figure lies in the report folder (``file`` is relative to visualizations/)."""
    return f"{FIGURES}/{VISUALIZATIONS}/{entry['file']}"


def available_entries(run: RunData) -> list[dict[str, Any]]:
    """Manifest entries whose figure exists in the run (a missing file is logged and left out)."""
    entries = (run.manifest or {}).get("entries", [])
    present = [entry for entry in entries if (run.root / VISUALIZATIONS / entry["file"]).is_file()]
    if len(present) < len(entries):
        log.warning("%s: %d manifest figures are missing and left out", run.label, len(entries) - len(present))
    return present


def write_figures(run: RunData, report_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Recreate ``<report_dir>/figures`` with the learning curves, confusion matrix and visualizations."""
    figures = report_dir / FIGURES
    if figures.exists():
        shutil.rmtree(figures)
    figures.mkdir(parents=True)
    if len(run.curves):
        draw_learning_curves(run.curves, report_dir / LEARNING_CURVES)
    if (run.root / CONFUSION_PNG).is_file():
        shutil.copyfile(run.root / CONFUSION_PNG, report_dir / CONFUSION_MATRIX)
    for entry in entries:
        target = report_dir / visualization_link(entry)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run.root / VISUALIZATIONS / entry["file"], target)


def draw_learning_curves(curves: EpochCurves, path: Path) -> None:
    figure = learning_curves_figure(curves.epochs, curves.values, curves.lr_tag)
    figure.savefig(path, dpi=110, metadata=PNG_METADATA)
