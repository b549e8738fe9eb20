"""Sections 5-14: which visualization methods each section shows, and their figures as markdown.

``VISUAL_SECTIONS`` is the one table from report sections to the method names the visualize stage
writes into ``visualizations/manifest.json``. A section whose methods are absent still renders and
says which methods are missing and how to produce them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from convlens.report.assets import visualization_link

#: Keys every manifest entry has; any other key (e.g. a mask-overlap score) is shown in the caption.
ENTRY_KEYS = frozenset(
    {"method", "layer", "class", "true_label", "predicted_label", "confidence", "image_index", "file",
     "parameters", "seconds"}
)  # fmt: skip


@dataclass(frozen=True)
class VisualSection:
    """Report section ``number`` shows the figures of ``methods``; ``about`` says what to look for."""

    number: int
    title: str
    methods: tuple[str, ...]
    about: str


VISUAL_SECTIONS: tuple[VisualSection, ...] = (
    VisualSection(5, "Filters", ("filters",),
                  "The first convolution's weights, the only ones that live in pixel space: edge, colour and "
                  "blob detectors show up here when training has shaped them."),
    VisualSection(6, "Feature maps and activation charts", ("feature_maps", "activation_chart"),
                  "What chosen layers output for test images, and which channels respond most strongly."),
    VisualSection(7, "Reconstructions", ("deconvnet", "deconvnet_paths", "backprop_reconstruction",
                                         "guided_reconstruction", "feature_inversion"),
                  "Strong feature-map channels projected back to pixel space with the deconvnet (also split "
                  "into the residual and the shortcut path of a block), plain backprop and guided backprop, "
                  "and images reconstructed from a layer's features alone (feature inversion)."),
    VisualSection(8, "Activation maximization", ("activation_maximization", "class_model"),
                  "Synthetic inputs grown by gradient ascent to excite one channel, or one class score."),
    VisualSection(9, "Saliency per class", ("saliency",),
                  "Absolute input gradient of the class score: the pixels whose change moves the score most."),
    VisualSection(10, "Guided backprop variants", ("guided_backprop",),
                  "Guided backprop in colour and grayscale, and its positive and negative parts."),
    VisualSection(11, "SmoothGrad", ("smoothgrad",),
                  "Gradients averaged over noisy copies of the image, which removes most of their speckle."),
    VisualSection(12, "Gradient x input and Integrated Gradients", ("gradient_x_input", "integrated_gradients"),
                  "Signed contributions of each pixel to the class score (red for, blue against)."),
    VisualSection(13, "Grad-CAM, Guided Grad-CAM, LayerCAM", ("grad_cam", "guided_grad_cam", "layer_cam"),
                  "Class activation maps per stage: where in the image the evidence for the class lies."),
    VisualSection(14, "LIME per class", ("lime",),
                  "Superpixels that LIME's local linear model finds for (green) and against (red) the "
                  "explained class, listed under each image's true class next to how well the model "
                  "recognizes that class."),
)  # fmt: skip


def method_entries(entries: Sequence[dict[str, Any]], method: str, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """The entries of one method by the true class of their image (model-level figures first), then
    correct before wrong, then in manifest order."""
    order = {name: index for index, name in enumerate(class_names)}
    chosen = [entry for entry in entries if entry["method"] == method]
    return sorted(chosen, key=lambda entry: (order.get(image_class(entry), -1), _is_wrong(entry)))


def image_class(entry: dict[str, Any]) -> str | None:
    """The true class of the explained image (the explained class for model-level figures)."""
    return entry.get("true_label") or entry.get("class")


def missing_methods(section: VisualSection, entries: Sequence[dict[str, Any]], ran: Collection[str]) -> list[str]:
    """Methods of the section that the visualize stage has not run on this run (``ran``: the manifest's methods)."""
    present = {entry["method"] for entry in entries}
    return [method for method in section.methods if method not in present and method not in ran]


def empty_methods(section: VisualSection, entries: Sequence[dict[str, Any]], ran: Collection[str]) -> list[str]:
    """Methods that ran but drew nothing (e.g. residual-path projections of a model without residual blocks)."""
    present = {entry["method"] for entry in entries}
    return [method for method in section.methods if method in ran and method not in present]


def missing_note(methods: Sequence[str], run_label: str) -> str:
    """How to produce methods that the run's visualizations lack."""
    return (
        f"> **Missing:** no figures of {_names(methods)} in this run. Produce them with "
        f"`make visualize RUN={run_label}`, then `make report RUN={run_label}`."
    )


def skipped_note(method: str, reason: str | None) -> str:
    """Why a method that ran drew no figure, as the visualize stage recorded it."""
    return f"`{method}` drew no figure for this model: {reason or 'it produced no output'}."


def method_block(method: str, entries: Sequence[dict[str, Any]], settings: dict[str, Any] | None) -> str:
    """A method's heading, its settings and run time from the manifest, and its figures with captions."""
    parts = [f"### `{method}`", *([_settings_line(settings)] if settings else [])]
    return "\n\n".join(parts + [figure(entry) for entry in entries])


def figure(entry: dict[str, Any]) -> str:
    """A manifest entry's image link and, when there is anything to say, its caption."""
    parts = (f"![{_alt(entry)}]({visualization_link(entry)})", caption(entry))
    return "\n\n".join(part for part in parts if part)


def caption(entry: dict[str, Any]) -> str:
    """One line under a figure: layer, class, true and predicted label with confidence, extra scores."""
    parts = []
    layers = entry.get("layer")
    if layers:
        names = [layers] if isinstance(layers, str) else layers
        parts.append(("layer " if len(names) == 1 else "layers ") + ", ".join(f"`{name}`" for name in names))
    if entry.get("true_label") is not None:
        parts.append(_prediction(entry))
    if entry.get("class") and entry.get("class") != entry.get("predicted_label"):
        parts.append(f"explains class **{entry['class']}**")
    if entry.get("image_index") is not None:
        parts.append(f"test image {entry['image_index']}")
    parts += [f"{key.replace('_', ' ')} {_number(value)}" for key, value in sorted(extra_scores(entry).items())]
    return f"*{' · '.join(parts)}*" if parts else ""


def extra_scores(entry: dict[str, Any]) -> dict[str, Any]:
    """Numbers the visualize stage added to an entry beyond the standard keys (e.g. mask overlap)."""
    return {
        key: value
        for key, value in entry.items()
        if key not in ENTRY_KEYS and isinstance(value, int | float) and not isinstance(value, bool)
    }


def _is_wrong(entry: dict[str, Any]) -> bool:
    return entry.get("true_label") is not None and entry["true_label"] != entry.get("predicted_label")


def _prediction(entry: dict[str, Any]) -> str:
    verdict = "wrong" if _is_wrong(entry) else "correct"
    text = f"true **{entry['true_label']}**, predicted **{entry.get('predicted_label')}**"
    if entry.get("confidence") is not None:
        text += f" ({entry['confidence']:.1%})"
    return f"{text}, {verdict}"


def _settings_line(settings: dict[str, Any]) -> str:
    parameters = settings.get("parameters") or {}
    shown = ", ".join(f"{key}={_number(value)}" for key, value in sorted(parameters.items()))
    seconds = settings.get("seconds")
    timing = f" · {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    return f"Settings: {shown or 'defaults'}{timing}"


def _names(methods: Sequence[str]) -> str:
    return ", ".join(f"`{method}`" for method in methods)


def _alt(entry: dict[str, Any]) -> str:
    parts = (entry["method"], image_class(entry), entry.get("image_index"))
    return " ".join(str(part) for part in parts if part is not None)


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
