"""Learning curves of a sweep's runs overlaid: validation accuracy and training loss per epoch, one line
per run, one colour per setting (the runs of one setting differ only in their seed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from matplotlib.figure import Figure

from convlens.figures.curves import Series


@dataclass(frozen=True)
class RunCurves:
    """One run's curves: ``label`` names the run (its seed), ``group`` its setting."""

    label: str
    group: int
    epochs: Sequence[int]
    val_acc: Series
    train_loss: Series


def sweep_curves_figure(runs: Sequence[RunCurves], group_names: Sequence[str]) -> Figure:
    figure = Figure(figsize=(10, 3.8))
    panels = figure.subplots(1, 2)
    colours = [f"C{index % 10}" for index in range(len(group_names))]
    for run in runs:
        for panel, series in zip(panels, (run.val_acc, run.train_loss), strict=True):
            points = [(e, v) for e, v in zip(run.epochs, series, strict=False) if v is not None]
            if points:
                x, y = zip(*points, strict=True)
                panel.plot(x, y, color=colours[run.group], alpha=0.75, marker="o", markersize=2.5)
    for panel, label in zip(panels, ("validation accuracy", "training loss"), strict=True):
        panel.set_xlabel("epoch")
        panel.set_ylabel(label)
        panel.grid(alpha=0.3)
        panel.xaxis.get_major_locator().set_params(integer=True)
    for colour, name in zip(colours, group_names, strict=True):
        panels[0].plot([], [], color=colour, label=name)
    panels[0].legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    return figure
