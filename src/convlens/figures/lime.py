"""LIME figure: superpixels, their weights, the top ones for and against the class, and a bar chart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from skimage.segmentation import mark_boundaries

from convlens.explain.lime import LimeExplanations, LimeParams
from convlens.figures.panels import OVERLAY_ALPHA, PANEL_INCHES, Caption, Drawn, Shown, grayscale, show_image, show_map

POSITIVE_COLOUR = (0.10, 0.65, 0.20)
NEGATIVE_COLOUR = (0.85, 0.15, 0.15)


def lime_figure(
    image: np.ndarray,
    segments: np.ndarray,
    weights: np.ndarray,
    positive_mask: np.ndarray,
    negative_mask: np.ndarray,
    top_weights: Sequence[tuple[int, float]],
    caption: Caption,
) -> Figure:
    """Panels: superpixel boundaries, weight per superpixel (``weights`` (H, W), signed), the top
    positive and negative superpixels over the image, and the top superpixel weights."""
    figure = Figure(figsize=(PANEL_INCHES * 5.4, PANEL_INCHES + 0.55), dpi=100)
    axes = figure.subplots(1, 5, width_ratios=[1, 1, 1, 1, 1.4])
    figure.suptitle(caption.title(), fontsize=8)
    figure.subplots_adjust(left=0.01, right=0.99, bottom=0.1, top=0.72, wspace=0.15)
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    show_image(axes[0], mark_boundaries(rgb, segments, color=(1, 1, 0)), f"{segments.max() + 1} superpixels")
    show_map(axes[1], weights, "weights", signed=True, under=image)
    _show_mask(axes[2], image, positive_mask, POSITIVE_COLOUR, "for the class")
    _show_mask(axes[3], image, negative_mask, NEGATIVE_COLOUR, "against the class")
    _weight_bars(axes[4], top_weights)
    return figure


def _show_mask(axes: Axes, image: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float], title: str) -> None:
    """The image in gray with the masked superpixels tinted ``colour``."""
    show_image(axes, grayscale(image), title)
    tint = np.zeros((*mask.shape, 4))
    tint[mask] = (*colour, OVERLAY_ALPHA)
    axes.imshow(tint, interpolation="nearest")


def _weight_bars(axes: Axes, top_weights: Sequence[tuple[int, float]]) -> None:
    """Horizontal bars of the top superpixel weights, largest magnitude on top."""
    labels = [f"#{segment}" for segment, _ in top_weights]
    values = [weight for _, weight in top_weights]
    colours = [POSITIVE_COLOUR if value > 0 else NEGATIVE_COLOUR for value in values]
    positions = np.arange(len(values))[::-1]
    axes.barh(positions, values, color=colours)
    axes.set_yticks(positions, labels, fontsize=6)
    axes.axvline(0, color="black", linewidth=0.6)
    axes.tick_params(axis="x", labelsize=6)
    axes.set_title("top superpixel weights", fontsize=7)


def draw_lime(result: LimeExplanations, shown: Shown, params: LimeParams) -> list[Drawn]:
    """Per image: its superpixels, their weights and the top ones for and against the class."""

    def draw(row: int, caption: Caption) -> Figure:
        e = result.explanations[row]
        return lime_figure(
            shown.display[row], e.segments, e.weight_map(), e.positive_mask, e.negative_mask, e.top_weights, caption
        )

    return shown.per_row(draw)
