"""The report's visualization sections, one per section of :mod:`convlens.registry`.

A ``methods`` section shows each of its methods' figures in turn; a ``per_class`` section (LIME)
shows them next to how well the model recognizes each class (folded: the Findings name the confusions).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from convlens import registry
from convlens.report import gallery
from convlens.report.format import percent
from convlens.report.markdown import prose, table, text
from convlens.report.results import confused_text
from convlens.report.run_data import RunData
from convlens.rundir import DEFAULT_SPLIT

Entries = Sequence[dict[str, Any]]


def visual_section(section: registry.Section, run: RunData, entries: Entries, status: dict[str, list[str]]) -> str:
    """The section's description, notes on missing or skipped methods, and each method's figures with
    its ``status`` (the line saying where its maps are trusted on this run); a ``per_class`` section
    first folds in the per-class results."""
    parts = _header(section, run, entries)
    methods = registry.section_methods(section)
    if section.layout == "per_class" and any(entry["method"] in methods for entry in entries):
        parts.append(_class_table(run))
    summaries = (run.manifest or {}).get("methods", {})
    split = (run.manifest or {}).get("split", DEFAULT_SPLIT)
    shared = _shared_notes(methods, summaries)
    sizes = gallery.group_sizes(entries)
    parts += [f"> **Note** ({', '.join(registry.title(name) for name in names)}): {prose(note)}"
              for note, names in shared.items()]  # fmt: skip
    for method in methods:
        chosen = gallery.method_entries(entries, method)
        if chosen:
            block = gallery.method_block(
                method, chosen, summaries.get(method), status.get(method, ()), split, shared, run.class_names, sizes
            )
            parts.append(block)
    return "\n\n".join(parts)


def _shared_notes(methods: Sequence[str], summaries: dict[str, Any]) -> dict[str, list[str]]:
    """Notes that several of the section's methods carry (the same small layer left out of every CAM), with
    those methods: said once at the section's head."""
    by_note: dict[str, list[str]] = {}
    for method in methods:
        for note in (summaries.get(method) or {}).get("notes", []):
            by_note.setdefault(str(note), []).append(method)
    return {note: names for note, names in by_note.items() if len(names) > 1}


def _header(section: registry.Section, run: RunData, entries: Entries) -> list[str]:
    """What the section shows, and which of its methods are missing (with how to produce them) or drew nothing."""
    ran = set((run.manifest or {}).get("methods", {}))
    missing, empty = gallery.missing_methods(section, entries, ran), gallery.empty_methods(section, entries, ran)
    notes = [gallery.missing_note(missing, run.label)] if missing else []
    summaries = (run.manifest or {}).get("methods", {})
    notes += gallery.skipped_notes({method: summaries[method].get("skipped") for method in empty})
    return [section.about, *notes]


def _class_table(run: RunData) -> str:
    """Per class its accuracy and what it is most often taken for, folded: the figures come first."""
    per_class = run.metrics.get("per_class_accuracy") or {}
    rows = [(text(name), percent(per_class.get(name)), confused_text(run, label))
            for label, name in enumerate(run.class_names)]  # fmt: skip
    body = table(("class", "test accuracy", "most often predicted instead"), rows)
    return f'<details markdown="1">\n<summary>Per-class results</summary>\n\n{body}\n\n</details>'
