"""The report's figures: drawn (learning curves) or copied from the run, under ``<report>/figures/``.

The report folder is built afresh on every report, so figures of an earlier run never linger, and
the links in report.md are relative to it, so it can be moved or zipped as is. Manifest entries
are input: a figure path that is not a plain ``<method>/<name>.png`` inside ``visualizations/`` is
refused, and so is every file to copy whose resolved path leaves the run directory (a symlinked
``confusion_matrix.png`` or ``visualizations/`` folder), before anything is copied.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from convlens import atomic
from convlens.figures.curves import learning_curves_figure
from convlens.report.curves import EpochCurves
from convlens.report.run_data import RunData
from convlens.rundir import CONFUSION_PNG, EVALUATION, MANIFEST, VISUALIZATIONS
from convlens.untrusted import UntrustedInputError, inside

log = logging.getLogger(__name__)

FIGURES = "figures"
LEARNING_CURVES = f"{FIGURES}/learning_curves.png"
CONFUSION_MATRIX = f"{FIGURES}/confusion_matrix.png"
COMPARISON = f"{FIGURES}/comparison.png"
CASCADE = f"{FIGURES}/cascade.png"
EVALUATED_COMPARISON = f"{FIGURES}/evaluated_comparison.png"
PARTS = f"{FIGURES}/parts.png"
#: What a manifest entry's ``file`` may look like: one method folder, one PNG, safe characters.
FIGURE_FILE = re.compile(r"^[a-z0-9_]+/[A-Za-z0-9_.-]+\.png$")


def visualization_link(entry: dict[str, Any]) -> str:
    """Where a manifest entry's figure lies in the report folder (``file`` is relative to visualizations/)."""
    return f"{FIGURES}/{VISUALIZATIONS}/{entry['file']}"


def available_entries(run: RunData) -> list[dict[str, Any]]:
    """Manifest entries whose figure exists in the run (a missing file is logged and left out)."""
    entries = (run.manifest or {}).get("entries", [])
    for entry in entries:
        check_figure_file(run, entry)
    present = [entry for entry in entries if inside(run.root, VISUALIZATIONS, entry["file"]).is_file()]
    if len(present) < len(entries):
        log.warning("%s: %d manifest figures are missing and left out", run.label, len(entries) - len(present))
    return present


def check_figure_file(run: RunData, entry: dict[str, Any]) -> None:
    """Refuse an entry whose ``file`` is not a plain figure path inside the run's ``visualizations/``."""
    file = entry.get("file")
    if not isinstance(file, str) or not FIGURE_FILE.match(file):
        raise UntrustedInputError(
            f"{run.label}/{MANIFEST}: entry file {file!r} is not <method>/<name>.png; "
            f"rerun `make visualize RUN={run.label}` to rewrite the manifest"
        )
    inside(run.root, VISUALIZATIONS, file)


def comparison_file(run: RunData) -> Path | None:
    """The visualize stage's comparison figure, if it drew one (its name is checked: input)."""
    file = ((run.manifest or {}).get("comparison") or {}).get("file")
    if not isinstance(file, str) or not re.fullmatch(r"[a-z0-9_]+\.png", file):
        return None
    path = inside(run.root, VISUALIZATIONS, file)
    return path if path.is_file() else None


def cascade_file(run: RunData) -> Path | None:
    """The evaluation stage's randomization-cascade figure, if it drew one (its name is checked: input)."""
    return _evaluation_figure(run, (run.evaluation or {}).get("figure"))


def parts_file(run: RunData) -> Path | None:
    """The evaluation stage's figure of the parts the shares are measured in, if it drew one and is current."""
    if run.evaluation_stale:
        return None
    return _evaluation_figure(run, ((run.evaluation or {}).get("parts_figure") or {}).get("file"))


def evaluated_comparison_file(run: RunData) -> Path | None:
    """The evaluation stage's comparison figure (each method at its best-supported layer), if it drew one."""
    return _evaluation_figure(run, ((run.evaluation or {}).get("comparison") or {}).get("file"))


def shown_comparison(run: RunData) -> tuple[Path, str] | None:
    """The one comparison figure the report shows, with its link: the evaluation's (every method at
    its best-supported layer) unless it is missing or stale, else the visualize stage's."""
    evaluated = evaluated_comparison_file(run)
    if evaluated is not None and not run.evaluation_stale:
        return evaluated, EVALUATED_COMPARISON
    drawn = comparison_file(run)
    return (drawn, COMPARISON) if drawn is not None else None


def _evaluation_figure(run: RunData, file: Any) -> Path | None:
    if not isinstance(file, str) or not re.fullmatch(r"[a-z0-9_]+\.png", file):
        return None
    path = inside(run.root, EVALUATION, file)
    return path if path.is_file() else None


def write_figures(run: RunData, report_dir: Path, entries: Iterable[dict[str, Any]]) -> None:
    """Fill ``<report_dir>/figures`` with the learning curves, confusion matrix and visualizations."""
    copies = figure_copies(run, entries)  # every source checked before the first copy
    (report_dir / FIGURES).mkdir(parents=True, exist_ok=True)
    if len(run.curves):
        draw_learning_curves(run.curves, report_dir / LEARNING_CURVES)
    for source, link in copies.items():
        (report_dir / link).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, report_dir / link)


def figure_copies(run: RunData, entries: Iterable[dict[str, Any]]) -> dict[Path, str]:
    """Each figure to copy, resolved inside the run directory, and its link in the report folder."""
    confusion = inside(run.root, CONFUSION_PNG)
    copies = {confusion: CONFUSION_MATRIX} if confusion.is_file() else {}
    shown, cascade = shown_comparison(run), cascade_file(run)
    if shown is not None:
        copies[shown[0]] = shown[1]
    if cascade is not None:
        copies[cascade] = CASCADE
    parts = parts_file(run)
    if parts is not None:
        copies[parts] = PARTS
    copies.update({inside(run.root, VISUALIZATIONS, entry["file"]): visualization_link(entry) for entry in entries})
    return copies


def draw_learning_curves(curves: EpochCurves, path: Path) -> None:
    figure = learning_curves_figure(curves.epochs, curves.values, curves.lr_tag, curves.step_loss, curves.step_lr)
    atomic.save_figure(figure, path, dpi=110)
