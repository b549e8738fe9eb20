"""The randomization cascade as Adebayo et al. (2018) draw it: one row per method (and layer), the
trained model's map of one image, then the map after each further stage is re-initialised from the
head down; below, the mean Spearman and SSIM of the maps to the trained ones at every step.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec

from convlens import registry
from convlens.figures.grid import MAP_NOTE
from convlens.figures.panels import HEAT_CMAP, clip_limit, finish, mark_if_flat, show_image

PANEL = 1.05
CURVE_HEIGHT = 3.6
#: Inches of the manual layout (a constrained layout of ~100 panels took seconds of the stage): room left
#: of the trained maps for the row labels (wrapped at ``LABEL_CHARACTERS``), above the maps for the
#: title and column titles, under them for the colour bar, round the curves for their ticks and title,
#: right of them for the legend, and the figure's margin.
LABEL_INCHES = 1.5
LABEL_CHARACTERS = 24
TOP_INCHES = 0.55
BAR_INCHES = 0.9
CURVE_MARGINS = {"left": 0.7, "bottom": 0.45, "top": 0.6}
LEGEND_INCHES = 2.4
MARGIN = 0.1


def draw_cascade(cascade: Any, evaluation: Mapping[str, Any]) -> Figure:
    """The randomization family's figure: ``cascade`` (``evaluate.families.CascadeMaps``) holds the maps
    of its first image, ``evaluation`` (``evaluation.json``'s content) the similarity curves."""
    rows, curves, methods, stages = {}, {}, {}, evaluation["settings"]["randomization"]["stages"]
    for name, layers in cascade.maps.items():
        for layer, maps in layers.items():
            label = f"{registry.title(name)} {layer}".strip()
            rows[label] = maps
            curves[label] = evaluation["methods"][name]["layers"][layer]["randomization"]
            methods[label] = name
    threshold = evaluation["settings"]["randomization"].get("similar_above")
    return cascade_figure(cascade.image, rows, stages, curves, cascade.title, cascade.images, threshold, methods)


def cascade_figure(
    image: np.ndarray,
    rows: Mapping[str, Sequence[np.ndarray]],
    stages: Sequence[str],
    curves: Mapping[str, Mapping[str, Sequence[float | None]]],
    title: str = "",
    images: int | None = None,
    threshold: float | None = None,
    methods: Mapping[str, str] | None = None,
) -> Figure:
    """``rows``: per label (e.g. ``Grad-CAM layer4``) the trained map then one (H, W) map per stage in
    ``stages``, all of the ``image`` that ``title`` names; ``curves``: per label the ``spearman`` and
    ``ssim`` means per stage over ``images`` images (None where a map is flat and has nothing to compare);
    ``threshold``: the Spearman above which a map is not shown to depend on the weights, drawn as a line;
    ``methods``: per label the method it maps (its curves share a colour; by default each label its own)."""
    columns = ["input", "trained", *(f"+ {stage}" for stage in stages)]
    width = max(PANEL * len(columns) + LABEL_INCHES + 2 * MARGIN, 7.5)
    height = TOP_INCHES + PANEL * len(rows) + BAR_INCHES + CURVE_HEIGHT
    figure = Figure(figsize=(width, height), dpi=100)
    figure.suptitle("Cascading model-parameter randomization (head first)", fontsize=9, y=1 - 0.08 / height, va="top")
    maps_top = 1 - TOP_INCHES / height
    maps = figure.add_gridspec(
        len(rows), len(columns) + 1, width_ratios=[1, LABEL_INCHES / PANEL, *[1] * (len(columns) - 1)],
        left=MARGIN / width, right=1 - MARGIN / width, top=maps_top,
        bottom=maps_top - PANEL * len(rows) / height, wspace=0.08, hspace=0.1,
    )  # fmt: skip
    _map_grid(figure, maps, image, rows, [textwrap.fill(f"input: {title}", 18) if title else "input", *columns[1:]])
    plots = figure.add_gridspec(
        1, 2, left=CURVE_MARGINS["left"] / width, right=1 - LEGEND_INCHES / width,
        bottom=CURVE_MARGINS["bottom"] / height, top=(CURVE_HEIGHT - CURVE_MARGINS["top"]) / height, wspace=0.3,
    )  # fmt: skip
    _similarity_curves(figure, plots, curves, stages, images, threshold, methods or {})
    return figure


def _map_grid(
    figure: Figure, grid: GridSpec, image: np.ndarray, rows: Mapping[str, Sequence[np.ndarray]], columns: list[str]
) -> None:
    """The maps in ``grid``'s columns but its second, which holds the row labels."""
    axes = [[figure.add_subplot(grid[row, column]) for column in (0, *range(2, len(columns) + 1))]
            for row in range(len(rows))]  # fmt: skip
    for row, (label, maps) in enumerate(rows.items()):
        if row == 0:
            show_image(axes[row][0], image)
        else:
            axes[row][0].axis("off")
        for column, values in enumerate(maps, start=1):
            axes[row][column].imshow(values, cmap=HEAT_CMAP, vmin=0, vmax=clip_limit(values), interpolation="nearest")
            mark_if_flat(axes[row][column], values)
            finish(axes[row][column], columns[column] if row == 0 else None)
        axes[row][1].set_ylabel(textwrap.fill(label, LABEL_CHARACTERS), fontsize=7, rotation=0, ha="right",
                                va="center")  # fmt: skip
    axes[0][0].set_title(columns[0], fontsize=7)
    _colorbar(figure, axes[-1][1], axes[-1][-1])


def _colorbar(figure: Figure, first: Axes, last: Axes) -> None:
    """One bar under the maps from ``first`` to ``last`` (the bottom row's trained map and last step),
    at 40% of their span: each map is drawn from 0 to its own 99.5th percentile (see ``clip_limit``)."""
    left, right = first.get_position().x0, last.get_position().x1
    span, below = right - left, first.get_position().y0
    bar = figure.add_axes((left + 0.3 * span, below - 0.3 / figure.get_figheight(), 0.4 * span,
                           0.08 / figure.get_figheight()))  # fmt: skip
    colorbar = figure.colorbar(ScalarMappable(Normalize(0, 1), HEAT_CMAP), cax=bar, orientation="horizontal")
    colorbar.set_ticks([0, 1])
    colorbar.ax.tick_params(labelsize=7)
    colorbar.set_label(MAP_NOTE, fontsize=7)


#: Line style and marker of a method's first, second, ... layer.
LAYER_STYLES = (("-", "o"), ("--", "s"), (":", "^"), ("-.", "D"))


def line_styles(labels: Sequence[str], methods: Mapping[str, str]) -> dict[str, tuple[Any, str, str]]:
    """Per label its (colour, line style, marker): one of ten distinct colours per method (not tab20's
    light and dark pairs of one hue, which read as one method) and a style per layer of the method, so
    that no two lines look alike while there are at most ten methods of at most four layers; past ten
    methods the colours repeat with the next style."""
    colours = colormaps["tab10"].colors
    order = list(dict.fromkeys(methods.get(label, label) for label in labels))
    layers: dict[str, int] = {}
    styles = {}
    for label in labels:
        method = methods.get(label, label)
        index = order.index(method)
        style = LAYER_STYLES[(layers.get(method, 0) + index // len(colours)) % len(LAYER_STYLES)]
        layers[method] = layers.get(method, 0) + 1
        styles[label] = (colours[index % len(colours)], *style)
    return styles


def _similarity_curves(
    figure: Figure,
    grid: GridSpec,
    curves: Mapping[str, Mapping[str, Sequence[float | None]]],
    stages: Sequence[str],
    images: int | None,
    threshold: float | None,
    methods: Mapping[str, str],
) -> None:
    """One line per map (:func:`line_styles`); the verdict's threshold a wide grey band on the Spearman panel, so
    that a reader sees which maps stay above it."""
    axes = [figure.add_subplot(grid[0, column]) for column in range(2)]
    steps = np.arange(len(stages))
    styles = line_styles(list(curves), methods)
    over = f" (mean of {images} images)" if images else ""
    for axis, metric, title in zip(axes, ("spearman", "ssim"), ("Spearman rank correlation", "SSIM"), strict=True):
        lowest = -0.2
        for label, values in curves.items():
            points = [np.nan if v is None else v for v in values[metric]]
            colour, style, marker = styles[label]
            axis.plot(steps, points, style, marker=marker, markersize=4, linewidth=1.4, label=label, color=colour)
            lowest = min([lowest, *(v - 0.05 for v in values[metric] if v is not None)])
        axis.set_xticks(steps, [f"+{stage}" for stage in stages], fontsize=7)
        axis.set_ylim(lowest, 1.05)
        axis.axhline(0, color="0.6", linewidth=0.8)
        limit = ""
        if metric == "spearman" and threshold is not None:
            # a wide pale band, not a dotted line: a grader took it for one of the maps' dotted curves
            axis.axhline(threshold, color="0.55", linewidth=4, alpha=0.35, zorder=0)
            limit = f"; grey band: {threshold:g} (sensitive: significantly below it, after the head and at the end)"
        axis.set_title(textwrap.fill(f"{title} to the trained model's map{over}{limit}", 44), fontsize=8)
        axis.set_ylabel(title.split(" rank")[0], fontsize=8)
        axis.grid(axis="y", color="0.9", linewidth=0.6)
        axis.tick_params(labelsize=7)
    axes[1].legend(fontsize=7.5, loc="center left", bbox_to_anchor=(1.0, 0.5))
