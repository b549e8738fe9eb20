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
    # one scale for the layer, up to its 99.5th percentile: FER2013's stem peaked at 7.8 on a few pixels where the
    # channels' means were 0.2-0.67, which left most panels black (a grader's review)
    vmin, vmax = min(0.0, float(values.min())), max(float(np.quantile(values, CLIP_QUANTILE)), 1e-12)
    for position, (channel, ax) in enumerate(zip(shown, cells, strict=False)):
        drawn = ax.imshow(maps[channel], cmap=MAP_CMAP, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(f"ch {channel}" + (f", #{position + 1}" if position < ranked else ""), fontsize=7, pad=1)
    clipped = float(values.max()) > vmax
    label = f"activation (the top {1 - CLIP_QUANTILE:.1%} in the top colour)" if clipped else "activation"
    figure.colorbar(drawn, ax=axes.ravel().tolist(), shrink=0.6, label=label, extend="max" if clipped else "neither")
    return figure


#: The quantile of a layer's shown activations its feature maps' colour scale ends at.
CLIP_QUANTILE = 0.995


def channel_activations_figure(mean_activation: np.ndarray, title: str, highlight: Sequence[int] = ()) -> Figure:
    """Bar chart of the mean activation (C,) per channel; ``highlight`` (the top-k) in orange, labelled."""
    count = len(mean_activation)
    figure, axes = new_figure(1, 1, title, panel_inches=3.0, extra_width=min(9.0, 0.04 * count))
    activation_bars(axes[0, 0], mean_activation, highlight)
    return figure


def activation_bars(axes: Axes, mean_activation: np.ndarray, highlight: Sequence[int] = ()) -> None:
    """The bars of :func:`channel_activations_figure` on ``axes``. Highlighting every channel of a layer
    (top 8 of 8) singles none out, so it is drawn plain; highlighted bars are outlined so that one channel of 256
    still shows; labels of highlighted channels closer than a label's width (:func:`_label_levels`) stand on their
    group's highest bar, one line above each other, and the axes leave room for them."""
    count = len(mean_activation)
    highlight = [channel for channel in highlight if 0 <= channel < count] if len(set(highlight)) < count else []
    chosen = np.isin(np.arange(count), highlight)
    colours = np.where(chosen, HIGHLIGHT_COLOUR, "tab:gray")
    axes.bar(np.arange(count), mean_activation, color=colours, width=1.0,
             edgecolor=np.where(chosen, HIGHLIGHT_COLOUR, "none"), linewidth=np.where(chosen, 1.2, 0.0))  # fmt: skip
    axes.set_xlim(-0.5 - 0.03 * count, count - 0.5 + 0.03 * count)
    levels = _label_levels(sorted(highlight), mean_activation, _bar_points(axes, count))
    top = float(np.max(mean_activation, initial=0.0))
    lines = max((level for _, level in levels.values()), default=0)
    bottom = min(0.0, float(np.min(mean_activation, initial=0.0)))
    axes.set_ylim(bottom, top * (1.15 + 0.06 * lines) if top > 0 else 1.0)
    axes.set_xlabel("channel", fontsize=8)
    axes.set_ylabel("mean activation", fontsize=8)
    axes.tick_params(labelsize=7)
    for channel, (base, level) in levels.items():
        axes.annotate(str(channel), (channel, base), xytext=(0, 1 + LABEL_LINE_POINTS * level),
                      textcoords="offset points", fontsize=6, ha="center", va="bottom")  # fmt: skip


#: The height of one label line (6-pt digits), in points.
LABEL_LINE_POINTS = 7


def _bar_points(axes: Axes, count: int) -> float:
    """The width of one channel's bar in points, from the figure's width shared by its columns (the layout is not
    drawn yet)."""
    columns = axes.get_gridspec().ncols if axes.get_gridspec() is not None else 1
    return max(72 * (axes.figure.get_figwidth() / columns - 0.6), 1.0) / (count * 1.06)


def _label_levels(channels: list[int], heights: np.ndarray, bar_points: float) -> dict[int, tuple[float, int]]:
    """Per highlighted channel (sorted) the height its label stands on and its line above it: a channel whose label
    would touch the previous one's side by side (6-pt digits about 3.4 pt wide, bars ``bar_points`` wide) joins
    its group, whose labels stand on the group's highest bar, one line each (FER2013's 184 and 188, on bars of
    1.98 and 1.93, printed over each other when each stood on its own bar)."""
    groups: list[list[int]] = []
    for channel in channels:
        apart = (_label_points(channel) + _label_points(groups[-1][-1])) / 2 / bar_points if groups else 0.0
        if groups and channel - groups[-1][-1] < apart:
            groups[-1].append(channel)
        else:
            groups.append([channel])
    return {channel: (float(max(heights[member] for member in group)), level)
            for group in groups for level, channel in enumerate(group)}  # fmt: skip


def _label_points(channel: int) -> float:
    return 3.4 * len(str(channel)) + 1.5


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
