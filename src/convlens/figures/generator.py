"""Figures of the generator prior: its training losses, held-out reconstructions, and per class the
pixel-space class model beside DGN-AM and PPGN samples, each with confidence and realism, failed
samples titled in red."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import numpy as np
from matplotlib.figure import Figure

from convlens.explain.generator import GeneratorPriorParams, GeneratorReconstructions, GeneratorTrainingParams
from convlens.explain.synthesis import METHOD_TITLES, GeneratorComparison, Synthesis
from convlens.figures.panels import hwc, new_figure, show_image, unit_range
from convlens.figures.shown import Drawn, Shown

#: Losses drawn in one panel each (the denoiser's is PPGN-h's code prior).
LOSS_PANELS = (("image", "image (pixel MSE)"), ("feature", "feature (code MSE / var)"),
               ("adversarial", "adversarial (generator)"), ("discriminator", "discriminator"),
               ("denoiser", "code denoiser (PPGN-h)"))  # fmt: skip


def generator_losses_figure(losses: Mapping[str, Sequence[float]]) -> Figure:
    """One panel per loss against the training step, raw and as a moving average."""
    panels = [(key, label) for key, label in LOSS_PANELS if losses.get(key)]
    figure = Figure(figsize=(3.0 * len(panels), 2.8), dpi=100, layout="constrained")
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels, strict=True):
        values = np.asarray(losses[key], dtype=float)
        steps = np.arange(1, len(values) + 1)
        ax.plot(steps, values, alpha=0.3, linewidth=0.8)
        window = max(1, len(values) // 20)
        ax.plot(steps[window - 1 :], np.convolve(values, np.ones(window) / window, mode="valid"), linewidth=1.5)
        ax.set_title(label, fontsize=8)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if values.min() > 0 and key in ("image", "feature", "denoiser"):
            ax.set_yscale("log")
    figure.suptitle("Generator prior: training losses", fontsize=9)
    return figure


def comparison_figure(
    rows: Sequence[str],
    columns: Sequence[str],
    images: Sequence[Sequence[np.ndarray | None]],
    labels: Sequence[Sequence[str]],
    title: str,
    alarms: Sequence[Sequence[bool]] | None = None,
) -> Figure:
    """A grid of images in [0, 1] (H, W, C), one row per class and one column per method, each panel
    labelled (e.g. with confidence and realism), in red where ``alarms`` says; ``None`` leaves a panel empty."""
    figure, axes = new_figure(len(rows), len(columns), title, panel_inches=1.45)
    for row, name in enumerate(rows):
        for column, header in enumerate(columns):
            ax = axes[row, column]
            image = images[row][column]
            label = labels[row][column]
            if image is None:
                ax.set_axis_off()
                continue
            show_image(ax, image, f"{header}\n{label}" if row == 0 else label)
            if alarms and alarms[row][column]:
                ax.title.set_color("red")
        axes[row, 0].set_ylabel(name, fontsize=8)
    return figure


def reconstructions_figure(real: np.ndarray, rebuilt: np.ndarray, names: Sequence[str], title: str) -> Figure:
    """Test images (N, H, W, C) above their reconstructions from the code, both in [0, 1]."""
    figure, axes = new_figure(2, len(real), title, panel_inches=1.3)
    for column, (image, again, name) in enumerate(zip(real, rebuilt, names, strict=True)):
        show_image(axes[0, column], image, name)
        show_image(axes[1, column], again, "from its code")
    return figure


def draw_generator_prior(result: GeneratorComparison, shown: Shown, params: GeneratorPriorParams) -> list[Drawn]:
    """One grid: per class a real test image, the pixel-space class model, DGN-AM and PPGN-h samples."""
    names = [shown.class_names[c] for c in result.classes.tolist()]
    columns = ["real (test)"] + [f"{METHOD_TITLES[name]} #1" if index == 0 else f"#{index + 1}"
                                 for name, synthesis in result.methods.items()
                                 for index in range(synthesis.images.shape[1])]  # fmt: skip
    images, labels, alarms = [], [], []
    for row, name in enumerate(names):
        real, real_label = _real_image(shown, name)
        found = [(_display(synthesis, row, sample), _label(synthesis, row, sample), synthesis.failed[row][sample])
                 for synthesis in result.methods.values() for sample in range(synthesis.images.shape[1])]  # fmt: skip
        images.append([real, *(image for image, _, _ in found)])
        labels.append(
            [f"{real_label}\nreal KID <= {float(result.yardstick[row]):.3g}", *(label for _, label, _ in found)]
        )
        alarms.append([False, *(failed is not None for _, _, failed in found)])
    title = (
        f"{shown.title}: what each class's logit wants\n(p: the classifier's confidence; KID: of the class's images "
        "against real held-out images of the class,\nin the classifier's layer3 channel means; real: the KID that 90% "
        "of random sets of as many real images stay under; red: a failed sample)"
    )
    return [Drawn("classes", partial(comparison_figure, names, columns, images, labels, title, alarms))]


def draw_generator_training(
    result: GeneratorReconstructions, shown: Shown, params: GeneratorTrainingParams
) -> list[Drawn]:
    """The generator's training losses, and test images above their reconstructions from the code."""
    names = [caption.true_label for caption in shown.captions]
    title = f"{shown.title}: test images (top) rebuilt by the generator from the classifier's code (bottom)"
    return [
        Drawn("losses", partial(generator_losses_figure, result.losses)),
        Drawn(
            "reconstructions",
            partial(reconstructions_figure, shown.display, hwc(result.rebuilt), names, title),
            tuple(range(len(names))),
        ),
    ]


def _real_image(shown: Shown, name: str) -> tuple[np.ndarray | None, str]:
    """The first shown test image of class ``name`` and its label: the model's confidence when it is right."""
    for image, caption in zip(shown.display, shown.captions, strict=True):
        if caption.true_label == name:
            right = caption.predicted_label == name
            return image, f"p {caption.confidence:.2f}" if right else f"taken for {caption.predicted_label}"
    return None, ""


def _display(synthesis: Synthesis, row: int, sample: int) -> np.ndarray:
    """Model-input images min-max scaled (as every activation-maximization figure shows them); pixels as they are."""
    image = hwc(synthesis.images[row, sample])
    return unit_range(image) if synthesis.input_space else np.clip(image, 0, 1)


def _label(synthesis: Synthesis, row: int, sample: int) -> str:
    """Confidence, or the reason a sample failed; the class's KID under its first sample."""
    failed = synthesis.failed[row][sample]
    label = f"failed: {failed}" if failed else f"p {float(synthesis.confidence[row, sample]):.2f}"
    return f"{label}\nKID {float(synthesis.realism[row]):.3g}" if sample == 0 else label
