"""Figures of images grown by gradient ascent: channel maximization and class models, in grids.

Synthesized images live in the model's normalized input space and are min-max scaled each on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.activation_max import ActivationMaxParams, ClassModelParams, Maximization, MaximizedChannels
from convlens.figures.panels import hwc, new_figure, show_image, unit_range
from convlens.figures.shown import Drawn, Shown
from convlens.text import slug


def image_grid_figure(images: np.ndarray, labels: Sequence[str], title: str, columns: int = 4) -> Figure:
    """Synthesized images (N, H, W, C), e.g. activation maximization or class models, in a grid."""
    columns = min(columns, len(images))
    figure, axes = new_figure(-(-len(images) // columns), columns, title)
    for ax in axes.flat[len(images) :]:
        ax.set_axis_off()
    for ax, image, label in zip(axes.flat, images, labels, strict=False):
        show_image(ax, unit_range(image), label)
    return figure


def draw_activation_maximization(result: MaximizedChannels, shown: Shown, params: ActivationMaxParams) -> list[Drawn]:
    """One grid: each channel's image, labelled with the mean activation it reached."""
    labels = [
        f"ch {c}: {a:.3g}" for c, a in zip(result.targets.tolist(), result.final_activation.tolist(), strict=True)
    ]
    title = f"{shown.title} @ {result.layer} (channel: mean activation reached)"
    draw = partial(image_grid_figure, hwc(result.images), labels, title)
    return [Drawn(slug(result.layer), draw, layer=result.layer)]


def draw_class_model(result: Maximization, shown: Shown, params: ClassModelParams) -> list[Drawn]:
    """One grid: each class's image, labelled with the logit it reached."""
    reached = zip(result.targets.tolist(), result.final_activation.tolist(), strict=True)
    labels = [f"{shown.class_names[c]}: {a:.3g}" for c, a in reached]
    title = f"{shown.title} (class: logit reached)"
    return [Drawn("classes", partial(image_grid_figure, hwc(result.images), labels, title, 5))]
