"""The scores of the report section "How far can we trust these maps?", from the run's
``evaluation/evaluation.json`` (:mod:`convlens.report.trust` adds the comparison figure around them).

It holds one table (method x layer: every score next to its random baseline, marked where the
difference is beyond two standard errors, and a verdict per row), the randomization-cascade figure,
and sentences generated from the numbers; :attr:`TrustSection.warnings` holds, per method, the
sentences its own section should carry where it scores below random on this run. Every string
taken from the file is escaped; the report recomputes nothing. The table's score columns, and what a
worse-than-random score means, are the registered families' metrics (:mod:`convlens.evaluation_registry`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from convlens.evaluation_registry import Metric, scored_metrics
from convlens.report.markdown import code, table, text

MARKS = {"above": " ✓", "below": " ✗", "level": ""}
CASCADE_NOTE = (
    "Each row shows one method's map of the first evaluated image from the trained model, then after each further "
    "stage is re-initialised, from the head down. A map that keeps its look while the weights are destroyed shows "
    "the image, not the model."
)
#: The issue's bar: every method should beat random maps on these, or the report says why not.
HEADLINE = ("pointing_game", "deletion_auc")
#: Spearman to the trained map after re-initialising the head above which a map "barely changes".
BARELY = 0.9


@dataclass(frozen=True)
class TrustSection:
    """The section's markdown ``body`` and, per method name, warnings for the method's own section."""

    body: str
    warnings: dict[str, list[str]] = field(default_factory=dict)


def scores_section(evaluation: dict[str, Any] | None, figure: str | None = None, run_label: str = "") -> TrustSection:
    """The section's scores for ``evaluation`` (None: not evaluated yet); ``figure`` is the report's link to the
    copied ``cascade.png`` (None: no figure)."""
    if evaluation is None:
        return TrustSection(f"The maps of this run are not evaluated yet: run `make evaluate RUN={run_label}`.")
    rows = [row for name, method in evaluation["methods"].items() for row in _rows(name, method)]
    parts = [_intro(evaluation), _table(evaluation, rows)]
    if figure:
        parts += ["### Randomization cascade", f"![Cascading model-parameter randomization]({figure})", CASCADE_NOTE]
    sentences = _observations(evaluation, rows)
    if sentences:
        parts += ["### What the numbers say", "\n".join(f"- {sentence}" for sentence in sentences)]
    parts += _left_out(evaluation)
    warnings = {name: _warnings(name, evaluation) for name in evaluation["methods"]}
    return TrustSection("\n\n".join(parts), {name: lines for name, lines in warnings.items() if lines})


@dataclass(frozen=True)
class Row:
    """One method-layer: its method's name and (escaped) title, the layer ('' for a single map), its records."""

    method: str
    title: str
    layer: str
    record: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.title} at {code(self.layer)}" if self.layer else self.title


def _rows(name: str, method: dict[str, Any]) -> list[Row]:
    return [Row(name, text(method["title"]), layer, record) for layer, record in method["layers"].items()]


def _intro(evaluation: dict[str, Any]) -> str:
    faith, rand, robust = (evaluation["settings"][key] for key in ("faithfulness", "randomization", "robustness"))
    masks = "against the ground-truth masks of the synthetic data, " if evaluation["masks"] else ""
    return (
        f"Each map the visualize stage drew is scored, on the {len(evaluation['images'])} test images its figures "
        f"show, {masks}by how much the class probability depends on the pixels it ranks first (deletion, insertion "
        f"over {faith['steps']} steps, ROAD), by how much it changes when the model's stages are re-initialised from "
        f"the head down (Adebayo et al. 2018; {rand['images']} images) and by how far it moves under input noise of "
        f"±{robust['radius']:g} ({robust['samples']} draws, {robust['images']} images). In parentheses: the same "
        "score of uniform random maps on the same images; ✓ marks a map better than random by more than two standard "
        "errors of the paired difference, ✗ one worse by as much; unmarked, the two cannot be told apart on these "
        "images. The randomization columns give the Spearman correlation and SSIM to the trained model's map after "
        f"re-initialising the head and after all stages (✗: still above {rand['similar_above']:g}, the map ignores "
        "the weights). `docs/trust.md` defines every metric."
    )


