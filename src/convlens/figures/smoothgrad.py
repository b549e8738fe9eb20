"""SmoothGrad's figure: vanilla and guided SmoothGrad, alone and over the image."""

from __future__ import annotations

from convlens.explain.smoothgrad import SmoothGradMaps, SmoothGradParams
from convlens.figures.grid import Column, image_column, map_column
from convlens.figures.shown import Drawn, Shown


def draw_smoothgrad(result: SmoothGradMaps, shown: Shown, params: SmoothGradParams) -> list[Drawn]:
    """Per group of images a grid: SmoothGrad of vanilla and of guided gradients, alone and over the image."""

    def columns() -> list[Column]:
        return [image_column(shown.display), map_column("SmoothGrad", result.vanilla.__getitem__),
                map_column("over the image", result.vanilla.__getitem__, under=shown.display),
                map_column("guided SmoothGrad", result.guided.__getitem__),
                map_column("over the image", result.guided.__getitem__, under=shown.display)]  # fmt: skip

    return shown.grids(columns)
