"""Confusion-matrix figure (rows: true class, columns: predicted class)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def confusion_matrix_figure(
    confusion: np.ndarray, class_names: Sequence[str], title: str = "Confusion matrix"
) -> Figure:
    """Counts coloured by row-normalized rate, so rare classes stay readable."""
    rates = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    size = 2.0 + 0.55 * len(class_names)
    figure = Figure(figsize=(size + 1.2, size))
    axes = figure.add_subplot()
    image = axes.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of true class")
    ticks = np.arange(len(class_names))
    axes.set_xticks(ticks, class_names, rotation=45, ha="right")
    axes.set_yticks(ticks, class_names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title)
    for (row, column), count in np.ndenumerate(confusion):
        colour = "white" if rates[row, column] > 0.5 else "black"
        axes.text(column, row, str(int(count)), ha="center", va="center", fontsize=7, color=colour)
    figure.tight_layout()
    return figure
