"""The report stage: read a run directory, write ``<reports_dir>/<experiment>/<run>/report.md`` + ``.html``.

Every run gets its own report folder, so reporting an older run never overwrites a newer run's
report; ``<reports_dir>/<experiment>/latest`` points at the report of the newest run (run folders
are named by their start time).

Sections are numbered by enumeration: the four opening sections, one per visualization section of
:mod:`convlens.registry`, then provenance. The report folder is built under a temporary name and
swapped in when complete. Rerunning it on the same run rewrites byte-identical files: sections come
in a fixed order, figures are copied or drawn without timestamps, and the report's own stage time
is left out of the text.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from markdown.extensions.toc import slugify
from omegaconf import DictConfig

from convlens import atomic, registry
from convlens.report import appendix, findings, overview, results, visuals
from convlens.report.assets import available_entries, write_figures
from convlens.report.render import to_html
from convlens.report.run_data import RunData, read_run
from convlens.report.schema import ReportConfig
from convlens.report.trust import trust
from convlens.rundir import LATEST
from convlens.stage import OpenedRun, Stage
from convlens.untrusted import inside, safe_name

log = logging.getLogger(__name__)

OPENING_SECTIONS = (
    "Summary", "Findings", "Setup", "Learning progress", "Results", "How far can we trust these maps?",
)  # fmt: skip
#: The number of the trust section, which the Findings point to.
TRUST_SECTION = OPENING_SECTIONS.index("How far can we trust these maps?") + 1
CLOSING_SECTIONS = ("Provenance",)
#: Characters that continue a file name: a path prefix followed or preceded by one is part of a longer name.
PATH_CHARACTERS = r"\w.~-"


def report_body(opened: OpenedRun, cfg: ReportConfig) -> dict[str, Any]:
    """The stage's body for one run directory (:mod:`convlens.stage` does the rest): its report folder."""
    run = read_run(opened.root)
    experiment = safe_name(run.experiment, f"experiment_name in {run.label}/config.yaml")
    report_dir = inside(cfg.reports_dir, experiment, safe_name(run.root.resolve().name, f"run folder {run.label}"))
    entries = available_entries(run)
    with atomic.staged_folder(report_dir) as staging:
        write_figures(run, staging, entries)
        text = portable(report_markdown(run, entries), run)
        atomic.write_text(staging / "report.md", text)
        atomic.write_text(staging / "report.html", to_html(text, f"convlens report: {run.experiment}"))
    point_latest(report_dir.parent)
    shown = Path(cfg.reports_dir) / experiment / report_dir.name
    log.info("%s: report written to %s", run.label, shown / "report.md")
    return {"report": shown}


STAGE = Stage(overview.REPORT_STAGE, None, report_body)


def report(cfg: ReportConfig | DictConfig) -> list[dict[str, Any]]:
    """``make report``: every run named by ``run``/``experiment``; one that cannot be reported (training
    still running, a tampered run directory) does not stop the others, and is named at the end."""
    return STAGE.run(cfg)


def build_report(run_dir: str | Path, reports_dir: str | Path) -> Path:
    """Write the report of one run and record the stage time; returns the report folder."""
    return STAGE.run_one(run_dir, ReportConfig(run=str(run_dir), reports_dir=str(reports_dir)))["report"]


def point_latest(experiment_dir: Path) -> None:
    """``latest`` -> the newest run's report folder: the largest name among the folders holding a report
    (run folders are named by their start time; staging folders and older layouts hold none)."""
    reports = [
        path.name
        for path in experiment_dir.iterdir()
        if not path.is_symlink() and not path.name.startswith(".") and (path / "report.md").is_file()
    ]
    atomic.point(experiment_dir / LATEST, max(reports))


def report_markdown(run: RunData, entries: Sequence[dict[str, Any]]) -> str:
    """The title, then every section under its number."""
    first_visual = len(OPENING_SECTIONS) + 1
    numbers = {section.key: first_visual + index for index, section in enumerate(registry.SECTIONS)}
    findings_heading = f"2. {OPENING_SECTIONS[1]}"
    scores = trust(run, f"[Findings](#{slugify(findings_heading, '-')})")
    bodies = [
        overview.summary(run, entries, numbers),
        findings.findings(run, numbers | {"trust": TRUST_SECTION}),
        overview.setup(run),
        results.learning_progress(run),
        results.results(run),
        scores.body,
    ]
    bodies += [visuals.visual_section(section, run, entries, scores.status) for section in registry.SECTIONS]
    bodies.append(appendix.provenance(run))
    titles = [*OPENING_SECTIONS, *(section.title for section in registry.SECTIONS), *CLOSING_SECTIONS]
    headings = [f"{number}. {title}" for number, title in enumerate(titles, 1)]
    numbered = [f"## {heading}\n\n{body}" for heading, body in zip(headings, bodies, strict=True)]
    return "\n\n".join([overview.title(run), contents(headings), *numbered]) + "\n"


def contents(headings: Sequence[str]) -> str:
    """A linked table of contents; the anchors are those GitHub and the HTML (toc extension) give headings."""
    return "**Contents**\n\n" + "\n".join(f"- [{heading}](#{slugify(heading, '-')})" for heading in headings)


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
            text = replace_path_prefix(text, prefix, replacement)
    return text


def replace_path_prefix(text: str, prefix: str, replacement: str) -> str:
    """``prefix`` replaced only where it begins a path and ends at a separator or the path's end: a
    short prefix such as a ``HOME`` of ``/d`` must not cut into ``outputs/demo_faces``."""
    ends = "" if prefix.endswith(os.sep) else rf"(?![{PATH_CHARACTERS}])"
    pattern = rf"(?<![{re.escape(os.sep)}{PATH_CHARACTERS}]){re.escape(prefix)}{ends}"
    return re.sub(pattern, lambda _: replacement, text)
