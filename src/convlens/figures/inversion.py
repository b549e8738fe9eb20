"""Figures of feature inversions: the input, its inversion from each layer, and the loss curves."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.inversion import InversionParams, Inversions
from convlens.figures.panels import Caption, Drawn, Shown, hwc, new_figure, show_image, unit_range


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
    """Per image, its inversions from every layer side by side."""

    def draw(row: int, caption: Caption) -> Figure:
        images = {layer: hwc(found.images[row]) for layer, found in result.layers.items()}
        losses = {layer: found.feature_loss[:, row].numpy() for layer, found in result.layers.items()}
        return inversion_figure(shown.display[row], images, losses, caption.title())

    return shown.per_row(draw, layer=list(result.layers), explains=False)
