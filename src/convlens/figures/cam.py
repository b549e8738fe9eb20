"""Figures for the CAM family: one column per layer, so the stages can be compared at a glance."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.cam import CamMaps, CamParams, GuidedCamImages
from convlens.figures.attribution import gradient_images_figure, map_figure
from convlens.figures.panels import Caption, Drawn, Shown, hwc


def cam_figure(image: np.ndarray, cams: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """The image, then each layer's (H, W) CAM in [0, 1] over it (Grad-CAM, LayerCAM)."""
    return map_figure(image, {f"{caption.method} {layer}": cam for layer, cam in cams.items()}, caption, raw=False)


def guided_grad_cam_figure(image: np.ndarray, maps: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """The image, then each layer's Guided Grad-CAM (H, W, C) as a gradient image."""
    return gradient_images_figure(image, {f"{caption.method} {layer}": m for layer, m in maps.items()}, caption)


def draw_grad_cam(result: CamMaps, shown: Shown, params: CamParams) -> list[Drawn]:
    return _cams(result, shown, params)


def draw_layer_cam(result: CamMaps, shown: Shown, params: CamParams) -> list[Drawn]:
    return _cams(result, shown, params)


def _cams(result: CamMaps, shown: Shown, params: CamParams) -> list[Drawn]:
    """Per image, every layer's map over the image, labelled with the resolution it was computed at."""
    maps = {_sized(layer, result.sizes): values.numpy() for layer, values in result.maps.items()}

    def draw(row: int, caption: Caption) -> Figure:
        return cam_figure(shown.display[row], {name: m[row] for name, m in maps.items()}, caption)

    return shown.per_row(draw, layer=list(result.maps))


def draw_guided_grad_cam(result: GuidedCamImages, shown: Shown, params: CamParams) -> list[Drawn]:
    """Per image, every layer's Guided Grad-CAM as a gradient image."""
    images = {_sized(layer, result.sizes): hwc(values) for layer, values in result.images.items()}

    def draw(row: int, caption: Caption) -> Figure:
        return guided_grad_cam_figure(shown.display[row], {name: m[row] for name, m in images.items()}, caption)

    return shown.per_row(draw, layer=list(result.images))


def _sized(layer: str, sizes: Mapping[str, tuple[int, int]]) -> str:
    """``layer (HxW)``: a 1x1 map has no location, and the label says so."""
    height, width = sizes[layer]
    return f"{layer} ({height}x{width})"
