"""What a method's figure function gets and returns.

A figure function ``draw_<method>(result, shown, params) -> list[Drawn]`` gets the result of the
method's explain function and :class:`Shown`, the display images, captions and groups of the
result's rows; it returns named, lazily drawn figures, usually one image x view grid per group
(:meth:`Shown.grids`). The stage names the files, draws, saves and lists them in the manifest.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from matplotlib.figure import Figure

from convlens.figures.grid import Column, grid_figure
from convlens.figures.panels import Caption
from convlens.text import slug


@dataclass(frozen=True)
class Drawn:
    """One figure: ``key`` names its file, ``figure`` draws it; ``rows`` are the result rows (images)
    it shows, in order (empty: the model alone), ``layer`` the layer(s) it shows."""

    key: str
    figure: Callable[[], Figure]
    rows: tuple[int, ...] = ()
    layer: str | list[str] | None = None


#: How the rows of a result are grouped into grids, and what each group's grid says it shows.
GROUPS = {
    "correct": "correctly classified test images",
    "mistake": "misclassified test images (of each true class its most confident mistake)",
    "confused": "the most confused class pairs, each image explained for its predicted and its true class",
}


@dataclass(frozen=True)
class Shown:
    """The rows of a method's result as the figures show them: the method's ``title``, display
    images (K, H, W, C) in [0, 1], per row a caption, a file-name stem and a group (a key of
    ``GROUPS``), and the class names."""

    title: str
    display: np.ndarray
    captions: tuple[Caption, ...]
    stems: tuple[str, ...]
    groups: tuple[str, ...]
    class_names: tuple[str, ...]

    def label(self, row: int) -> str:
        """A grid row's label: the image, the model's verdict, and the class explained when it differs."""
        caption = self.captions[row]
        verdict = "" if caption.true_label == caption.predicted_label else " (wrong)"
        explains = (
            f"\nexplains {caption.explained(separator=chr(10))}" if caption.target != caption.predicted_label else ""
        )
        return f"{caption.true_label} #{self.stems[row].rsplit('_', 1)[-1]}\n-> {caption.predicted_label} " \
               f"{caption.confidence:.2f}{verdict}{explains}"  # fmt: skip

    def grids(self, columns: Callable[[], Sequence[Column]], layer: str | list[str] | None = None) -> list[Drawn]:
        """One grid per group of rows, ``columns()`` its views; files ``[<layer>_]correct``, ``..._mistake``,
        ``..._confused``, titled with the single ``layer`` when there is one."""
        return self.grids_of_rows(lambda _rows: columns(), layer)

    def grids_of_rows(
        self, columns: Callable[[tuple[int, ...]], Sequence[Column]], layer: str | list[str] | None = None
    ) -> list[Drawn]:
        """:meth:`grids` whose views depend on the grid's own rows, ``columns(rows)``: a scale one figure's rows
        share, fitted to them and not to the other figures' rows."""
        single = layer if isinstance(layer, str) else None
        drawn = []
        for group, description in GROUPS.items():
            rows = tuple(row for row, kind in enumerate(self.groups) if kind == group)
            if rows:
                title = f"{self.title}{f' @ {single}' if single else ''}: {description}"
                labels = [self.label(row) for row in rows]
                key = f"{slug(single)}_{group}" if single else group
                drawn.append(Drawn(key, partial(_grid, title, rows, labels, columns), rows, layer))
        return drawn

    def per_row(
        self, draw: Callable[[int, Caption], Figure], layer: str | list[str] | None = None, explains: bool = True
    ) -> list[Drawn]:
        """One figure per row, ``<stem>[_<layer>]``; ``draw(row, caption)`` draws it. ``explains``: the
        figure explains a class (else its title only describes the image)."""
        single = layer if isinstance(layer, str) else None
        suffix = f"_{slug(single)}" if single else ""
        return [
            Drawn(
                f"{stem}{suffix}",
                partial(draw, row, dataclasses.replace(caption, layer=single, explains=explains)),
                (row,),
                layer,
            )
            for row, (stem, caption) in enumerate(zip(self.stems, self.captions, strict=True))
        ]

    def per_row_and_layer(self, draw: Callable[[str, int, Caption], Figure], layers: Sequence[str]) -> list[Drawn]:
        """:meth:`per_row` for each of ``layers``, for figures that describe an image (not a class)."""
        return [drawn for layer in layers for drawn in self.per_row(partial(draw, layer), layer, explains=False)]


def _grid(
    title: str, rows: tuple[int, ...], labels: list[str], columns: Callable[[tuple[int, ...]], Sequence[Column]]
) -> Figure:
    return grid_figure(title, rows, labels, columns(rows))
