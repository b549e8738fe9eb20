"""The sweep report: every run of a seed sweep (and any grid), mean and standard deviation of the test
accuracy overall and per class for each setting, learning curves overlaid.

A sweep folder (``outputs/sweeps/<experiment>/<time>``, made by :mod:`convlens.sweep`) holds its runs as
``<experiment>/<time>[-N]``. Runs are grouped by the config values that differ between them, the seed
and paths aside. Everything read is untrusted: each run's ``config.yaml`` and ``metrics.json`` through the
checked readers of :mod:`convlens.run_files`, names escaped, output written atomically. A run whose files
are damaged is listed with the reason and left out of the statistics; the report is written for the
others, then :class:`DamagedRuns` names each damaged run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from convlens import atomic
from convlens.figures.sweep import RunCurves, sweep_curves_figure
from convlens.report import format, markdown
from convlens.report.curves import read_epoch_curves
from convlens.report.render import to_html
from convlens.run_files import read_config, read_metrics
from convlens.rundir import CONFIG, METRICS, TENSORBOARD, RunDirError
from convlens.untrusted import UntrustedInputError, inside, safe_name

#: Config keys that differ between the runs of one setting by design.
PER_RUN_KEYS = ("seed", "data.seed", "paths.", "trainer.default_root_dir", "callbacks.", "logger.")
CURVES = "learning_curves.png"


@dataclass(frozen=True)
class SweepRun:
    """One run: its folder, seed, setting (config values that differ between runs) and metrics."""

    root: Path
    seed: Any
    setting: dict[str, str]
    metrics: dict[str, Any] | None  # None: no metrics.json (the run failed or is still training) or damaged
    problem: str | None = None  # why a file of the run cannot be read (it is left out of the statistics)

    def number(self, *keys: str) -> float | None:
        value: Any = self.metrics
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        ok = format.is_number(value) and math.isfinite(value)
        return float(value) if ok else None


class DamagedRuns(RunDirError):
    """Runs of a sweep whose files could not be read; raised once the report of the others is written."""


def find_runs(sweep_dir: Path) -> list[SweepRun]:
    """The run folders of a sweep (those with a config.yaml), in start order; a damaged one carries its
    ``problem`` and no setting."""
    roots = sorted(p.parent for p in sweep_dir.glob(f"*/*/{CONFIG}") if not p.parent.is_symlink())
    read = {root: _read_run(root) for root in roots}
    flat = {root: config for root, (config, _, _) in read.items() if config is not None}
    differing = {k for config in flat.values() for k in config if len({str(c.get(k)) for c in flat.values()}) > 1}
    varied = sorted(k for k in differing if not any(k == p or k.startswith(p) for p in PER_RUN_KEYS if p))
    return [
        SweepRun(root, (config or {}).get("seed"), {k: str(config.get(k)) for k in varied} if config else {},
                 metrics, problem)
        for root, (config, metrics, problem) in read.items()
    ]  # fmt: skip


def intact(runs: Sequence[SweepRun]) -> list[SweepRun]:
    """The runs whose files could be read (those the statistics and curves are made of)."""
    return [run for run in runs if run.problem is None]


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, value in node.items() for k, v in _flatten(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


def _read_run(root: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None, str | None]:
    """A run's flattened config and its metrics (None: not finished), or the reason one is damaged."""
    try:
        config = _flatten(OmegaConf.to_container(read_config(root)))
        return config, read_metrics(root) if (root / METRICS).is_file() else None, None
    except UntrustedInputError as error:  # a RunFileError, or strict JSON's refusal
        return None, None, str(error)


def _spread(values: Sequence[float]) -> tuple[str, str]:
    """Mean and sample standard deviation (none for a single run), as percentages."""
    if not values:
        return "-", "-"
    deviation = format.percent(statistics.stdev(values)) if len(values) > 1 else "-"
    return format.percent(statistics.fmean(values)), deviation


def _setting_name(setting: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in setting.items()) or "all runs"


