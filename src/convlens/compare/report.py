"""The comparison report: ``<reports_dir>/compare/<experiment>/<time>/report.md`` + ``report.html``.

It reads the runs (as the report stage does: :func:`convlens.report.run_data.read_run`), draws the
side-by-side figures and copies the runs' feature figures into a folder built aside and swapped in
when complete (:mod:`convlens.atomic`). Every string from a run directory is escaped.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from markdown.extensions.toc import slugify

from convlens import atomic
from convlens.compare.features import FIGURES, feature_section
from convlens.compare.runs import ModelRun
from convlens.compare.schema import CompareConfig
from convlens.compare.side_by_side import SideBySide, check_same_data, side_by_side
from convlens.compare.tables import architecture_table, headline, trust_tables
from convlens.data.arrays import class_name
from convlens.figures.architectures import architectures_figure
from convlens.report.build import portable
from convlens.report.markdown import code, table, text
from convlens.report.render import to_html
from convlens.report.run_data import RunData, read_run
from convlens.untrusted import inside, safe_name

SECTIONS = (
    "Architectures",
    "Attribution methods side by side",
    "How far can each architecture's maps be trusted?",
    "Feature inversion and activation maximization",
    "Runs",
)


def write_report(cfg: CompareConfig, runs: Sequence[ModelRun], stamp: str) -> Path:
    """Write the report of ``runs`` (one per model) and return its folder."""
    experiment, names = cfg.experiment, [run.model for run in runs]
    data = [read_run(run.root) for run in runs]
    check_same_data(names, data)
    folder = inside(cfg.reports_dir, "compare", safe_name(experiment, "experiment"), safe_name(stamp, "time"))
    with atomic.staged_folder(folder) as staging:
        chosen = side_by_side(names, data, cfg.images)
        bodies = [
            architecture_table(names, data, cfg.trained_accuracy),
            figures_section(chosen, data, staging),
            "\n\n".join([TRUST_INTRO, headline(names, data), trust_tables(names, data)]),
            feature_section(names, data, staging),
            runs_section(runs, data),
        ]
        headings = [f"{number}. {title}" for number, title in enumerate(SECTIONS, 1)]
        sections = [f"## {heading}\n\n{body}" for heading, body in zip(headings, bodies, strict=True)]
        markdown = "\n\n".join([title(experiment, names), contents(headings), *sections]) + "\n"
        for run in data:
            markdown = portable(markdown, run)
        atomic.write_text(staging / "report.md", markdown)
        atomic.write_text(staging / "report.html", to_html(markdown, f"convlens comparison: {experiment}"))
    return folder


def title(experiment: str, names: Sequence[str]) -> str:
    return (
        f"# convlens comparison: {text(experiment)}\n\n{len(names)} architectures ({', '.join(map(code, names))}) "
        "trained on the same data, their maps drawn for the same test images and scored by the same metrics. "
        "Every number is read from the runs' directories (section 5); FLOPs are counted on one input."
    )


def contents(headings: Sequence[str]) -> str:
    return "**Contents**\n\n" + "\n".join(f"- [{heading}](#{slugify(heading, '-')})" for heading in headings)


def figures_section(chosen: SideBySide | None, runs: Sequence[RunData], report_dir: Path) -> str:
    """One figure per image (rows: architecture, columns: method), drawn into ``report_dir``."""
    if chosen is None:
        return (
            "> **Missing:** no test image was explained for its true class by every architecture with a method "
            "all runs kept maps of, so there is nothing to set side by side. `make compare` has every run explain "
            "the first images of each class (selection.rank=index, explain=true); runs visualized otherwise "
            "(reuse=true) may have chosen other images."
        )
    class_names = runs[0].class_names
    parts = [
        "For each image, every attribution method (columns) on each architecture (rows), each map explaining the "
        "image's true class; images every architecture classified correctly come first, and a row says when its "
        "architecture got the image wrong. Per-layer methods show their deepest layer; each map is divided by its "
        "own 99.5th percentile."
    ]
    methods = [chosen.column(method) for method in chosen.methods]
    for position, (index, label) in enumerate(zip(chosen.images, chosen.labels, strict=True)):
        name = class_name(class_names, label)
        maps = {_row(model, chosen.correct[model][position]): [found[method][position] for method in chosen.methods]
                for model, found in chosen.maps.items()}  # fmt: skip
        figure = architectures_figure(chosen.display[position], maps, methods, f"Test image #{index} ({name})")
        link = f"{FIGURES}/side_by_side_{index}.png"
        atomic.save_figure(figure, report_dir / link, dpi=100)
        parts.append(f"![Test image #{index} ({text(name)}) under every method and architecture]({link})")
    if chosen.left_out:
        parts.append("Left out (not every run kept its maps): " + ", ".join(map(code, chosen.left_out)) + ".")
    return "\n\n".join(parts)


def _row(model: str, correct: bool) -> str:
    return model if correct else f"{model}\n(misclassified)"


TRUST_INTRO = (
    "The evaluation stage of each run scored its maps next to uniform random maps on the same images "
    "(`docs/trust.md`). The first table counts, per architecture, the maps (method x layer) that beat random "
    "maps; the others give each method's score at its deepest layer as value (random baseline), ✓ better than "
    "random by more than two standard errors, ✗ worse by as much. Randomization: Spearman correlation to the "
    "trained map after re-initialising the head → after all stages (random maps' value); `insensitive` maps "
    "ignore the weights."
)


def runs_section(runs: Sequence[ModelRun], data: Sequence[RunData]) -> str:
    """Which run each architecture is, whether it was trained now, and what each stage took here."""
    rows = []
    for run, found in zip(runs, data, strict=True):
        times = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in run.seconds.items()) or "-"
        commit = (found.provenance.get("git") or {}).get("commit")
        rows.append((code(run.model), code(found.label), "reused" if run.reused else "trained now", times,
                     code(commit) if commit else "-"))  # fmt: skip
    note = (
        "Stage times are wall-clock seconds of each stage's process in this comparison (process start included); "
        "`make report RUN=<run>` writes any run's own full report."
    )
    return "\n\n".join([note, table(("model", "run", "", "stage times here", "code version"), rows)])


def shown_path(folder: Path) -> str:
    """The report folder relative to the working directory when inside it (no machine path in messages)."""
    relative = os.path.relpath(folder, Path.cwd().resolve())
    return relative if not relative.startswith("..") else str(folder)