def _table(evaluation: dict[str, Any], rows: list[Row]) -> str:
    header = ["method", "layer", *(metric.label for _, metric in scored_metrics()),
              "Spearman head → all", "SSIM head → all", "verdict"]  # fmt: skip
    lines = [[row.title, code(row.layer) if row.layer else "-", *_score_cells(row.record), *_cascade_cells(row.record),
              _verdict(row.record)] for row in rows]  # fmt: skip
    chance = (evaluation["baselines"].get("localisation") or {}).get("chance")
    if chance is not None:
        cells = ["chance (mask area)", "", *([f"{chance:.2f}"] * 3), *([""] * (len(header) - 5))]
        lines.insert(0, cells)
    return table(header, lines)


def _score_cells(record: dict[str, Any]) -> list[str]:
    return [_cell(record.get(family, {}).get(metric.key)) for family, metric in scored_metrics()]


def _cell(score: dict[str, Any] | None) -> str:
    if not score or score.get("value") is None:
        return "-"
    return f"{score['value']:.2f} ({_number(score['baseline'])}){MARKS[score['verdict']]}"


def _cascade_cells(record: dict[str, Any]) -> list[str]:
    cascade = record.get("randomization")
    if not cascade:
        return ["-", "-"]
    mark = MARKS["below"] if cascade["verdict"] == "insensitive" else ""
    return [
        f"{_number(cascade['top'][name])} → {_number(cascade['full'][name])} ({_number(cascade['baseline'][name])})"
        + (mark if name == "spearman" else "")
        for name in ("spearman", "ssim")
    ]


def _verdict(record: dict[str, Any]) -> str:
    if record.get("flat", 0) >= 0.5:
        return f"no location: the map is flat on {record['flat']:.0%} of the images"
    checks = _checks(record)
    below = [label for label, verdict in checks if verdict in ("below", "insensitive")]
    level = [label for label, verdict in checks if verdict == "level"]
    if below:
        return "doubtful: worse than random on " + ", ".join(below)
    if level:
        return f"partly: better than random on {len(checks) - len(level)} of {len(checks)}; not on " + ", ".join(level)
    return f"supported: better than random on all {len(checks)} checks" if checks else "-"


def _checks(record: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, verdict) of every score the record has, the randomization cascade included."""
    checks = [(metric.label, record[family][metric.key]["verdict"]) for family, metric in scored_metrics()
              if metric.key in record.get(family, {})]  # fmt: skip
    if record.get("randomization", {}).get("verdict") in ("sensitive", "insensitive"):
        checks.append(("randomization", record["randomization"]["verdict"]))
    return checks


def _observations(evaluation: dict[str, Any], rows: list[Row]) -> list[str]:
    """What the table means: for the headline metrics (pointing game, deletion) how many maps beat random
    maps and why the others do not; for every other metric the maps worse than random; the cascade."""
    sentences = []
    for family, metric in scored_metrics():
        scored = [row for row in rows if row.record.get(family, {}).get(metric.key, {}).get("value") is not None]
        if scored and metric.key in HEADLINE:
            beat = sum(_score(row, family, metric.key)["verdict"] == "above" for row in scored)
            heading = metric.label[0].upper() + metric.label[1:]
            sentences.append(f"{heading}: {beat} of {len(scored)} maps score better than random maps.")
        sentences += _misses(evaluation, scored, family, metric)
    return sentences + _cascade(rows, evaluation["settings"]["randomization"])


def _misses(evaluation: dict[str, Any], rows: list[Row], family: str, metric: Metric) -> list[str]:
    """One sentence per reason: the maps that do not beat random maps on ``metric`` (headline metrics)
    or do worse (the others), with the reason the numbers give."""
    groups: dict[str, list[str]] = {}
    for row in rows:
        score = _score(row, family, metric.key)
        if score["verdict"] == "below" or (score["verdict"] == "level" and metric.key in HEADLINE):
            worse = ", worse" if score["verdict"] == "below" else ""
            reason = _why(evaluation, row, score, metric.worse, metric.key)
            groups.setdefault(reason, []).append(
                f"{row.label} ({score['value']:.2f} vs {score['baseline']:.2f}{worse})"
            )
    return [f"On {metric.label}, {', '.join(items)} {_do(items)} not beat random maps: {reason}."
            for reason, items in groups.items()]  # fmt: skip


def _do(subjects: list[str]) -> str:
    return "does" if len(subjects) == 1 else "do"


def _why(evaluation: dict[str, Any], row: Row, score: dict[str, Any], meaning: str, metric: str) -> str:
    """The most specific reason the numbers give for a score that does not beat random maps."""
    border = evaluation.get("border") or {}
    if row.record.get("flat", 0) >= 0.5:
        return (f"the map is flat on {row.record['flat']:.0%} of the images (the layer's output is too small at this "
                "input size to have a location)")  # fmt: skip
    if (row.record.get("peak_at_border") or 0) >= max(0.5, 2 * border.get("area", 1)):
        return (f"its peak lies within {border['pixels']} px of the image edge on {row.record['peak_at_border']:.0%} "
                f"of the images (a random peak: {border['area']:.0%}), away from the objects")  # fmt: skip
    if metric == "deletion_auc" and score["verdict"] == "level" and (curve := _deletion_curve(evaluation)):
        return curve
    if score["verdict"] == "below":
        return meaning
    return f"on these {score['images']} images the difference is within two standard errors"


def _deletion_curve(evaluation: dict[str, Any]) -> str | None:
    """Why deletion AUC hardly separates maps, when the random maps' curve says so."""
    curves = (evaluation["baselines"].get("faithfulness") or {}).get("curves")
    if not curves or None in curves["deletion"]:
        return None
    share, (start, first), floor = curves["shares"][1], curves["deletion"][:2], curves["deletion"][-1]
    if first <= start / 2:
        return (f"deleting even {share:.0%} of the pixels at random drops the class probability from {start:.2f} to "
                f"{first:.2f}, so scattered deletions alone take the images out of what the model knows")  # fmt: skip
    return (f"every curve, random ones too, settles near {floor:.2f} (the probability of an image with every pixel "
            "removed) within a few steps, which takes most of the area, and the differences over the first steps "
            "are within two standard errors on these images")  # fmt: skip


