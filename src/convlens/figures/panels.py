"""Display helpers every figure shares: captions, images, maps, scaling, layout.

Images are (H, W, C) in [0, 1]; maps are (H, W) or (H, W, C); the only arithmetic here is display
scaling. Colour maps are fixed across all figures:
``HEAT_CMAP`` for magnitudes (saliency, SmoothGrad, CAMs), ``SIGNED_CMAP`` centred on zero for
signed values (gradient x input, Integrated Gradients, LIME weights, filter weights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import text_to_path
from torch import Tensor

HEAT_CMAP = "inferno"
SIGNED_CMAP = "RdBu_r"
OVERLAY_ALPHA = 0.55
PANEL_INCHES = 1.9
#: Maps are scaled to this percentile of their magnitude, so a few extreme pixels do not wash out the rest.
CLIP_PERCENTILE = 99.5


@dataclass(frozen=True)
class Caption:
    """What a figure shows: method, layer, the class explained (when ``explains``; with the model's probability
    for it, ``target_probability``, where known) and the model's verdict on the image."""

    method: str
    target: str
    true_label: str
    predicted_label: str
    confidence: float
    layer: str | None = None
    explains: bool = True
    target_probability: float | None = None

    def explained(self, separator: str = " ") -> str:
        """``'Disgust' (P(Disgust) = 0.03)``: the class explained, with the model's probability for it when it is
        not the prediction (``< 0.01`` below that), after ``separator``: a probability, not a p-value."""
        if self.target == self.predicted_label or self.target_probability is None:
            return f"'{self.target}'"
        probability = "< 0.01" if self.target_probability < 0.01 else f"= {self.target_probability:.2f}"
        return f"'{self.target}'{separator}(P({self.target}) {probability})"

    def title(self) -> str:
        layer = f" @ {self.layer}" if self.layer else ""
        what = f" - explains {self.explained()}" if self.explains else ""
        verdict = "correct" if self.true_label == self.predicted_label else "wrong"
        return (
            f"{self.method}{layer}{what}\n"
            f"true: {self.true_label}, predicted: {self.predicted_label} ({self.confidence:.2f}, {verdict})"
        )


def hwc(images: Tensor) -> np.ndarray:
    """(..., C, H, W) tensor -> (..., H, W, C) numpy array for matplotlib."""
    return images.movedim(-3, -1).numpy()


