"""The report's visualization sections, one per section of :mod:`convlens.registry`.

A ``methods`` section shows each of its methods' figures in turn; a ``per_class`` section (LIME)
groups them by the true class of their image, next to how well the model recognizes that class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlens import registry
from convlens.report import gallery
from convlens.report.format import percent
from convlens.report.markdown import text
from convlens.report.observations import confused_pairs, ranked_classes, tied_extremes
from convlens.report.results import confused_text
from convlens.report.run_data import RunData

Entries = Sequence[dict[str, Any]]


def visual_section(section: registry.Section, run: RunData, entries: Entries) -> str:
    """The section's description, notes on missing or skipped methods, and its figures."""
    parts = _header(section, run, entries)
    if section.layout == "per_class":
        return "\n\n".join(parts + _per_class(section, run, entries))
    summaries = (run.manifest or {}).get("methods", {})
    for method in registry.section_methods(section):
        chosen = gallery.method_entries(entries, method, run.class_names)
        if chosen:
            parts.append(gallery.method_block(method, chosen, summaries.get(method)))
    return "\n\n".join(parts)


def _per_class(section: registry.Section, run: RunData, entries: Entries) -> list[str]:
    """Per class, how well the model recognizes it, what it is confused with, and the section's figures."""
    methods = registry.section_methods(section)
    if not any(entry["method"] in methods for entry in entries):
        return []
    parts = _lead(run)
    per_class = run.metrics.get("per_class_accuracy") or {}
    for label, name in enumerate(run.class_names):
        chosen = [
            entry
            for method in methods
            for entry in gallery.method_entries(entries, method, run.class_names)
            if gallery.image_class(entry) == name
        ]
        parts.append(_class_block(run, label, name, per_class.get(name), chosen))
    return parts


def _header(section: registry.Section, run: RunData, entries: Entries) -> list[str]:
    """What the section shows, and which of its methods are missing (with how to produce them) or drew nothing."""
    ran = set((run.manifest or {}).get("methods", {}))
    missing, empty = gallery.missing_methods(section, entries, ran), gallery.empty_methods(section, entries, ran)
    notes = [gallery.missing_note(missing, run.label)] if missing else []
    summaries = (run.manifest or {}).get("methods", {})
    notes += [gallery.skipped_note(method, summaries[method].get("skipped")) for method in empty]
    return [section.about, *notes]


def _lead(run: RunData) -> list[str]:
    """Points the figures at the results: the best and worst class and the most frequent confusion."""
    ranking = ranked_classes(run.metrics.get("per_class_accuracy") or {})
    if not ranking or run.confusion is None:
        return []
    top, best, bottom, worst = tied_extremes(ranking)
    lead = f"The model recognizes {_names(top)} best ({best:.1%}) and {_names(bottom)} worst ({worst:.1%})."
    pairs = confused_pairs(run.confusion, run.class_names, k=1)
    if pairs:
        lead += (
            f" Its most frequent mistake is **{text(pairs[0].true)}** taken for **{text(pairs[0].predicted)}** "
            f"({pairs[0].count} test images): compare what the figures find in those classes' images below."
        )
    return [lead]


def _names(names: list[str]) -> str:
    return " and ".join(", ".join(f"**{text(name)}**" for name in names).rsplit(", ", 1))


def _class_block(run: RunData, label: int, name: str, accuracy: float | None, entries: Entries) -> str:
    heading = (
        f"### {text(name)}: {percent(accuracy)} of test images correct; most often predicted instead: "
        f"{confused_text(run, label)}"
    )
    parts = [heading]
    scores = _mean_scores(entries)
    if scores:
        parts.append("Evidence scores, averaged over this class's figures: " + ", ".join(scores) + ".")
    parts += [gallery.figure(entry) for entry in entries] or ["No figure for this class."]
    return "\n\n".join(parts)


def _mean_scores(entries: Entries) -> list[str]:
    keys = sorted({key for entry in entries for key in gallery.extra_scores(entry)})
    means = []
    for key in keys:
        values = [float(entry[key]) for entry in entries if key in gallery.extra_scores(entry)]
        means.append(f"{text(key.replace('_', ' '))} {sum(values) / len(values):.3g}")
    return means
