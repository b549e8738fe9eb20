"""Figures of images synthesized in pixel space: feature inversions and activation maximization.

Arrays in, ``Figure`` out, like the other figure modules (``save_png`` writes one). Images are
(H, W, C); synthesized ones live in the model's normalized input space and are min-max scaled
each on its own (``unit_range``), the input image is a display image in [0, 1]. Projections of
feature maps (deconvnet, gradient, guided backprop, residual vs shortcut) need no figure of their
own: ``convlens.figures.attribution.gradient_images_figure`` draws input + scaled panels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from convlens.figures.attribution import show_image, unit_range

PANEL_INCHES = 1.9


def new_figure(
    rows: int, columns: int, title: str, panel_inches: float = PANEL_INCHES, extra_width: float = 0.0
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of square panels (plus ``extra_width`` for a colour bar) under
    ``title``; the axes as a 2-D array."""
    size = (panel_inches * columns + extra_width, panel_inches * rows + 0.6)
    figure = Figure(figsize=size, dpi=100, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.suptitle(title, fontsize=9)
    return figure, axes


def save_png(figure: Figure, path: str | Path) -> Path:
    """Write ``figure`` as a PNG, creating the parent folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    return path


def image_grid_figure(images: np.ndarray, labels: Sequence[str], title: str, columns: int = 4) -> Figure:
    """Synthesized images (N, H, W, C), e.g. activation maximization or class models, in a grid."""
    columns = min(columns, len(images))
    figure, axes = new_figure(-(-len(images) // columns), columns, title)
    for ax in axes.flat[len(images) :]:
        ax.set_axis_off()
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        show_image(ax, unit_range(image), label)
    return figure


def inversion_figure(
    image: np.ndarray, inversions: Mapping[str, np.ndarray], feature_losses: Mapping[str, np.ndarray], title: str
) -> Figure:
    """The input (H, W, C) in [0, 1], its inversion (H, W, C) from each layer, and the feature-loss
    curves (steps + 1,) on a log scale."""
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
