"""The report stage: read a run directory, write ``<reports_dir>/<experiment>/report.md`` + ``.html``.

Rerunning it on the same run rewrites byte-identical files: sections come in a fixed order, figures
are copied or drawn without timestamps, and the report's own stage time is left out of the text.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from convlens import provenance
from convlens.report import sections
from convlens.report.assets import available_entries, write_figures
from convlens.report.gallery import VISUAL_SECTIONS
from convlens.report.render import to_html
from convlens.report.run_data import RunData, read_run
from convlens.rundir import RunDirError

log = logging.getLogger(__name__)

LIME_SECTION = 14


def build_report(run_dir: str | Path, reports_dir: str | Path) -> Path:
    """Write the report of one run and record the stage time; returns the report folder."""
    started = time.perf_counter()
    run = read_run(run_dir)
    report_dir = Path(reports_dir) / run.experiment
    entries = available_entries(run)
    write_figures(run, report_dir, entries)
    text = portable(report_markdown(run, entries), run)
    (report_dir / "report.md").write_text(text)
    (report_dir / "report.html").write_text(to_html(text, f"convlens report: {run.experiment}"))
    provenance.record_stage(run.root, sections.REPORT_STAGE, time.perf_counter() - started)
    log.info("%s: report written to %s", run.label, report_dir / "report.md")
    return report_dir


def build_reports(runs: Sequence[Path], reports_dir: str | Path) -> list[str]:
    """Report every run; one that cannot be reported (e.g. training still running) does not stop
    the others. Returns the error messages."""
    errors = []
    for run_dir in runs:
        try:
            build_report(run_dir, reports_dir)
        except RunDirError as error:
            errors.append(str(error))
    return errors


def report_markdown(run: RunData, entries: Sequence[dict[str, Any]]) -> str:
    """All fifteen sections, in order."""
    parts = [
        sections.title(run),
        sections.summary(run, entries),
        sections.setup(run),
        sections.learning_progress(run),
        sections.results(run),
    ]
    for section in VISUAL_SECTIONS:
        render = sections.lime_per_class if section.number == LIME_SECTION else sections.visual_section
        parts.append(render(section, run, entries))
    parts.append(sections.provenance(run))
    return "\n\n".join(parts) + "\n"


def portable(text: str, run: RunData) -> str:
    """Replace any machine-specific prefix left in the run's files (e.g. an absolute output_dir in its
    config) by the run's label, a project-relative path or ``~``, so the report names no machine path."""
    replacements = [
        (str(run.root.resolve()), run.label),
        (str(run.root.absolute()), run.label),
        (str(Path.cwd().resolve()) + os.sep, ""),
        (str(Path.home()), "~"),
    ]
    for prefix, replacement in replacements:
        if prefix not in ("", os.sep, "~"):
            text = text.replace(prefix, replacement)
    return text
