"""Figures for gradient attributions: maps over the image, and gradient images side by side."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.attribution import (
    AttributionMaps,
    GradientXInputParams,
    GuidedBackpropMaps,
    GuidedBackpropParams,
    IntegratedGradientsParams,
    SaliencyParams,
    SmoothGradMaps,
    SmoothGradParams,
)
from convlens.figures.panels import (
    Caption,
    Drawn,
    Shown,
    hwc,
    mark_if_flat,
    row_figure,
    show_image,
    show_map,
    unit_range,
)


def map_figure(
    image: np.ndarray, maps: Mapping[str, np.ndarray], caption: Caption | str, *, signed: bool = False, raw: bool = True
) -> Figure:
    """The image, then each (H, W) map on its own (if ``raw``) and over the image, in one row."""
    views = [(name, values, under) for name, values in maps.items() for under in ([None, image] if raw else [image])]
    figure, grid = row_figure(1, 1 + len(views), caption)
    show_image(grid[0][0], image, "input")
    for axes, (name, values, under) in zip(grid[0][1:], views, strict=True):
        title = f"{name} overlay" if raw and under is not None else name
        show_map(axes, values, title, signed=signed, under=under)
    return figure


def gradient_images_figure(image: np.ndarray, panels: Mapping[str, np.ndarray], caption: Caption | str) -> Figure:
    """The image and gradient images side by side, each min-max scaled on its own (guided backprop
    views, Guided Grad-CAM, projections): colour for (H, W, 3), gray for (H, W) or (H, W, 1)."""
    figure, grid = row_figure(1, 1 + len(panels), caption)
    show_image(grid[0][0], image, "input")
    for column, (name, values) in enumerate(panels.items(), start=1):
        show_image(grid[0][column], unit_range(values), name)
        mark_if_flat(grid[0][column], values)
    return figure


def draw_saliency(result: AttributionMaps, shown: Shown, params: SaliencyParams) -> list[Drawn]:
    return _maps(result, shown, "saliency")


def draw_gradient_x_input(result: AttributionMaps, shown: Shown, params: GradientXInputParams) -> list[Drawn]:
    return _maps(result, shown, "gradient x input")


def draw_integrated_gradients(result: AttributionMaps, shown: Shown, params: IntegratedGradientsParams) -> list[Drawn]:
    return _maps(result, shown, "integrated gradients")


def _maps(result: AttributionMaps, shown: Shown, name: str) -> list[Drawn]:
    """Per image: the image, the map alone and over the image (signed maps centred on zero)."""

    def draw(row: int, caption: Caption) -> Figure:
        return map_figure(shown.display[row], {name: result.maps[row]}, caption, signed=result.signed)

    return shown.per_row(draw)


def draw_guided_backprop(result: GuidedBackpropMaps, shown: Shown, params: GuidedBackpropParams) -> list[Drawn]:
    """Per image: colour gradients, grayscale saliency, positive and negative saliency."""
    gradients, positive, negative = hwc(result.gradients), hwc(result.positive), hwc(result.negative)
    grayscale = result.grayscale.numpy()

    def draw(row: int, caption: Caption) -> Figure:
        panels = {
            "colour gradients": gradients[row],
            "grayscale saliency": grayscale[row],
            "positive saliency": positive[row],
            "negative saliency": negative[row],
        }
        return gradient_images_figure(shown.display[row], panels, caption)

    return shown.per_row(draw)


def draw_smoothgrad(result: SmoothGradMaps, shown: Shown, params: SmoothGradParams) -> list[Drawn]:
    """Per image: SmoothGrad of vanilla and of guided gradients, alone and over the image."""

    def draw(row: int, caption: Caption) -> Figure:
        maps = {"SmoothGrad": result.vanilla[row], "guided SmoothGrad": result.guided[row]}
        return map_figure(shown.display[row], maps, caption)

    return shown.per_row(draw)
