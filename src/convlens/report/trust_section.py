"""The report section "How far can we trust these maps?": every attribution method on the same images,
next to the scores of the evaluation stage."""

from __future__ import annotations

from convlens.report.assets import COMPARISON, comparison_file
from convlens.report.run_data import RunData


def trust_section(run: RunData) -> str:
    parts = [
        "A map shows where a method puts the evidence for a class; whether the model uses that evidence is a "
        "separate question. The figure shows every method that localises evidence on the same correctly "
        "classified images; the sections after it show each method in detail."
    ]
    if comparison_file(run) is not None:
        parts.append(f"![Every attribution method on the same test images]({COMPARISON})")
    else:
        parts.append(f"> **Missing:** no comparison figure in this run; `make visualize RUN={run.label}` draws it.")
    return "\n\n".join(parts)