def show_image(axes: Axes, image: np.ndarray, title: str | None = None) -> None:
    """An (H, W), (H, W, 1) or (H, W, 3) image in [0, 1] without ticks; gray for one channel."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    axes.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
    finish(axes, title)


def show_map(
    axes: Axes, values: np.ndarray, title: str, *, signed: bool = False, under: np.ndarray | None = None
) -> None:
    """A map in the shared colour maps, optionally over a grayscale copy of the image ``under``."""
    limit = clip_limit(values)
    if under is not None:
        axes.imshow(grayscale(under), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    low = -limit if signed else 0.0
    axes.imshow(
        values,
        cmap=SIGNED_CMAP if signed else HEAT_CMAP,
        vmin=low,
        vmax=limit,
        alpha=OVERLAY_ALPHA if under is not None else None,
        interpolation="nearest",
    )
    finish(axes, title)
    mark_if_flat(axes, values)


def mark_if_flat(axes: Axes, values: np.ndarray) -> None:
    """Write on the panel when it shows nothing: an all-zero or constant map would otherwise look
    like a finding (a uniformly dark or coloured square)."""
    low, high = float(np.min(values)), float(np.max(values))
    if high > low:
        return
    label = "all zero" if high == 0 else "constant"
    axes.text(0.5, 0.5, label, transform=axes.transAxes, ha="center", va="center", fontsize=7,
              bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "none"})  # fmt: skip


def clip_limit(values: np.ndarray) -> float:
    """Display limit: the ``CLIP_PERCENTILE`` of |values| (positive, so flat maps still draw)."""
    limit = float(np.percentile(np.abs(values), CLIP_PERCENTILE))
    return limit if limit > 0 else 1.0


def unit_range(values: np.ndarray) -> np.ndarray:
    """Min-max scale to [0, 1] (the usual display of gradient images); flat input gives zeros."""
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


#: Share of a gradient image's values clipped at each end before it is scaled to [0, 1]
#: (:func:`clipped_unit_range`).
GRADIENT_CLIP = 0.005


def clipped_unit_range(values: np.ndarray, share: float = GRADIENT_CLIP) -> np.ndarray:
    """Scale to [0, 1] between the ``share`` and 1 - ``share`` quantiles, clipping beyond: a few extreme
    pixels (a deep layer's deconvnet projection concentrates in a handful) would otherwise turn the rest of
    a min-max scaled gradient image one flat grey, as captum's display clips its top 2% for the same reason;
    a flat image (or one whose quantiles meet) falls back to :func:`unit_range`."""
    low, high = (float(value) for value in np.quantile(values, [share, 1 - share]))
    if high <= low:
        return unit_range(values)
    return np.clip((values - low) / (high - low), 0.0, 1.0)


def symmetric_unit_range(values: np.ndarray, share: float = GRADIENT_CLIP) -> np.ndarray:
    """Signed values to [0, 1] with zero at 0.5: divided by the 1 - ``share`` quantile of ``|values|`` and clipped,
    so that mid-grey is zero and the sign reads as dark or light (percentile scaling put mid-grey wherever the
    image's median fell); an all-zero image stays mid-grey."""
    bound = float(np.quantile(np.abs(values), 1 - share)) or float(np.abs(values).max())
    scaled = values / bound if bound > 0 else np.zeros_like(values)
    return np.clip(scaled, -1.0, 1.0) / 2 + 0.5


def grayscale(image: np.ndarray) -> np.ndarray:
    """Mean over channels, as a muted backdrop for overlays."""
    return image.mean(axis=2) if image.ndim == 3 else image


def title_of(caption: Caption | str) -> str:
    """A caption's title; a string is a title already (figures that explain no class)."""
    return caption if isinstance(caption, str) else caption.title()


def row_figure(rows: int, columns: int, caption: Caption | str) -> tuple[Figure, list[list[Axes]]]:
    """A grid of ``PANEL_INCHES`` panels under the caption's title (manual layout: fast and fixed)."""
    figure = Figure(figsize=(PANEL_INCHES * columns, PANEL_INCHES * rows + 0.55), dpi=100)
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.suptitle(title_of(caption), fontsize=8)
    figure.subplots_adjust(
        left=0.02, right=0.98, bottom=0.02, top=1 - 0.55 / (PANEL_INCHES * rows + 0.55) - 0.02, wspace=0.08, hspace=0.18
    )
    return figure, [list(row) for row in axes]


def wrap_title(title: str, inches: float, fontsize: float) -> str:
    """``title`` wrapped at spaces so that each line, as measured in the default font, fits ``inches``
    (a saved PNG cuts off what runs past the figure's edge); a longer word keeps a line of its own."""
    lines = []
    for paragraph in title.splitlines():
        line = ""
        for word in paragraph.split(" "):
            longer = f"{line} {word}" if line else word
            if line and _inches(longer, fontsize) > inches:
                lines.append(line)
                longer = word
            line = longer
        lines.append(line)
    return "\n".join(lines)


def _inches(text: str, fontsize: float) -> float:
    """The width of ``text`` at ``fontsize`` points in the default font, from its glyphs' advances (50x faster
    than building its path, which took about 1 s to wrap one long colour-bar note word by word)."""
    return text_to_path.get_text_width_height_descent(text, FontProperties(size=fontsize), ismath=False)[0] / 72


def new_figure(
    rows: int, columns: int, title: str, panel_inches: float = PANEL_INCHES, extra_width: float = 0.0
) -> tuple[Figure, np.ndarray]:
    """A constrained-layout figure of square panels (plus ``extra_width`` for a colour bar) under
    ``title``; the axes as a 2-D array."""
    size = (panel_inches * columns + extra_width, panel_inches * rows + 0.6)
    figure = Figure(figsize=size, dpi=100, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.suptitle(wrap_title(title, size[0] - 0.2, 9), fontsize=9)
    return figure, axes


def finish(axes: Axes, title: str | None) -> None:
    """No ticks; a small title."""
    axes.set_xticks([])
    axes.set_yticks([])
    if title:
        axes.set_title(title, fontsize=7)