def _cascade(rows: list[Row], settings: dict[str, Any]) -> list[str]:
    cascaded = [row for row in rows if row.record.get("randomization")]
    sensitive = [row.label for row in cascaded if row.record["randomization"]["verdict"] == "sensitive"]
    sentences = [f"Randomization: the maps of {', '.join(sensitive)} lose their resemblance to the trained ones "
                 f"(Spearman below {settings['similar_above']:g} once every stage is re-initialised): they depend on "
                 "what the model learned."] if sensitive else []  # fmt: skip
    for row in cascaded:
        top, full = (row.record["randomization"][step]["spearman"] for step in ("top", "full"))
        if row.record["randomization"]["verdict"] == "insensitive":
            sentences.append(f"{row.label} still resembles its trained map with every stage re-initialised "
                             f"(Spearman {full:.2f}): it shows the structure of the image more than what the model "
                             "learned.")  # fmt: skip
        elif top is not None and top >= BARELY:
            sentences.append(f"{row.label} barely changes when the top layers are randomized (Spearman {top:.2f} "
                             f"after the head, {full:.2f} after all stages): it shows image edges more than what the "
                             "model uses to decide.")  # fmt: skip
    return sentences


def _score(row: Row, family: str, metric: str) -> dict[str, Any]:
    return row.record[family][metric]


def _left_out(evaluation: dict[str, Any]) -> list[str]:
    lines = [f"{text(method['title'])}: {family} left out, {text(reason)}" for method in evaluation["methods"].values()
             for family, reason in method["skipped"].items()]  # fmt: skip
    lines += [f"{code(name)}: not evaluated, {text(reason)}" for name, reason in evaluation["not_evaluated"].items()]
    return ["### Not evaluated", "\n".join(f"- {line}" for line in lines)] if lines else []


def _warnings(name: str, evaluation: dict[str, Any]) -> list[str]:
    """Sentences for a method's own section: every score below random on this run, and an insensitive
    randomization cascade."""
    method = evaluation["methods"][name]
    lines = []
    for row in _rows(name, method):
        where = f" at {code(row.layer)}" if row.layer else ""
        for family, metric in scored_metrics():
            score = row.record.get(family, {}).get(metric.key)
            if score and score["verdict"] == "below":
                lines.append(
                    f"On this run, {row.title}{where} scores below random maps on {metric.label} "
                    f"({score['value']:.2f} vs {score['baseline']:.2f}): "
                    f"{_why(evaluation, row, score, metric.worse, metric.key)}."
                )
        record = row.record.get("randomization")
        if record and record["verdict"] == "insensitive":
            lines.append(
                f"On this run, {row.title}{where} stays alike when every layer of the model is re-initialised "
                f"(Spearman {record['full']['spearman']:.2f}): it shows the image more than what the model learned."
            )
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
