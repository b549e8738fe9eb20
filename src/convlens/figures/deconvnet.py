"""Figures of feature maps projected back to pixel space: deconvnet, paths, backprop reconstructions.

Projections live in input space and are signed: each is scaled on its own, symmetric about zero up to the 99.5th
percentile of its magnitude (``panels.symmetric_unit_range``), so that mid-grey is zero in every panel, next to the
input image;
each cell names the channel it projects.
"""

from __future__ import annotations

from collections.abc import Callable

from convlens.explain.deconvnet import (
    DeconvnetParams,
    DeconvnetPathsParams,
    PathProjections,
    Projections,
    ReconstructionParams,
    Reconstructions,
    TopChannelProjections,
)
from convlens.figures.grid import Column, image_column, signed_gradient_column
from convlens.figures.panels import hwc
from convlens.figures.shown import Drawn, Shown

PATH_NAMES = {"full": "both paths", "residual": "residual path only", "shortcut": "shortcut only"}


def draw_deconvnet(result: TopChannelProjections, shown: Shown, params: DeconvnetParams) -> list[Drawn]:
    """Per layer a grid: each image and the projections of its most active channels, strongest first."""
    layers = result.layers.items()
    return [drawn for layer, found in layers for drawn in shown.grids(_top_channels(found, shown), layer)]


def _top_channels(found: Projections, shown: Shown) -> Callable[[], list[Column]]:
    images, channels = hwc(found.images), found.channels.tolist()

    def columns() -> list[Column]:
        return [image_column(shown.display)] + [
            signed_gradient_column(
                f"top {rank + 1}", lambda row, j=rank: images[row, j], lambda row, j=rank: f"ch {channels[row][j]}"
            )
            for rank in range(len(channels[0]))
        ]

    return columns


def draw_deconvnet_paths(result: PathProjections, shown: Shown, params: DeconvnetPathsParams) -> list[Drawn]:
    """One grid: the block's top channel through both paths, the residual path only and the shortcut only."""
    paths = {path: hwc(images) for path, images in result.paths.items()}

    def columns() -> list[Column]:
        return [image_column(shown.display)] + [
            signed_gradient_column(PATH_NAMES[path], images.__getitem__) for path, images in paths.items()
        ]

    return shown.grids(columns, result.block)


def draw_backprop_reconstruction(result: Reconstructions, shown: Shown, params: ReconstructionParams) -> list[Drawn]:
    return _reconstructions(result, shown)


def draw_guided_reconstruction(result: Reconstructions, shown: Shown, params: ReconstructionParams) -> list[Drawn]:
    return _reconstructions(result, shown)


def _reconstructions(result: Reconstructions, shown: Shown) -> list[Drawn]:
    """One grid: each image and, per layer, its most active channel reconstructed."""
    images = {layer: hwc(found) for layer, found in result.images.items()}

    def columns() -> list[Column]:
        return [image_column(shown.display)] + [
            signed_gradient_column(
                layer, found.__getitem__, lambda row, layer=layer: f"ch {int(result.channels[layer][row])}"
            )
            for layer, found in images.items()
        ]

    return shown.grids(columns, list(result.images))
