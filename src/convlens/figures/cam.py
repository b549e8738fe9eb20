"""Figures for the CAM family: one column per layer, so the stages can be compared at a glance."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.figure import Figure

from convlens.figures.attribution import Caption, gradient_images_figure, map_figure


def cam_figure(image: np.ndarray, cams: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """The image, then each layer's (H, W) CAM in [0, 1] over it (Grad-CAM, LayerCAM)."""
    return map_figure(image, {f"{caption.method} {layer}": cam for layer, cam in cams.items()}, caption, raw=False)


def guided_grad_cam_figure(image: np.ndarray, maps: Mapping[str, np.ndarray], caption: Caption) -> Figure:
    """The image, then each layer's Guided Grad-CAM (H, W, C) as a gradient image."""
    return gradient_images_figure(image, {f"{caption.method} {layer}": m for layer, m in maps.items()}, caption)
