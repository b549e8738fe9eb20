"""LIME figures: per image its superpixels (the top ones numbered), their weights, the top superpixels
for and against the explained class, and the top weights as bars labelled with the same numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from skimage.segmentation import mark_boundaries

from convlens.explain.lime import LimeExplanation, LimeExplanations, LimeParams
from convlens.figures.grid import Column, chart_ticks, image_column, map_column
from convlens.figures.panels import OVERLAY_ALPHA, SIGNED_CMAP, grayscale, show_image
from convlens.figures.shown import Drawn, Shown

#: For and against the class in the colours of the signed colour map that the weights column and every signed
#: attribution figure use (red for, blue against): green and red here made red mean "for" in one column and
#: "against" in the next.
POSITIVE_COLOUR = tuple(colormaps[SIGNED_CMAP](0.85)[:3])
NEGATIVE_COLOUR = tuple(colormaps[SIGNED_CMAP](0.15)[:3])
BOUNDARY_COLOUR = (1.0, 1.0, 0.0)
BOUNDARY_ZOOM = 4


def draw_lime(result: LimeExplanations, shown: Shown, params: LimeParams) -> list[Drawn]:
    """Per group of images a grid (correct, mistakes, and the most confused pairs explained for both
    classes): numbered superpixels, signed weights with a colour bar, the top superpixels for (red)
    and against (blue) the class, and the top weights; the weights and bars on one scale per figure, fitted to
    its own rows (fitted to every figure's, FER2013's confused pairs, up to 0.14, were drawn on 0.34: faint)."""
    explanations, display = result.explanations, shown.display

    def superpixels(axes: Axes, row: int) -> None:
        numbered_superpixels(axes, display[row], explanations[row])

    def positive(axes: Axes, row: int) -> None:
        tint(axes, display[row], explanations[row].positive_mask, POSITIVE_COLOUR)

    def negative(axes: Axes, row: int) -> None:
        tint(axes, display[row], explanations[row].negative_mask, NEGATIVE_COLOUR)

    def columns(rows: tuple[int, ...]) -> list[Column]:
        weights = {row: explanations[row].weight_map() for row in rows}
        span = shared_span([explanations[row].top_weights for row in rows])

        def bars(axes: Axes, row: int) -> None:
            weight_bars(axes, explanations[row].top_weights, explanations[row].score, span)

        return [
            image_column(display),
            Column("top superpixels", superpixels),
            map_column(
                "weights",
                weights.__getitem__,
                under=display,
                signed=True,
                limit=shared_limit(list(weights.values())),
                unit="LIME coefficient (change in class probability)",
            ),  # fmt: skip
            Column("for the class", positive),
            Column("against it", negative),
            Column("top weights", bars, chart=True),
        ]

    return shown.grids_of_rows(columns)


def shared_limit(weights: Sequence[np.ndarray]) -> float:
    """The largest |coefficient| of the figure's explanations: the ends of the one scale every row's weights are
    drawn on (coefficients are changes in class probability, comparable across images); 1 when all are 0."""
    return max((float(np.abs(values).max()) for values in weights), default=0.0) or 1.0


def shared_span(top_weights: Sequence[Sequence[tuple[int, float]]]) -> tuple[float, float]:
    """The x range of every row's bars in one figure: from the smallest to the largest top weight, zero included."""
    values = [weight for row in top_weights for _, weight in row]
    return min([0.0, *values]), max([0.0, *values])


def numbered_superpixels(axes: Axes, image: np.ndarray, explanation: LimeExplanation) -> None:
    """Superpixel boundaries, and the number of each top superpixel at its centre (the bars' labels).
    Drawn at ``BOUNDARY_ZOOM`` times the image size, so that one-pixel boundaries stay thin on small images."""
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    zoom = np.ones((BOUNDARY_ZOOM, BOUNDARY_ZOOM))
    segments = np.kron(explanation.segments, zoom).astype(explanation.segments.dtype)
    show_image(axes, mark_boundaries(np.kron(rgb, zoom[..., None]), segments, color=BOUNDARY_COLOUR))
    for segment, weight in explanation.top_weights:
        rows, cols = np.nonzero(segments == segment)
        colour = POSITIVE_COLOUR if weight > 0 else NEGATIVE_COLOUR
        axes.text(cols.mean(), rows.mean(), str(segment), ha="center", va="center", fontsize=7, color="white",
                  bbox={"boxstyle": "round,pad=0.15", "facecolor": colour, "edgecolor": "none"})  # fmt: skip


def tint(axes: Axes, image: np.ndarray, mask: np.ndarray, colour: tuple[float, float, float]) -> None:
    """The image in gray with the masked superpixels tinted ``colour``."""
    show_image(axes, grayscale(image))
    overlay = np.zeros((*mask.shape, 4))
    overlay[mask] = (*colour, OVERLAY_ALPHA)
    axes.imshow(overlay, interpolation="nearest")


#: A bar at least this share of the longest one carries its value inside, in white; a shorter one beside it.
INSIDE_SHARE = 0.45
#: About the share of a bar panel's width one value label takes: the room a label needs beside a bar's end.
LABEL_SHARE = 0.3


def weight_bars(
    axes: Axes,
    top_weights: Sequence[tuple[int, float]],
    score: float | None = None,
    span: tuple[float, float] | None = None,
) -> None:
    """Horizontal bars of the top superpixel weights, largest magnitude on top, labelled by superpixel
    on the right (the grid's room for a chart's labels) and each with its value (two significant figures):
    LIME's coefficient, the change in the class probability its local linear model gives the superpixel's
    presence; under them, in the panel's bottom slot, the local model's R^2 (``score``), how much of the probability
    it explains (as an axis label it ran into the next row's panel). ``span``, the x range every row of a figure
    shares (:func:`shared_span`; a bar of -0.006 was drawn as long as another row's +0.15), else this row's own."""
    values = [weight for _, weight in top_weights]
    low, high = span or shared_span([top_weights])
    positions = np.arange(len(values))[::-1] + (score is not None)
    axes.barh(positions, values, color=[POSITIVE_COLOUR if value > 0 else NEGATIVE_COLOUR for value in values])
    axes.set_yticks(positions, [f"#{segment}" for segment, _ in top_weights], fontsize=7)
    axes.axvline(0, color="black", linewidth=0.6)
    axes.set_xticks([])  # each bar states its value: a tick axis would crowd the small panel
    if high > low:
        axes.set_xlim(low - 0.02 * (high - low), high + 0.02 * (high - low))
    longest = max(abs(low), abs(high))
    for position, value in zip(positions, values, strict=True):
        if longest != 0 and abs(value) >= INSIDE_SHARE * longest:
            axes.text(value / 2, position, f"{value:+.2g}", fontsize=6, va="center", ha="center", color="white")
        else:  # beside the bar's outer end where the label fits, else across zero from it
            outward = (high - value if value >= 0 else value - low) >= LABEL_SHARE * (high - low)
            right = outward if value >= 0 else not outward
            end, align = (max(value, 0), "left") if right else (min(value, 0), "right")
            axes.text(end, position, f" {value:+.2g} ", fontsize=6, va="center", ha=align)
    if score is not None:
        axes.set_ylim(-0.6, len(values) + 0.6)
        axes.text(0.5, 0.02, f"R² {score:.2f}", transform=axes.transAxes, fontsize=7, ha="center", va="bottom",
                  bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5})  # fmt: skip
    chart_ticks(axes)
    axes.set_box_aspect(1)
