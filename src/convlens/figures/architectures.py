"""`make compare`'s figure: one test image under every attribution method (columns) for each
architecture (rows), so that differences between networks show down a column and differences between
methods along a row. Maps are drawn as in every other grid (each divided by its own 99.5th percentile,
over a gray copy of the image)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from convlens.figures.grid import grid_figure, image_column, map_column

#: Method titles are long ("Saliency (vanilla gradient) @ layer4"): wrapped to the width of a cell.
COLUMN_CHARACTERS = 16


def architectures_figure(
    display: np.ndarray, maps: Mapping[str, Sequence[np.ndarray]], methods: Sequence[str], title: str
) -> Figure:
    """``display`` (H, W, C) in [0, 1], the one image; ``maps`` architecture label -> its (H, W) map under
    each of ``methods`` (column titles), in that order."""
    architectures = list(maps)
    under = np.repeat(display[None], len(architectures), axis=0)
    columns = [image_column(under)]
    for column, method in enumerate(methods):
        title_lines = textwrap.fill(method, COLUMN_CHARACTERS)
        columns.append(map_column(title_lines, lambda row, c=column: maps[architectures[row]][c], under))
    return grid_figure(title, list(range(len(architectures))), architectures, columns)
