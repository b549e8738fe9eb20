"""The comparison figure: the same test images (columns) under every attribution method (rows).

Every map is a method's localisation map (where it puts the evidence for the explained class),
divided by its own 99.5th percentile, over a gray copy of the image; one colour bar holds for all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from convlens.figures.grid import MAP_NOTE, Column, draw_map, grid_figure
from convlens.figures.panels import show_image


def comparison_figure(
    display: np.ndarray, maps: Mapping[str, np.ndarray], image_labels: Sequence[str], title: str
) -> Figure:
    """``display`` (N, H, W, C) images in [0, 1]; ``maps`` method label -> (N, H, W) non-negative maps."""
    methods = list(maps)

    def column(index: int) -> Column:
        def draw(axes: Axes, row: int) -> None:
            if row == 0:
                show_image(axes, display[index])
            else:
                draw_map(axes, maps[methods[row - 1]][index], signed=False, under=display[index])

        last = index == len(display) - 1
        return Column(image_labels[index], draw, colorbar=MAP_NOTE if last else None)

    rows = list(range(len(methods) + 1))
    return grid_figure(title, rows, ["input", *methods], [column(index) for index in range(len(display))])
