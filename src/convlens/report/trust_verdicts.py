"""The trust table's cells and verdicts, as ``evaluation/evaluation.json`` records them: a score with
its random baseline, the 95% interval of the paired difference and its mark; the images per column;
the verdict of each family of metrics; and one overall sentence per map derived from those verdicts
(the report recomputes nothing)."""

from __future__ import annotations

from typing import Any

from convlens.evaluation_registry import FAMILIES, scored_metrics
from convlens.report.markdown import text

#: A cell's mark after the table's adjustment; a cell on too few images is never marked.
MARKS = {"above": " ✓", "below": " ✗", "level": "", "too few images": " (n < 8)"}


def score_cell(score: dict[str, Any] | None) -> str:
    """``value (random) [low, high] mark``: the map's mean, the random maps' mean on the same images,
    the 95% interval of the paired difference in the better direction, and the mark."""
    if not score or score.get("value") is None:
        return "-"
    test = score["against"][score["reference"]]
    interval = "" if test["low"] is None else f" [{test['low']:+.2f}, {test['high']:+.2f}]"
    return f"{score['value']:.2f} ({_number(score['baseline'])}){interval}{MARKS[score['verdict']]}"


def images_row(records: list[dict[str, Any]]) -> list[str]:
    """Per score column, the images its cells count (``n``), as a range where the maps differ."""
    cells = []
    for family, metric in scored_metrics():
        counts = [record[family][metric.key]["images"] for record in records if metric.key in record.get(family, {})]
        cells.append("-" if not counts else _range(min(counts), max(counts)))
    return cells


def verdict_cells(record: dict[str, Any]) -> list[str]:
    """The verdict of every registered family (``not tested`` with ``too few images`` where that is why)."""
    return [_verdict_cell(record.get("verdicts", {}).get(family)) for family in FAMILIES]


def _verdict_cell(verdict: dict[str, str] | None) -> str:
    if verdict is None:
        return "-"
    if verdict["verdict"] == "not tested" and verdict["why"].startswith("too few images"):
        return "not tested: too few images"
    return text(verdict["verdict"])


def overall(label: str, record: dict[str, Any]) -> str:
    """One sentence from the family verdicts: a family that does not support the map decides against
    it (named, with why); otherwise the families that support it decide, and the untested are named."""
    verdicts = record.get("verdicts", {})
    by = {side: [family for family, found in verdicts.items() if found["verdict"] == side]
          for side in ("supported", "not supported", "not tested")}  # fmt: skip
    supported = f"; supported by {_names(by['supported'])}" if by["supported"] else ""
    untested = f"; not tested on {_names(by['not tested'])}" if by["not tested"] else ""
    if by["not supported"]:
        first = by["not supported"][0]
        return (f"{label}: not supported, driven by {_names(by['not supported'])} ({text(first)}: "
                f"{text(verdicts[first]['why'])}){supported}{untested}.")  # fmt: skip
    if by["supported"]:
        return f"{label}: supported, by {_names(by['supported'])}{untested}."
    return f"{label}: not tested on this run ({'; '.join(text(found['why']) for found in verdicts.values())})."


def _names(families: list[str]) -> str:
    return ", ".join(text(family) for family in families)


def _range(low: int, high: int) -> str:
    return f"n = {low}" if low == high else f"n = {low}-{high}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
