"""Figures of feature maps (one image, one layer) and of the mean activation per channel.

Arrays in, ``Figure`` out. Maps share one colour scale (``MAP_CMAP``, from 0 or the lowest shown
value to the highest) so channels can be compared with each other and with the bar chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from convlens.explain.features import ActivationChartParams, ChannelRanking, FeatureMapsParams, LayerResponses
from convlens.figures.panels import Caption, new_figure, show_image
from convlens.figures.shown import Drawn, Shown

MAP_CMAP = "viridis"
HIGHLIGHT_COLOUR = "tab:orange"
MAX_MAPS = 64


def feature_maps_figure(
    maps: np.ndarray, title: str, channels: Sequence[int] | None = None, image: np.ndarray | None = None,
    ranked: int = 0,
) -> Figure:  # fmt: skip
    """Feature maps (C, H, W) of one image in a grid, ``channels`` in that order (default: the first
    ``MAX_MAPS``), after the input ``image`` (H, W, C) in [0, 1] when given; the first ``ranked`` channels
    are the most active, labelled with their rank, and the title says what follows them."""
    shown = list(channels) if channels is not None else list(range(min(len(maps), MAX_MAPS)))
    if ranked:
        rest = "" if ranked >= len(shown) else ", then the lowest-numbered others"
        title = f"{title}\nthe {ranked} most active channels first (#rank, by mean activation){rest}"
    panels = len(shown) + (image is not None)
    columns = math.ceil(math.sqrt(panels))
    figure, axes = new_figure(-(-panels // columns), columns, title, panel_inches=1.1, extra_width=0.8)
    for ax in axes.flat:
        ax.set_axis_off()
    cells = iter(axes.flat)
    if image is not None:
        show_image(next(cells), image, "input")
    values = maps[shown]
    vmin, vmax = min(0.0, float(values.min())), max(float(values.max()), 1e-12)
    for position, (channel, ax) in enumerate(zip(shown, cells, strict=False)):
        drawn = ax.imshow(maps[channel], cmap=MAP_CMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"ch {channel}" + (f", #{position + 1}" if position < ranked else ""), fontsize=7, pad=1)
    figure.colorbar(drawn, ax=axes.ravel().tolist(), shrink=0.6, label="activation")
    return figure


def channel_activations_figure(mean_activation: np.ndarray, title: str, highlight: Sequence[int] = ()) -> Figure:
    """Bar chart of the mean activation (C,) per channel; ``highlight`` (the top-k) in orange, labelled."""
    count = len(mean_activation)
    figure, axes = new_figure(1, 1, title, panel_inches=3.0, extra_width=min(9.0, 0.04 * count))
    activation_bars(axes[0, 0], mean_activation, highlight)
    return figure


def activation_bars(axes: Axes, mean_activation: np.ndarray, highlight: Sequence[int] = ()) -> None:
    """The bars of :func:`channel_activations_figure` on ``axes``. Highlighting every channel of a layer
    (top 8 of 8) singles none out, so it is drawn plain; labels of neighbouring highlighted channels step up
    so that they do not overlap, and the axes leave room for the labels above the highest bar and at the ends."""
    count = len(mean_activation)
    highlight = [channel for channel in highlight if 0 <= channel < count] if len(set(highlight)) < count else []
    colours = np.where(np.isin(np.arange(count), highlight), HIGHLIGHT_COLOUR, "tab:gray")
    axes.bar(np.arange(count), mean_activation, color=colours, width=1.0)
    axes.set_xlim(-0.5 - 0.03 * count, count - 0.5 + 0.03 * count)
    top = float(np.max(mean_activation, initial=0.0))
    axes.set_ylim(min(0.0, float(np.min(mean_activation, initial=0.0))), top * 1.15 if top > 0 else 1.0)
    axes.set_xlabel("channel", fontsize=8)
    axes.set_ylabel("mean activation", fontsize=8)
    axes.tick_params(labelsize=7)
    previous, step = None, 0
    for channel in sorted(highlight):
        step = step + 1 if previous is not None and channel - previous <= max(1, count // 40) else 0
        previous = channel
        axes.annotate(str(channel), (channel, mean_activation[channel]), xytext=(0, 1 + 6 * (step % 2)),
                      textcoords="offset points", fontsize=6, ha="center", va="bottom")  # fmt: skip


def draw_feature_maps(result: LayerResponses, shown: Shown, params: FeatureMapsParams) -> list[Drawn]:
    """Per image and layer, the ``top_k`` most active channels first, ``shown`` channels in all."""

    def draw(layer: str, row: int, caption: Caption) -> Figure:
        maps = result.layers[layer]
        top = maps.top_channels[row].tolist()
        order = top + [c for c in range(maps.maps.shape[1]) if c not in top]
        channels = order[: max(params.top_k, params.shown)]
        return feature_maps_figure(maps.maps[row].numpy(), caption.title(), channels, shown.display[row], len(top))

    return shown.per_row_and_layer(draw, list(result.layers))


def draw_activation_chart(result: ChannelRanking, shown: Shown, params: ActivationChartParams) -> list[Drawn]:
    """One figure: per image (rows) and layer (columns) the mean activation per channel, the ``top_k`` highlighted."""
    rows, layers = tuple(range(len(shown.captions))), list(result.layers)

    def figure() -> Figure:
        title = f"{shown.title}: the {params.top_k} most active channels highlighted"
        few = [layer for layer in layers if result.layers[layer].mean_activation.shape[1] <= params.top_k]
        if few:
            title += f" ({', '.join(few)}: {params.top_k} or fewer channels, none singled out)"
        drawn, axes = new_figure(len(rows), len(layers), title, panel_inches=3.2)
        for row in rows:
            for column, layer in enumerate(layers):
                maps = result.layers[layer]
                activation_bars(axes[row, column], maps.mean_activation[row].numpy(), maps.top_channels[row].tolist())
                axes[row, column].set_title(f"{layer}: {shown.label(row).splitlines()[0]}", fontsize=8)
        return drawn

    return [Drawn("charts", figure, rows, layers)]
