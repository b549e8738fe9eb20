"""Figures of feature maps projected back to pixel space: deconvnet, paths, backprop reconstructions.

Projections live in input space and are min-max scaled each on its own, next to the input image.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from convlens.explain.deconvnet import (
    DeconvnetParams,
    DeconvnetPathsParams,
    PathProjections,
    Projections,
    ReconstructionParams,
    Reconstructions,
)
from convlens.figures.attribution import gradient_images_figure
from convlens.figures.panels import Caption, Drawn, Shown, hwc

PATH_NAMES = {"full": "both paths", "residual": "residual path only", "shortcut": "shortcut only"}


def draw_deconvnet(result: dict[str, Projections], shown: Shown, params: DeconvnetParams) -> list[Drawn]:
    """Per image and layer, the projections of its top channels."""

    def draw(layer: str, row: int, caption: Caption) -> Figure:
        found = result[layer]
        panels = {f"channel {c}": hwc(found.images[row, j]) for j, c in enumerate(found.channels[row].tolist())}
        return gradient_images_figure(shown.display[row], panels, caption)

    return shown.per_row_and_layer(draw, list(result))


def draw_deconvnet_paths(result: PathProjections, shown: Shown, params: DeconvnetPathsParams) -> list[Drawn]:
    """Per image, the block's top channel through both paths, the residual path and the shortcut."""

    def draw(row: int, caption: Caption) -> Figure:
        panels = {PATH_NAMES[path]: hwc(images[row]) for path, images in result.paths.items()}
        return gradient_images_figure(shown.display[row], panels, caption)

    return shown.per_row(draw, layer=result.block, explains=False)


def draw_backprop_reconstruction(result: Reconstructions, shown: Shown, params: ReconstructionParams) -> list[Drawn]:
    return _reconstructions(result, shown)


def draw_guided_reconstruction(result: Reconstructions, shown: Shown, params: ReconstructionParams) -> list[Drawn]:
    return _reconstructions(result, shown)


def _reconstructions(result: Reconstructions, shown: Shown) -> list[Drawn]:
    """Per image, each layer's most active channel reconstructed, side by side."""

    def draw(row: int, caption: Caption) -> Figure:
        panels = {
            f"{layer} ch {int(result.channels[layer][row])}": hwc(images[row])
            for layer, images in result.images.items()
        }
        return gradient_images_figure(shown.display[row], panels, caption)

    return shown.per_row(draw, layer=list(result.images), explains=False)
