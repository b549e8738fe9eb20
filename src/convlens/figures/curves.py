"""Learning-curve figure: train and validation loss and accuracy per epoch (and the learning rate)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

Series = Sequence[float | None]


def learning_curves_figure(
    epochs: Sequence[int], values: Mapping[str, Series], lr_tag: str | None = None,
    step_loss: Sequence[tuple[float, float]] = (), step_lr: Sequence[tuple[float, float]] = (),
) -> Figure:  # fmt: skip
    """One panel per quantity (loss, accuracy, learning rate when given), train and val overlaid; the
    training loss every few steps (``step_loss``: epoch position, loss) drawn thin under the loss curves; the
    learning rate as logged (``step_lr``: epoch position, rate) on the same axis, where epoch k ends at k."""
    panels = [("loss", "loss"), ("acc", "accuracy")]
    figure = Figure(figsize=(4.2 * (len(panels) + bool(lr_tag)), 3.4))
    axes = figure.subplots(1, len(panels) + bool(lr_tag), squeeze=False)[0]
    if step_loss:
        x, y = zip(*step_loss, strict=True)
        axes[0].plot(x, y, linewidth=0.8, alpha=0.5, color="tab:gray", label="train, every few steps")
    for panel, (metric, label) in zip(axes, panels, strict=False):
        for split in ("train", "val"):
            _plot(panel, epochs, values.get(f"{split}/{metric}", []), split)
        _finish(panel, label)
    if lr_tag and step_lr:
        x, y = zip(*step_lr, strict=True)
        per_epoch = len(x) <= len(epochs)  # logged at each epoch's start only: the peak between them is not seen
        label = "at each epoch's start (x = epochs done)" if per_epoch else "every few steps"
        axes[-1].plot(x, y, marker="o" if per_epoch else None, markersize=3, label=label)
        _finish(axes[-1], "learning rate")
    figure.tight_layout()
    return figure


def _plot(axes: Axes, epochs: Sequence[int], series: Series, label: str) -> None:
    points = [(epoch, value) for epoch, value in zip(epochs, series, strict=False) if value is not None]
    if points:
        x, y = zip(*points, strict=True)
        axes.plot(x, y, marker="o", markersize=3, label=label)


def _finish(axes: Axes, ylabel: str) -> None:
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    axes.xaxis.get_major_locator().set_params(integer=True)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8)
