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
)
from convlens.figures.grid import Column, gradient_column, image_column, map_column, signed_gradient_column
from convlens.figures.panels import Caption, hwc, mark_if_flat, row_figure, show_image, show_map, unit_range
from convlens.figures.shown import Drawn, Shown


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
    """Per group of images a grid: the image, the map, the map over the image (signed maps on -1..1)."""

    def columns() -> list[Column]:
        maps = result.maps.__getitem__
        return [image_column(shown.display), map_column(name, maps, signed=result.signed),
                map_column("over the image", maps, under=shown.display, signed=result.signed)]  # fmt: skip

    return shown.grids(columns)


def draw_guided_backprop(result: GuidedBackpropMaps, shown: Shown, params: GuidedBackpropParams) -> list[Drawn]:
    """Per group of images a grid: the signed gradients (in colour for RGB models) about zero
    (:func:`signed_gradient_column`), the grayscale saliency, and the positive and negative parts, each scaled as
    gradient images (:func:`gradient_column`)."""
    gradients, positive, negative = hwc(result.gradients), hwc(result.positive), hwc(result.negative)
    grayscale = result.grayscale.numpy()
    signed = "colour gradients" if gradients.shape[-1] == 3 else "signed gradients"

    def columns() -> list[Column]:
        return [image_column(shown.display), signed_gradient_column(signed, gradients.__getitem__),
                gradient_column("grayscale saliency", grayscale.__getitem__),
                gradient_column("positive saliency", positive.__getitem__),
                gradient_column("negative saliency", negative.__getitem__)]  # fmt: skip

    return shown.grids(columns)
