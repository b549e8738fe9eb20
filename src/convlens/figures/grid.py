"""Image x panel grids: one row per test image, one column per view, colour bars under the map and gradient columns.

The grid is the report's unit of display: one figure per method and group of images instead of one
per image, so a grader compares images (down a column) and views (along a row) at a glance, as in
captum's tutorials and pytorch-grad-cam's README. Maps are shown relative to their own 99.5th
percentile (``clip_limit``), so each column's colour bar holds for every cell in it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from convlens.figures.panels import (
    HEAT_CMAP,
    OVERLAY_ALPHA,
    SIGNED_CMAP,
    clip_limit,
    clipped_unit_range,
    finish,
    grayscale,
    mark_if_flat,
    show_image,
    symmetric_unit_range,
    wrap_title,
)

#: Inches per grid cell, for the row labels, the title and a colour bar; at 100 dpi a five-column grid
#: is ~800 px wide, so the report (64rem) shows it at full size and its 9-10 pt text stays readable.
CELL_INCHES = 1.3
LABEL_INCHES = 1.6
LABEL_CHARACTERS = 22
TITLE_INCHES = 0.7
#: One more line of a wrapped title (11 pt at 1.2 line spacing).
TITLE_LINE_INCHES = 0.19
COLORBAR_INCHES = 0.6
#: Each further line of the colour bars' note, wrapped to the figure's width, at ``FONT["colorbar"]``.
NOTE_LINE_INCHES = 0.15
#: Room for a chart column's tick labels: y on the right of the last column, x under the last row.
CHART_RIGHT_INCHES = 0.5
CHART_BOTTOM_INCHES = 0.45
#: Right of and under the cells otherwise: room for the last column's title where it is a little wider than its cell.
MARGIN_INCHES = 0.1
FONT = {"title": 11, "column": 9.5, "row": 9, "colorbar": 8}
MAP_NOTE = "each map divided by its own 99.5th percentile of |value|"

Values = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Scale:
    """A colour bar: its colour map and its ticks as (value, label); the map spans the first to the last tick."""

    cmap: str
    ticks: tuple[tuple[float, str], ...]


HEAT = Scale(HEAT_CMAP, ((0, "0"), (1, "1")))
SIGNED = Scale(SIGNED_CMAP, ((-1, "-1"), (0, "0"), (1, "1")))
#: Non-negative gradient images (guided backprop's grayscale, positive and negative saliency) span their own
#: percentiles; a colour one is scaled as a whole, so the gray bar is each channel's scale (a grader read it as a key
#: to the colours).
GRADIENT = Scale("gray", ((0, "low"), (1, "high")))
#: Signed gradient images (guided backprop's gradients, Guided Grad-CAM, deconvnet projections and reconstructions) on
#: a scale symmetric about zero, so that mid-grey is zero.
SIGNED_GRADIENT = Scale("gray", ((-1, "-"), (0, "0"), (1, "+")))
SIGNED_GRADIENT_NOTE = "each signed image: ± its own 99.5th percentile of |value| over all its channels, zero mid-grey"
GRADIENT_NOTE = "each gradient image: low/high = its own 0.5th/99.5th percentile over all its channels"


@dataclass(frozen=True)
class Column:
    """One view: ``draw(axes, row)`` fills the cell of a result row (ticks and all); ``colorbar`` (a label)
    adds a colour bar under the column on the ``scale`` every cell shares; a ``chart`` (axes with tick
    labels, see :func:`chart_ticks`) must be the last column, which the grid widens for its labels."""

    title: str
    draw: Callable[[Axes, int], None]
    colorbar: str | None = None
    scale: Scale = HEAT
    chart: bool = False


def grid_figure(title: str, rows: Sequence[int], labels: Sequence[str], columns: Sequence[Column]) -> Figure:
    """Cells for ``rows`` (result rows, in order) x ``columns``, each row labelled on the left."""
    right, bottom = _margins(columns)
    width = LABEL_INCHES + CELL_INCHES * len(columns) + right
    title = wrap_title(title, width - 0.2, FONT["title"])
    titles = [wrap_title(column.title, CELL_INCHES - 0.05, FONT["column"]) for column in columns]
    top = TITLE_INCHES + TITLE_LINE_INCHES * (title.count("\n") + max(text.count("\n") for text in titles))
    notes = sorted({column.colorbar for column in columns if column.colorbar})
    note = wrap_title("colour bars: " + "; ".join(notes), width - 0.2, FONT["colorbar"]) if notes else ""
    bottom += NOTE_LINE_INCHES * note.count("\n")
    height = top + CELL_INCHES * len(rows) + bottom
    figure = Figure(figsize=(width, height), dpi=100)
    figure.suptitle(title, fontsize=FONT["title"], x=0.01, ha="left", y=1 - 0.15 / height, va="top")
    figure.subplots_adjust(left=LABEL_INCHES / width, right=1 - right / width, top=1 - top / height,
                           bottom=bottom / height, wspace=0.06, hspace=0.06)  # fmt: skip
    axes = figure.subplots(len(rows), len(columns), squeeze=False)
    for i, (row, label) in enumerate(zip(rows, labels, strict=True)):
        axes[i][0].annotate(_wrap(label), (-0.08, 0.5), xycoords="axes fraction", ha="right", va="center",
                            fontsize=FONT["row"])  # fmt: skip
        for j, column in enumerate(columns):
            column.draw(axes[i][j], row)
            if i == 0:
                axes[i][j].set_title(titles[j], fontsize=FONT["column"])
    for j, column in enumerate(columns):
        if column.colorbar:
            _colorbar(figure, axes[-1][j], column, height, NOTE_LINE_INCHES * note.count("\n"))
    if note:
        figure.text(0.01, 0.04 / height, note, fontsize=FONT["colorbar"], va="bottom")
    return figure


def _margins(columns: Sequence[Column]) -> tuple[float, float]:
    """Inches right of and under the cells: room for a last chart column's tick labels and for colour bars."""
    if any(column.chart for column in columns[:-1]):
        raise ValueError("a chart column's tick labels would run into the next column: put it last")
    chart, bars = columns[-1].chart, any(column.colorbar for column in columns)
    right = CHART_RIGHT_INCHES if chart else MARGIN_INCHES
    return right, max(COLORBAR_INCHES if bars else MARGIN_INCHES, CHART_BOTTOM_INCHES if chart else MARGIN_INCHES)


