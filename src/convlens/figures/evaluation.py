"""The randomization cascade as Adebayo et al. (2018) draw it: one row per method (and layer), the
trained model's map of one image, then the map after each further stage is re-initialised from the
head down; below, the mean Spearman and SSIM of the maps to the trained ones at every step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from convlens import registry
from convlens.figures.grid import MAP_NOTE
from convlens.figures.panels import HEAT_CMAP, clip_limit, finish, show_image

PANEL = 1.05
CURVE_HEIGHT = 2.6


def draw_cascade(cascade: Any, evaluation: Mapping[str, Any]) -> Figure:
    """The randomization family's figure: ``cascade`` (``evaluate.families.CascadeMaps``) holds the maps
    of its first image, ``evaluation`` (``evaluation.json``'s content) the similarity curves."""
    rows, curves, stages = {}, {}, evaluation["settings"]["randomization"]["stages"]
    for name, layers in cascade.maps.items():
        for layer, maps in layers.items():
            label = f"{registry.title(name)} {layer}".strip()
            rows[label] = maps
            curves[label] = evaluation["methods"][name]["layers"][layer]["randomization"]
    return cascade_figure(cascade.image, rows, stages, curves)


def cascade_figure(
    image: np.ndarray,
    rows: Mapping[str, Sequence[np.ndarray]],
    stages: Sequence[str],
    curves: Mapping[str, Mapping[str, Sequence[float | None]]],
) -> Figure:
    """``rows``: per label (e.g. ``Grad-CAM layer4``) the trained map then one (H, W) map per stage in
    ``stages``; ``curves``: per label the ``spearman`` and ``ssim`` means per stage (None where a map
    is flat and has nothing to compare)."""
    columns = ["input", "trained", *(f"+ {stage}" for stage in stages)]
    height = PANEL * len(rows) + CURVE_HEIGHT + 0.6
    figure = Figure(figsize=(max(PANEL * len(columns) + 1.6, 7.5), height), dpi=100, layout="constrained")
    figure.suptitle("Cascading model-parameter randomization (head first)", fontsize=9)
    grid, plots = figure.subfigures(2, 1, height_ratios=[PANEL * len(rows), CURVE_HEIGHT])
    _map_grid(grid, image, rows, columns)
    _similarity_curves(plots, curves, stages)
    return figure


def _map_grid(figure: Figure, image: np.ndarray, rows: Mapping[str, Sequence[np.ndarray]], columns: list[str]) -> None:
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for row, (label, maps) in enumerate(rows.items()):
        if row == 0:
            show_image(axes[row][0], image)
        else:
            axes[row][0].axis("off")
        for column, values in enumerate(maps, start=1):
            axes[row][column].imshow(values, cmap=HEAT_CMAP, vmin=0, vmax=clip_limit(values), interpolation="nearest")
            finish(axes[row][column], columns[column] if row == 0 else None)
        axes[row][1].set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    axes[0][0].set_title(columns[0], fontsize=7)
    _colorbar(figure, axes[-1][1:].tolist())


def _colorbar(figure: Figure, under: list[Axes]) -> None:
    """One bar under the maps: each is drawn from 0 to its own 99.5th percentile (see ``clip_limit``)."""
    mappable = ScalarMappable(Normalize(0, 1), HEAT_CMAP)
    colorbar = figure.colorbar(mappable, ax=under, location="bottom", shrink=0.4, aspect=40, pad=0.03)
    colorbar.set_ticks([0, 1])
    colorbar.ax.tick_params(labelsize=7)
    colorbar.set_label(MAP_NOTE, fontsize=7)


def _similarity_curves(
    figure: Figure, curves: Mapping[str, Mapping[str, Sequence[float | None]]], stages: Sequence[str]
) -> None:
    axes = figure.subplots(1, 2)
    steps = np.arange(len(stages))
    colours = colormaps["tab20"].colors
    for axis, metric, title in zip(axes, ("spearman", "ssim"), ("Spearman rank correlation", "SSIM"), strict=True):
        lowest = -0.2
        for index, (label, values) in enumerate(curves.items()):
            points = [np.nan if v is None else v for v in values[metric]]
            axis.plot(steps, points, marker="o", markersize=3, label=label, color=colours[index % len(colours)])
            lowest = min([lowest, *(v - 0.05 for v in values[metric] if v is not None)])
        axis.set_xticks(steps, [f"+{stage}" for stage in stages], fontsize=7)
        axis.set_ylim(lowest, 1.05)
        axis.axhline(0, color="0.6", linewidth=0.8)
        axis.set_title(f"{title} to the trained model's map", fontsize=8)
        axis.tick_params(labelsize=7)
    axes[1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
