"""Figures for the CAM family: per group of images a grid with one column per layer, so the stages
can be compared at a glance."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.cam import CamMaps, CamParams, GuidedCamImages
from convlens.figures.attribution import gradient_images_figure, map_figure
from convlens.figures.grid import Column, image_column, map_column, signed_gradient_column
from convlens.figures.panels import Caption, hwc
from convlens.figures.shown import Drawn, Shown


def cam_figure(image: np.ndarray, cams: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """One image, then each layer's (H, W) CAM in [0, 1] over it (Grad-CAM, LayerCAM)."""
    return map_figure(image, {f"{caption.method} {layer}": cam for layer, cam in cams.items()}, caption, raw=False)


def guided_grad_cam_figure(image: np.ndarray, maps: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """One image, then each layer's Guided Grad-CAM (H, W, C) as a gradient image."""
    return gradient_images_figure(image, {f"{caption.method} {layer}": m for layer, m in maps.items()}, caption)


def draw_grad_cam(result: CamMaps, shown: Shown, params: CamParams) -> list[Drawn]:
    return _cams(result, shown)


def draw_layer_cam(result: CamMaps, shown: Shown, params: CamParams) -> list[Drawn]:
    return _cams(result, shown)


def _cams(result: CamMaps, shown: Shown) -> list[Drawn]:
    """Per group of images a grid: each layer's map over the image, titled with the size it was computed at."""
    maps = {layer: values.numpy() for layer, values in result.maps.items()}

    def columns() -> list[Column]:
        return [image_column(shown.display)] + [
            map_column(_sized(layer, result.sizes), values.__getitem__, under=shown.display)
            for layer, values in maps.items()
        ]

    return shown.grids(columns, layer=list(result.maps))


def draw_guided_grad_cam(result: GuidedCamImages, shown: Shown, params: CamParams) -> list[Drawn]:
    """Per group of images a grid: each layer's Guided Grad-CAM as a gradient image."""
    images = {layer: hwc(values) for layer, values in result.images.items()}

    def columns() -> list[Column]:
        return [image_column(shown.display)] + [
            signed_gradient_column(_sized(layer, result.sizes), values.__getitem__) for layer, values in images.items()
        ]

    return shown.grids(columns, layer=list(result.images))


def _sized(layer: str, sizes: Mapping[str, tuple[int, int]]) -> str:
    """``layer`` over ``(HxW)``, the resolution the map was computed at, on a line of its own so that every
    column's title wraps alike."""
    height, width = sizes[layer]
    return f"{layer}\n({height}x{width})"
