"""The figures of the visualization sections as markdown: which entries a method has, their captions.

The sections and the methods in them come from :mod:`convlens.registry`; the entries from the run's
``visualizations/manifest.json``. A section whose methods are absent still renders and says which
methods are missing and how to produce them. Every string from the manifest is escaped.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from convlens import registry
from convlens.report.assets import visualization_link
from convlens.report.format import number
from convlens.report.markdown import code, text

Entries = Sequence[dict[str, Any]]
#: Keys every manifest entry has; any other key (e.g. a mask-overlap score) is shown in the caption.
ENTRY_KEYS = frozenset(
    {
        "method",
        "layer",
        "class",
        "true_label",
        "predicted_label",
        "confidence",
        "image_index",
        "file",
        "parameters",
        "seconds",
    }
)


def method_entries(entries: Entries, method: str, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """The entries of one method by the true class of their image (model-level figures first), then
    correct before wrong, then in manifest order."""
    order = {name: index for index, name in enumerate(class_names)}
    chosen = [entry for entry in entries if entry["method"] == method]
    return sorted(chosen, key=lambda entry: (order.get(image_class(entry), -1), _is_wrong(entry)))


def image_class(entry: dict[str, Any]) -> str | None:
    """The true class of the explained image (the explained class for model-level figures)."""
    return entry.get("true_label") or entry.get("class")


def missing_methods(section: registry.Section, entries: Entries, ran: Collection[str]) -> list[str]:
    """Methods of the section that the visualize stage has not run on this run (``ran``: the manifest's methods)."""
    present = {entry["method"] for entry in entries}
    return [method for method in registry.section_methods(section) if method not in present and method not in ran]


def empty_methods(section: registry.Section, entries: Entries, ran: Collection[str]) -> list[str]:
    """Methods that ran but drew nothing (e.g. residual-path projections of a model without residual blocks)."""
    present = {entry["method"] for entry in entries}
    return [method for method in registry.section_methods(section) if method in ran and method not in present]


def missing_note(methods: Sequence[str], run_label: str) -> str:
    """How to produce methods that the run's visualizations lack."""
    return (
        f"> **Missing:** no figures of {_names(methods)} in this run. Produce them with "
        f"`make visualize RUN={run_label}`, then `make report RUN={run_label}`."
    )


def skipped_note(method: str, reason: str | None) -> str:
    """Why a method that ran drew no figure, as the visualize stage recorded it."""
    return f"{code(method)} drew no figure for this model: {text(reason or 'it produced no output')}."


def method_block(method: str, entries: Entries, summary: dict[str, Any] | None) -> str:
    """A method's heading, its settings and run time from the manifest, and its figures with captions."""
    parts = [f"### {code(method)}", *([_settings_line(summary)] if summary else [])]
    parts += [f"> **Note:** {text(note)}" for note in (summary or {}).get("notes", [])]
    return "\n\n".join(parts + [figure(entry) for entry in entries])


def figure(entry: dict[str, Any]) -> str:
    """A manifest entry's image link and, when there is anything to say, its caption."""
    parts = (f"![{text(_alt(entry))}]({visualization_link(entry)})", caption(entry))
    return "\n\n".join(part for part in parts if part)


def caption(entry: dict[str, Any]) -> str:
    """One line under a figure: layer, class, true and predicted label with confidence, extra scores."""
    parts = []
    layers = entry.get("layer")
    if layers:
        names = [layers] if isinstance(layers, str) else layers
        parts.append(("layer " if len(names) == 1 else "layers ") + ", ".join(code(name) for name in names))
    if entry.get("true_label") is not None:
        parts.append(_prediction(entry))
    if entry.get("class") and entry.get("class") != entry.get("predicted_label"):
        parts.append(f"explains class **{text(entry['class'])}**")
    if entry.get("image_index") is not None:
        parts.append(f"test image {text(entry['image_index'])}")
    parts += [f"{text(key.replace('_', ' '))} {number(value)}" for key, value in sorted(extra_scores(entry).items())]
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
    shown = f"true **{text(entry['true_label'])}**, predicted **{text(entry.get('predicted_label'))}**"
    if isinstance(entry.get("confidence"), int | float):
        shown += f" ({entry['confidence']:.1%})"
    return f"{shown}, {verdict}"


def _settings_line(summary: dict[str, Any]) -> str:
    parameters = summary.get("parameters") or {}
    shown = ", ".join(f"{text(key)}={text(number(value))}" for key, value in sorted(parameters.items()))
    seconds = summary.get("seconds")
    timing = f" · {seconds:.1f} s" if isinstance(seconds, int | float) else ""
    return f"Settings: {shown or 'defaults'}{timing}"


def _names(methods: Sequence[str]) -> str:
    return ", ".join(code(method) for method in methods)


def _alt(entry: dict[str, Any]) -> str:
    parts = (entry["method"], image_class(entry), entry.get("image_index"))
    return " ".join(str(part) for part in parts if part is not None)
