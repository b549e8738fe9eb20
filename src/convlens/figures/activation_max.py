"""Figures of images grown by gradient ascent: channel maximization and class models, in grids.

Synthesized images live in the model's normalized input space and are min-max scaled each on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from convlens.explain.activation_max import ActivationMaxParams, ClassModelParams, ClassModels, LayerMaximizations
from convlens.figures.grid import Column, corner_label, grid_figure
from convlens.figures.panels import hwc, new_figure, show_image, unit_range
from convlens.figures.shown import Drawn, Shown


def image_grid_figure(
    images: np.ndarray, labels: Sequence[str], title: str, columns: int = 4, colours: Sequence[str | None] = ()
) -> Figure:  # fmt: skip
    """Synthesized images (N, H, W, C), e.g. activation maximization or class models, in a grid; a label
    with a colour in ``colours`` (by position) is drawn in it."""
    columns = min(columns, len(images))
    figure, axes = new_figure(-(-len(images) // columns), columns, title)
    for ax in axes.flat[len(images) :]:
        ax.set_axis_off()
    for index, (ax, image, label) in enumerate(zip(axes.flat, images, labels, strict=False)):
        show_image(ax, unit_range(image), label)
        if index < len(colours) and colours[index]:
            ax.title.set_color(colours[index])
    return figure


def draw_activation_maximization(result: LayerMaximizations, shown: Shown, params: ActivationMaxParams) -> list[Drawn]:
    """One grid: a row per layer, each channel's image labelled with the mean activation it reached."""
    layers = list(result.layers)
    images = {layer: hwc(found.images) for layer, found in result.layers.items()}
    count = max(len(found.targets) for found in result.layers.values())

    def column(rank: int) -> Column:
        def draw(axes: Axes, row: int) -> None:
            found = result.layers[layers[row]]
            if rank >= len(found.targets):
                axes.set_axis_off()
                return
            show_image(axes, unit_range(images[layers[row]][rank]))
            reached = float(found.final_activation[rank])
            label = f"ch {int(found.targets[rank])}: {reached:#.3g}" + ("" if reached > 0 else ", failed")
            corner_label(axes, label, color="black" if reached > 0 else "red")

        return Column(f"#{rank + 1}", draw)

    def figure() -> Figure:
        title = f"{shown.title}: each layer's most active channels (channel: mean activation reached)"
        return grid_figure(title, list(range(len(layers))), layers, [column(rank) for rank in range(count)])

    return [Drawn("channels", figure, layer=layers)]


def draw_class_model(result: ClassModels, shown: Shown, params: ClassModelParams) -> list[Drawn]:
    """One grid: each class's image, labelled with the logit it reached and the probability the model gives
    it for the class; a failed one (:meth:`ClassModels.failed`) says so in red, with the class the model reads in it."""
    failed = set(result.failed())
    probabilities = result.probabilities.tolist() if result.probabilities is not None else [None] * len(result.targets)
    reached = zip(result.targets.tolist(), result.final_activation.tolist(), probabilities, strict=True)
    labels = [f"{shown.class_names[c]}: {a:#.3g}" + ("" if p is None else f", p {p:.2f}") for c, a, p in reached]
    answers = result.answers.tolist() if result.answers is not None else None
    labels = [label + (f",\nfailed{_read_as(shown, answers, row)}" if row in failed else "")
              for row, label in enumerate(labels)]  # fmt: skip
    colours = ["red" if row in failed else None for row in range(len(labels))]
    title = f"{shown.title} (class: logit reached, probability of the class)"
    return [Drawn("classes", partial(image_grid_figure, hwc(result.images), labels, title, 5, colours))]


def _read_as(shown: Shown, answers: list[int] | None, row: int) -> str:
    """``: read as Surprise``, the class the model answers for a failed class model's image; nothing unmeasured."""
    return "" if answers is None else f": read as {shown.class_names[answers[row]]}"
