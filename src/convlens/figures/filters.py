"""Figures of first-layer filters: as images, and per input channel with a diverging colour map.

Arrays in, ``Figure`` out; the arrays come from ``convlens.explain.filters`` already scaled per
filter. ``SIGNED_CMAP`` is the one the attribution figures use for signed values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from convlens.explain.filters import FiltersParams, FirstConvFilters
from convlens.figures.panels import SIGNED_CMAP, new_figure
from convlens.figures.shown import Drawn, Shown
from convlens.text import slug

#: Panel names by the input's channel count (other counts: "channel 0", "channel 1", ...).
CHANNEL_NAMES = {1: ("gray",), 3: ("R", "G", "B")}


def filter_grid_figure(filters: np.ndarray, title: str) -> Figure:
    """Filters (N, kh, kw, C) in [0, 1] as small images: RGB for C=3, gray for C=1."""
    columns = math.ceil(math.sqrt(len(filters)))
    figure, axes = new_figure(-(-len(filters) // columns), columns, title, panel_inches=0.6, extra_width=0.4)
    for ax in axes.flat:
        ax.set_axis_off()
    for index, (ax, kernel) in enumerate(zip(axes.flat, filters, strict=False)):
        ax.imshow(kernel[..., 0] if kernel.shape[-1] == 1 else kernel, cmap="gray", vmin=0, vmax=1)
        ax.set_title(str(index), fontsize=6, pad=1)
    return figure


def filter_channels_figure(signed: np.ndarray, title: str, channel_names: Sequence[str] | None = None) -> Figure:
    """Filters (N, C, kh, kw) in [-1, 1]: one mosaic per input channel, red positive, blue negative."""
    count, channels = signed.shape[:2]
    names = channel_names or CHANNEL_NAMES.get(channels) or [f"channel {c}" for c in range(channels)]
    columns = math.ceil(math.sqrt(count))
    # a lone mosaic gets the room three would share (FER2013's 32 3x3 filters were 5 px numbers on a 350-px figure)
    figure, axes = new_figure(1, channels, title, panel_inches=4.0 if channels == 1 else 2.6, extra_width=0.9)
    for channel, ax in enumerate(axes[0]):
        drawn = ax.imshow(_tile(signed[:, channel], columns), cmap=SIGNED_CMAP, vmin=-1, vmax=1)
        ax.set_title(names[channel], fontsize=8)
        ax.set_axis_off()
    _number_tiles(axes[0][0], signed.shape, columns, large=channels == 1)
    figure.colorbar(drawn, ax=axes[0].tolist(), shrink=0.8, label="weight / max |weight| of its filter")
    return figure


def draw_filters(result: FirstConvFilters, shown: Shown, params: FiltersParams) -> list[Drawn]:
    """The filters as images (RGB or gray models only) and per input channel, each filter scaled alone."""
    title = f"{shown.title}: {result.layer}, {len(result.signed)} filters"
    name = slug(result.layer)
    drawn = []
    if result.images is not None:
        drawn.append(
            Drawn(f"{name}_images", partial(filter_grid_figure, result.images.numpy(), title), layer=result.layer)
        )
    shown_as = "per input channel" if result.signed.shape[1] > 1 else "signed weights"  # one channel: nothing to split
    draw = partial(filter_channels_figure, result.signed.numpy(), f"{title}, {shown_as}")
    return [*drawn, Drawn(f"{name}_channels", draw, layer=result.layer)]


#: Most filters whose tiles are numbered: past it the numbers would cover the kernels.
NUMBERED_FILTERS = 64


def _number_tiles(ax: Axes, shape: tuple[int, ...], columns: int, large: bool = False) -> None:
    """Each filter's index in its tile's top-left corner (the first channel's mosaic), so that the notes'
    "filters 2, 5" can be found; left out past :data:`NUMBERED_FILTERS` filters."""
    count, _, height, width = shape
    if count > NUMBERED_FILTERS:
        return
    size = 6 if count <= 16 or large else 4
    for index in range(count):
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        ax.text(left - 0.4, top - 0.4, str(index), fontsize=size, ha="left", va="top", color="black",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 0.3})  # fmt: skip


def _tile(kernels: np.ndarray, columns: int) -> np.ndarray:
    """(N, kh, kw) -> one mosaic, ``columns`` kernels wide, with one blank (NaN) pixel between kernels."""
    count, height, width = kernels.shape
    rows = -(-count // columns)
    mosaic = np.full((rows * (height + 1) - 1, columns * (width + 1) - 1), np.nan)
    for index, kernel in enumerate(kernels):
        top, left = (index // columns) * (height + 1), (index % columns) * (width + 1)
        mosaic[top : top + height, left : left + width] = kernel
    return mosaic