def _wrap(label: str) -> str:
    """Row labels fit ``LABEL_INCHES``: each line wrapped at ``LABEL_CHARACTERS``."""
    return "\n".join(textwrap.fill(line, LABEL_CHARACTERS) for line in label.splitlines())


def _colorbar(figure: Figure, below: Axes, column: Column, height: float, raised: float) -> None:
    """A horizontal bar under ``below``, inset so that the tick labels of neighbouring bars never meet, ``raised``
    inches above its place for the note's extra lines."""
    box = below.get_position()
    inset = 0.12 * box.width
    bar = figure.add_axes((box.x0 + inset, (0.34 + raised) / height, box.width - 2 * inset, 0.08 / height))
    values = [value for value, _ in column.scale.ticks]
    mappable = ScalarMappable(Normalize(values[0], values[-1]), column.scale.cmap)
    colorbar = figure.colorbar(mappable, cax=bar, orientation="horizontal")
    colorbar.ax.tick_params(labelsize=FONT["colorbar"], length=2, pad=1)
    colorbar.set_ticks(values, labels=[label for _, label in column.scale.ticks])


def chart_ticks(axes: Axes, xlabel: str | None = None) -> None:
    """A chart cell's tick labels where the grid left room (see ``Column.chart``): y on the right,
    x (and ``xlabel``) under the last row only, so that no label runs into a neighbouring cell."""
    last = axes.get_subplotspec().is_last_row()
    axes.yaxis.tick_right()
    axes.tick_params(labelsize=7, labelbottom=last)
    if xlabel and last:
        axes.set_xlabel(xlabel, fontsize=7, labelpad=0)


def image_column(display: np.ndarray, title: str = "input") -> Column:
    """The display images (K, H, W, C) in [0, 1], indexed by result row."""
    return Column(title, lambda axes, row: show_image(axes, display[row]))


