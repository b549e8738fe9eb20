"""The parts figure: the regions the report's part shares are measured in, drawn on sample images, so that
a reader can check that "mouth 23%" lands on mouths (FER2013's parts are fixed boxes, not landmarks)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from convlens.figures.panels import grayscale, new_figure

#: Each part's colour, in part order (a qualitative palette: parts are categories, not amounts).
PART_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
#: How much of each part's colour covers the image under it.
PART_ALPHA = 0.45


def parts_figure(display: np.ndarray, parts: np.ndarray, names: Sequence[str], labels: Sequence[str],
                 title: str) -> Figure:  # fmt: skip
    """``display`` (N, H, W, C) images in [0, 1] in gray, each under its ``parts`` (N, H, W) map of part indices
    into ``names``, one colour per part, a legend of the names; ``labels`` title the panels."""
    if len(names) > len(PART_COLOURS):
        raise ValueError(f"{len(names)} parts; the figure has colours for {len(PART_COLOURS)}")
    figure, axes = new_figure(1, len(display), title, extra_width=1.4)
    colours = ListedColormap(PART_COLOURS[: len(names)])
    for ax, image, part, label in zip(axes[0], display, parts, labels, strict=True):
        ax.imshow(grayscale(image), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.imshow(part, cmap=colours, vmin=-0.5, vmax=len(names) - 0.5, alpha=PART_ALPHA, interpolation="nearest")
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()
    handles = [Patch(color=PART_COLOURS[index], alpha=PART_ALPHA, label=name) for index, name in enumerate(names)]
    figure.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False)
    return figure
