"""The randomization cascade as Adebayo et al. (2018) draw it: one row per method (and layer), the
trained model's map of one image, then the map after each further stage is re-initialised from the
head down; below, one small panel per method with the mean Spearman and SSIM of its maps to the trained ones at
every step, a line per layer (FER2013's 14 curves in one panel, three Grad-CAMs in one brown, could not be read).
"""

from __future__ import annotations

import math
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
#: Inches of the manual layout (a constrained layout of ~100 panels took seconds of the stage): room left
#: of the trained maps for the row labels (wrapped at ``LABEL_CHARACTERS``), above the maps for the
#: title and column titles, under them for the colour bar, per row of curve panels, round the curves for
#: their ticks and titles, and the figure's margin.
LABEL_INCHES = 1.5
LABEL_CHARACTERS = 24
TOP_INCHES = 0.55
BAR_INCHES = 0.9
CURVE_ROW_INCHES = 2.0
CURVE_MARGINS = {"left": 0.55, "right": 0.15, "bottom": 0.35, "top": 0.75}
CURVES_PER_ROW = 4
MARGIN = 0.1


def draw_cascade(cascade: Any, evaluation: Mapping[str, Any]) -> Figure:
    """The randomization family's figure: ``cascade`` (``evaluate.families.CascadeMaps``, settled on one image)
    holds that image's maps, ``evaluation`` (``evaluation.json``'s content) the similarity curves."""
    rows, curves, methods, stages = {}, {}, {}, evaluation["settings"]["randomization"]["stages"]
    for name, layers in cascade.maps.items():
        for layer, maps in layers.items():
            label = f"{registry.title(name)} {layer}".strip()
            rows[label] = [step[0] for step in maps]
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
    panels = _panels(curves, methods or {})
    curve_rows = math.ceil(len(panels) / CURVES_PER_ROW)
    curve_height = curve_rows * CURVE_ROW_INCHES + CURVE_MARGINS["top"]
    width = max(PANEL * len(columns) + LABEL_INCHES + 2 * MARGIN, 7.5)
    height = TOP_INCHES + PANEL * len(rows) + BAR_INCHES + curve_height
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
        curve_rows, CURVES_PER_ROW, left=CURVE_MARGINS["left"] / width, right=1 - CURVE_MARGINS["right"] / width,
        bottom=CURVE_MARGINS["bottom"] / height, top=(curve_height - CURVE_MARGINS["top"]) / height, wspace=0.25,
        hspace=0.65,
    )  # fmt: skip
    over = f" (mean of {images} images)" if images else ""
    band = "" if threshold is None else (f"; grey band: {threshold:g}, which a sensitive map's Spearman must be shown "
                                         "below, after the head and at the end")  # fmt: skip
    figure.text(0.5, (curve_height - 0.15) / height, textwrap.fill(
        f"Similarity to the trained model's map{over}: Spearman rank correlation (solid, tested) and SSIM "
        f"(dotted, shown){band}", 130), ha="center", va="top", fontsize=8)  # fmt: skip
    for index, (name, labels) in enumerate(panels.items()):
        axis = figure.add_subplot(plots[index // CURVES_PER_ROW, index % CURVES_PER_ROW])
        _method_curves(axis, name, {label: curves[label] for label in labels}, stages, threshold)
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


def _panels(curves: Mapping[str, Any], methods: Mapping[str, str]) -> dict[str, list[str]]:
    """Per method (by default each label its own), the labels of its curves, in order: one panel each."""
    panels: dict[str, list[str]] = {}
    for label in curves:
        panels.setdefault(methods.get(label, label), []).append(label)
    return panels


#: The colours of a method's layers within its panel, in order.
LAYER_COLOURS = colormaps["tab10"].colors


def _method_curves(
    axis: Axes,
    method: str,
    curves: Mapping[str, Mapping[str, Sequence[float | None]]],
    stages: Sequence[str],
    threshold: float | None,
) -> None:
    """One method's panel: per layer its Spearman (solid, markers) and SSIM (dotted) after each step, a colour per
    layer named in a legend where there are several, the verdict's threshold a wide grey band (a grader took a
    dotted line for one of the curves)."""
    title = registry.title(method)
    steps = np.arange(len(stages))
    lowest = -0.2
    for colour, (label, values) in zip(LAYER_COLOURS, curves.items(), strict=False):
        layer = label.removeprefix(title).strip() or None
        for metric, style, marker in (("spearman", "-", "o"), ("ssim", ":", None)):
            points = [np.nan if value is None else value for value in values[metric]]
            named = layer if metric == "spearman" else None
            axis.plot(steps, points, style, marker=marker, markersize=3, linewidth=1.3, color=colour, label=named)
            lowest = min([lowest, *(value - 0.05 for value in values[metric] if value is not None)])
    if threshold is not None:
        axis.axhline(threshold, color="0.55", linewidth=4, alpha=0.35, zorder=0)
    axis.axhline(0, color="0.6", linewidth=0.8)
    axis.set_ylim(lowest, 1.05)
    axis.set_xticks(steps, [f"+{stage}" for stage in stages], fontsize=6, rotation=45)
    axis.tick_params(labelsize=6, length=2, pad=1)
    axis.grid(axis="y", color="0.9", linewidth=0.6)
    axis.set_title(textwrap.fill(title, 28), fontsize=7.5)
    if len(curves) > 1:
        axis.legend(fontsize=5.5, loc="upper right", handlelength=1.5, borderaxespad=0.3, framealpha=0.8)