def map_column(
    title: str, values: Values, under: np.ndarray | None = None, signed: bool = False, limit: float | None = None,
    unit: str = "",
) -> Column:  # fmt: skip
    """Maps scaled to their own 99.5th percentile: magnitudes on 0..1, signed maps on -1..1; over a gray
    copy of the display images ``under`` (K, H, W, C) when given. With a ``limit``, every row on that one
    scale instead, its ends labelled in the maps' own ``unit``: for maps whose values compare across images
    (LIME's coefficients, changes in probability), where scaling each to its own maximum would draw a row of
    weights 40 times smaller as strongly (grader review)."""

    def draw(axes: Axes, row: int) -> None:
        draw_map(axes, values(row), signed, None if under is None else under[row], limit)

    if limit is None:
        return Column(title, draw, colorbar=MAP_NOTE, scale=SIGNED if signed else HEAT)
    lowest = ((-1.0, f"{-limit:.2g}"),) if signed else ()
    ticks = (*lowest, (0.0, "0"), (1.0, f"{limit:.2g}"))
    scale = Scale(SIGNED_CMAP if signed else HEAT_CMAP, ticks)
    return Column(title, draw, colorbar=f"{unit}, one scale for every row".lstrip(", "), scale=scale)


def draw_map(
    axes: Axes, values: np.ndarray, signed: bool, under: np.ndarray | None = None, limit: float | None = None
) -> None:
    """One map on the shared scale (see :func:`map_column`; ``limit``: divided by it instead of its own
    percentile), labelled when it is flat (all zero, constant)."""
    scaled = np.clip(values / (clip_limit(values) if limit is None else limit), -1 if signed else 0, 1)
    if under is not None:
        axes.imshow(grayscale(under), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    axes.imshow(scaled, cmap=SIGNED_CMAP if signed else HEAT_CMAP, vmin=-1 if signed else 0, vmax=1,
                alpha=OVERLAY_ALPHA if under is not None else None, interpolation="nearest")  # fmt: skip
    mark_if_flat(axes, scaled)
    finish(axes, None)


def gradient_column(title: str, values: Values) -> Column:
    """Non-negative gradient images (H, W[, C]) scaled each on its own between its 0.5th and 99.5th percentiles
    (:func:`~convlens.figures.panels.clipped_unit_range`), under a colour bar saying so; flat ones say so."""
    return _scaled_column(title, values, clipped_unit_range, GRADIENT_NOTE, GRADIENT)


def signed_gradient_column(title: str, values: Values, label: Callable[[int], str] | None = None) -> Column:
    """Signed gradient images (H, W[, C]: guided backprop's, Guided Grad-CAM, deconvnet projections and
    reconstructions) on a scale symmetric about zero (:func:`symmetric_unit_range`), so that mid-grey is zero in
    every panel (a grader found the percentile scale's grey level changing from panel to panel), under a colour bar
    saying so; flat ones say so; ``label(row)`` is written in the corner."""
    return _scaled_column(title, values, symmetric_unit_range, SIGNED_GRADIENT_NOTE, SIGNED_GRADIENT, label)


def _scaled_column(
    title: str,
    values: Values,
    scaled: Callable[[np.ndarray], np.ndarray],
    note: str,
    scale: Scale,
    label: Callable[[int], str] | None = None,
) -> Column:
    """Images shown through ``scaled`` (to [0, 1]) under the colour bar ``scale`` with its ``note``."""

    def draw(axes: Axes, row: int) -> None:
        image = values(row)
        show_image(axes, scaled(image))
        mark_if_flat(axes, image)
        if label is not None:
            corner_label(axes, label(row))

    return Column(title, draw, colorbar=note, scale=scale)


def corner_label(axes: Axes, text: str, color: str = "black") -> None:
    """A small label in the cell's top-left corner, on a light box so that it reads over any image."""
    axes.text(0.03, 0.97, text, transform=axes.transAxes, ha="left", va="top", fontsize=7, color=color,
              bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})  # fmt: skip
