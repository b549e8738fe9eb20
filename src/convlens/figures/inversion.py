"""Figures of feature inversions: the input, its inversion from each layer, and the loss curves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from convlens.explain.inversion import InversionParams, Inversions
from convlens.figures.grid import Column, chart_ticks, image_column
from convlens.figures.panels import hwc, new_figure, show_image, unit_range
from convlens.figures.shown import Drawn, Shown


def inversion_figure(
    image: np.ndarray, inversions: Mapping[str, np.ndarray], feature_losses: Mapping[str, np.ndarray], title: str
) -> Figure:
    """The input (H, W, C) in [0, 1], its inversion (H, W, C) from each layer (min-max scaled: it
    lives in normalized input space), and the feature-loss curves (steps + 1,) on a log scale."""
    figure, axes = new_figure(1, len(inversions) + 2, title)
    show_image(axes[0, 0], image, "input")
    for ax, (layer, inverted) in zip(axes[0, 1:], inversions.items(), strict=False):
        show_image(ax, unit_range(inverted), f"from {layer}")
    curve = axes[0, -1]
    for layer, losses in feature_losses.items():
        curve.semilogy(losses, label=layer)
    curve.set_xlabel("step", fontsize=7)
    curve.set_ylabel("feature loss (relative)", fontsize=7)
    curve.tick_params(labelsize=6)
    curve.legend(fontsize=6)
    return figure


def draw_feature_inversion(result: Inversions, shown: Shown, params: InversionParams) -> list[Drawn]:
    """One grid: each image, its inversion from each layer, and the feature-loss curves."""
    layers = result.layers

    def inverted(layer: str) -> Column:
        images = hwc(layers[layer].images)
        return Column(f"from {layer}", lambda axes, row: show_image(axes, unit_range(images[row])))

    def columns() -> list[Column]:
        loss = Column("feature loss / ‖target‖²", loss_curves, chart=True)
        return [image_column(shown.display), *map(inverted, layers), loss]

    def loss_curves(axes: Axes, row: int) -> None:
        for layer, found in layers.items():
            axes.semilogy(found.feature_loss[:, row].numpy(), label=layer)
        axes.yaxis.set_minor_formatter(NullFormatter())  # "6x10^-1" labels would not fit the grid's margin
        chart_ticks(axes, "step")
        axes.legend(fontsize=6, frameon=False)
        axes.set_box_aspect(1)

    return shown.grids(columns, list(layers))
