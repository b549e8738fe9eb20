"""Layout checks for any matplotlib figure: what a saved PNG would cut off, draw over a panel, or lack."""

from __future__ import annotations

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox


def figure_layout_defects(figure: Figure, name: str, map_grid: bool) -> list[str]:
    """What a saved PNG would lose or lack: text or axes beyond the canvas (clipped), a map grid's colour bar."""
    figure.draw_without_rendering()
    tight = figure.get_tightbbox(FigureCanvasAgg(figure).get_renderer())
    canvas = figure.bbox_inches
    sides = {"left": canvas.x0 - tight.x0, "bottom": canvas.y0 - tight.y0, "right": tight.x1 - canvas.x1,
             "top": tight.y1 - canvas.y1}  # fmt: skip
    defects = [f"{name}: clipped by {inches:.2f} in at the {side}" for side, inches in sides.items() if inches > 0.01]
    defects += [f"{name}: tick label {label!r} overlaps another panel" for label in overlapping_tick_labels(figure)]
    if map_grid and not any(hasattr(axes, "_colorbar") for axes in figure.axes):
        defects.append(f"{name}: a map grid without a colour bar")
    return defects


def overlapping_tick_labels(figure: Figure) -> list[str]:
    """Tick labels drawn over a panel other than their own (LIME's bar labels once ran into their neighbours)."""
    renderer = FigureCanvasAgg(figure).get_renderer()
    found = []
    for axes in (axes for axes in figure.axes if axes.axison):
        labels = [label for label in axes.get_xticklabels() + axes.get_yticklabels() if label.get_visible()]
        for label in (label for label in labels if label.get_text()):
            extent = label.get_window_extent(renderer)
            hits = [other for other in figure.axes if other is not axes and Bbox.intersection(extent, other.bbox)]
            found += [label.get_text()] if any(hit.bbox.width * hit.bbox.height > 0 for hit in hits) else []
    return found