def sweep_markdown(experiment: str, sweep_name: str, runs: Sequence[SweepRun], classes: Sequence[str]) -> str:
    settings = list(dict.fromkeys(_setting_name(run.setting) for run in intact(runs)))
    finished = [run for run in intact(runs) if run.metrics is not None]
    lines = [
        f"# Sweep: {markdown.text(experiment)}",
        "",
        f"Sweep {markdown.code(sweep_name)}: {len(runs)} runs, {len(finished)} finished, "
        f"{len(settings)} setting(s). Mean and standard deviation (over seeds, n-1) of the best checkpoint's "
        "test accuracy; runs of one setting differ only in their seed.",
        "",
        "## Test accuracy",
        "",
    ]
    rows = []
    for name in settings:
        accs = [a for r in finished if _setting_name(r.setting) == name and (a := r.number("test", "acc")) is not None]
        rows.append([markdown.text(name), len(accs), *_spread(accs), *_range(accs)])
    lines += [markdown.table(["setting", "runs", "mean", "std", "min", "max"], rows), ""]
    lines += ["## Test accuracy per class (mean ± std)", ""]
    class_rows = []
    for label in classes:
        cells = []
        for name in settings:
            group = [r for r in finished if _setting_name(r.setting) == name]
            values = [v for r in group if (v := r.number("per_class_accuracy", label)) is not None]
            cells.append("{} ± {}".format(*_spread(values)))
        class_rows.append([markdown.text(label), *cells])
    lines += [markdown.table(["class", *map(markdown.text, settings)], class_rows), ""]
    lines += ["## Learning curves", "", f"![validation accuracy and training loss of every run]({CURVES})", ""]
    lines += ["## All runs", "", markdown.table(["run", "seed", "setting", "val acc", "test acc", "best epoch",
                                                   "epochs", "train s"], [_run_row(run) for run in runs])]  # fmt: skip
    return "\n".join(lines) + "\n"


def _range(values: Sequence[float]) -> list[str]:
    return [format.percent(min(values)), format.percent(max(values))] if values else ["-", "-"]


def _run_row(run: SweepRun) -> list[Any]:
    name = markdown.code(f"{run.root.parent.name}/{run.root.name}")
    setting = _setting_name(run.setting) if run.problem is None else "-"
    head = [name, markdown.text(run.seed), markdown.text(setting)]
    if run.problem is not None:
        return [*head, markdown.text(f"damaged: {run.problem}"), "", "", "", ""]
    if run.metrics is None:
        return [*head, "no metrics.json (failed or still training)", "", "", "", ""]
    best = run.number("best_epoch")
    return [
        *head,
        format.percent(run.number("val", "acc")), format.percent(run.number("test", "acc")),
        format.epoch(None if best is None else int(best)), format.value(run.number("epochs")),
        format.value(run.number("train_seconds")),
    ]  # fmt: skip


def build_sweep_report(sweep_dir: str | Path, reports_dir: str | Path) -> Path:
    """Write ``<reports_dir>/sweep/<experiment>/<sweep>/report.md`` (+ .html, the curves figure), then
    raise :class:`DamagedRuns` when a run's files could not be read."""
    sweep_dir = Path(sweep_dir)
    experiment = safe_name(sweep_dir.parent.name, "sweep folder's experiment")
    runs = find_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"{sweep_dir} holds no run (no <experiment>/<time>/{CONFIG})")
    report_dir = inside(reports_dir, "sweep", experiment, safe_name(sweep_dir.name, "sweep folder"))
    classes = _class_names(runs)
    settings = list(dict.fromkeys(_setting_name(run.setting) for run in intact(runs)))
    curves = []
    for run in intact(runs):
        read = read_epoch_curves(run.root / TENSORBOARD)
        group = settings.index(_setting_name(run.setting))
        val_acc, train_loss = read.values.get("val/acc", []), read.values.get("train/loss", [])
        curves.append(RunCurves(str(run.seed), group, read.epochs, val_acc, train_loss))
    with atomic.staged_folder(report_dir) as staging:
        atomic.save_figure(sweep_curves_figure(curves, settings), staging / CURVES, dpi=110)
        text = sweep_markdown(sweep_dir.parent.name, sweep_dir.name, runs, classes)
        atomic.write_text(staging / "report.md", text)
        atomic.write_text(staging / "report.html", to_html(text, f"convlens sweep: {experiment}"))
    damaged = [f"{run.root}: {run.problem}" for run in runs if run.problem is not None]
    if damaged:
        raise DamagedRuns(f"the sweep report {report_dir / 'report.md'} was written without {len(damaged)} of "
                          f"{len(runs)} runs, whose files could not be read:\n" + "\n".join(damaged))  # fmt: skip
    return report_dir


def _class_names(runs: Sequence[SweepRun]) -> list[str]:
    """The classes, in label order, from the first finished run's per-class accuracies."""
    for run in runs:
        per_class = (run.metrics or {}).get("per_class_accuracy")
        if isinstance(per_class, dict):
            return [str(name) for name in per_class]
    return []
