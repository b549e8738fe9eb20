"""Figures for gradient attributions, plus the display helpers the CAM and LIME figures share.

Arrays in, ``Figure`` out. Images are (H, W, C) in [0, 1]; maps are (H, W) or (H, W, C). The
only arithmetic is display scaling. Colour maps are fixed across all attribution figures:
``HEAT_CMAP`` for magnitudes (saliency, SmoothGrad, CAMs), ``SIGNED_CMAP`` centred on zero for
signed maps (gradient x input, Integrated Gradients, LIME weights).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

HEAT_CMAP = "inferno"
SIGNED_CMAP = "RdBu_r"
OVERLAY_ALPHA = 0.55
PANEL_INCHES = 1.9
#: Maps are scaled to this percentile of their magnitude, so a few extreme pixels do not wash out the rest.
CLIP_PERCENTILE = 99.5


@dataclass(frozen=True)
class Caption:
    """What a figure shows: method, layer, the class explained (when ``explains``) and the model's
    verdict on the image."""

    method: str
    target: str
    true_label: str
    predicted_label: str
    confidence: float
    layer: str | None = None
    explains: bool = True

    def title(self) -> str:
        layer = f" @ {self.layer}" if self.layer else ""
        what = f" - explains '{self.target}'" if self.explains else ""
        verdict = "correct" if self.true_label == self.predicted_label else "wrong"
        return (
            f"{self.method}{layer}{what}\n"
            f"true: {self.true_label}, predicted: {self.predicted_label} ({self.confidence:.2f}, {verdict})"
        )


def map_figure(
    image: np.ndarray, maps: Mapping[str, np.ndarray], caption: Caption | str, *, signed: bool = False, raw: bool = True
) -> Figure:
    """The image, then each (H, W) map on its own (if ``raw``) and over the image, in one row."""
    views = [(name, values, under) for name, values in maps.items() for under in ([None, image] if raw else [image])]
    figure, grid = _grid(1, 1 + len(views), caption)
    show_image(grid[0][0], image, "input")
    for axes, (name, values, under) in zip(grid[0][1:], views, strict=True):
        title = f"{name} overlay" if raw and under is not None else name
        show_map(axes, values, title, signed=signed, under=under)
    return figure


def gradient_images_figure(image: np.ndarray, panels: Mapping[str, np.ndarray], caption: Caption | str) -> Figure:
    """The image and gradient images side by side, each min-max scaled on its own (guided backprop
    views, Guided Grad-CAM): colour for (H, W, 3), gray for (H, W) or (H, W, 1)."""
    figure, grid = _grid(1, 1 + len(panels), caption)
    show_image(grid[0][0], image, "input")
    for column, (name, values) in enumerate(panels.items(), start=1):
        show_image(grid[0][column], unit_range(values), name)
    return figure


def show_image(axes: Axes, image: np.ndarray, title: str | None = None) -> None:
    """An (H, W), (H, W, 1) or (H, W, 3) image in [0, 1] without ticks; gray for one channel."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    _finish(axes, title)


def show_map(
    axes: Axes, values: np.ndarray, title: str, *, signed: bool = False, under: np.ndarray | None = None
) -> None:
    """A map in the shared colour maps, optionally over a grayscale copy of the image ``under``."""
    limit = clip_limit(values)
    if under is not None:
        axes.imshow(grayscale(under), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    low = -limit if signed else 0.0
    axes.imshow(
        values,
        cmap=SIGNED_CMAP if signed else HEAT_CMAP,
        vmin=low,
        vmax=limit,
        alpha=OVERLAY_ALPHA if under is not None else None,
        interpolation="nearest",
    )
    _finish(axes, title)


def clip_limit(values: np.ndarray) -> float:
    """Display limit: the ``CLIP_PERCENTILE`` of |values| (positive, so flat maps still draw)."""
    limit = float(np.percentile(np.abs(values), CLIP_PERCENTILE))
    return limit if limit > 0 else 1.0


def unit_range(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (the usual display of gradient images); flat input gives zeros."""
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def grayscale(image: np.ndarray) -> np.ndarray:
    """Mean over channels, as a muted backdrop for overlays."""
    return image.mean(axis=2) if image.ndim == 3 else image


def title_of(caption: Caption | str) -> str:
    """A caption's title; a string is a title already (figures that explain no class)."""
    return caption if isinstance(caption, str) else caption.title()


def _grid(rows: int, columns: int, caption: Caption | str) -> tuple[Figure, list[list[Axes]]]:
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows + 0.55), dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.suptitle(title_of(caption), fontsize=8)
    figure.subplots_adjust(
        left=0.02, right=0.98, bottom=0.02, top=1 - 0.55 / (PANEL_INCHES * rows + 0.55) - 0.02, wspace=0.08, hspace=0.18
    )
    return figure, [list(row) for row in axes]


def _finish(axes: Axes, title: str | None) -> None:
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=7)
