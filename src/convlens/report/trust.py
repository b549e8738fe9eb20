"""The report section "How far can we trust these maps?", from the run's ``evaluation/evaluation.json``.

It holds one table (method x layer: every score next to its random baseline, marked where the
difference is beyond two standard errors, and a verdict per row), the randomization-cascade figure,
and sentences generated from the numbers; :attr:`TrustSection.warnings` holds, per method, the
sentences its own section should carry where it scores below random on this run. Every string
taken from the file is escaped; the report recomputes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convlens.report.markdown import code, table, text

#: Where the evaluate stage writes, relative to the run directory.
EVALUATION_JSON = Path("evaluation") / "evaluation.json"
#: Scores as the table names them, by family, with what a worse-than-random result means.
METRICS = {
    "localisation": {
        "pointing_game": ("pointing game", "its peak lies on the class evidence less often than a random map's"),
        "relevance_mass": ("relevance mass", "less of its mass lies on the class evidence than a random map's"),
        "rank_accuracy": ("rank accuracy", "fewer of its top pixels lie on the class evidence than a random map's"),
    },
    "faithfulness": {
        "deletion_auc": ("deletion AUC", "deleting its top pixels lowers the class probability more slowly than "
                         "deleting random pixels"),
        "insertion_auc": ("insertion AUC", "inserting its top pixels restores the class probability more slowly "
                          "than inserting random pixels"),
        "road": ("ROAD", "removing its top pixels (with debiased imputation) hurts the prediction less than "
                 "removing random pixels"),
    },
    "robustness": {"max_sensitivity": ("max-sensitivity", "it moves more under small input noise than a random map")},
}  # fmt: skip
MARKS = {"above": " ✓", "below": " ✗", "level": ""}
CASCADE_NOTE = (
    "Each row shows one method's map of the first evaluated image from the trained model, then after each further "
    "stage is re-initialised, from the head down. A map that keeps its look while the weights are destroyed shows "
    "the image, not the model."
)
#: Spearman to the trained map after re-initialising the head above which a map "barely changes".
BARELY = 0.9


@dataclass(frozen=True)
class TrustSection:
    """The section's markdown ``body`` and, per method name, warnings for the method's own section."""

    body: str
    warnings: dict[str, list[str]] = field(default_factory=dict)


def read_evaluation(run_root: str | Path) -> dict[str, Any] | None:
    """The run's evaluation results; None before `make evaluate`."""
    path = Path(run_root) / EVALUATION_JSON
    return json.loads(path.read_text()) if path.is_file() else None


def trust_section(evaluation: dict[str, Any] | None, figure: str | None = None, run_label: str = "") -> TrustSection:
    """The section for ``evaluation`` (None: not evaluated yet); ``figure`` is the report's link to the
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
    header = ["method", "layer", *(label for family in METRICS.values() for label, _ in family.values()),
              "Spearman head → all", "SSIM head → all", "verdict"]  # fmt: skip
    lines = [[row.title, code(row.layer) if row.layer else "-", *_score_cells(row.record), *_cascade_cells(row.record),
              _verdict(row.record)] for row in rows]  # fmt: skip
    chance = (evaluation["baselines"].get("localisation") or {}).get("chance")
    if chance is not None:
        cells = ["chance (mask area)", "", *([f"{chance:.2f}"] * 3), *([""] * (len(header) - 5))]
        lines.insert(0, cells)
    return table(header, lines)


def _score_cells(record: dict[str, Any]) -> list[str]:
    return [_cell(record.get(family, {}).get(metric)) for family, metrics in METRICS.items() for metric in metrics]


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
    checks = [(label, record[family][metric]["verdict"]) for family, metrics in METRICS.items()
              for metric, (label, _) in metrics.items() if metric in record.get(family, {})]  # fmt: skip
    if record.get("randomization", {}).get("verdict") in ("sensitive", "insensitive"):
        checks.append(("randomization", record["randomization"]["verdict"]))
    return checks


def _observations(evaluation: dict[str, Any], rows: list[Row]) -> list[str]:
    """Sentences that say what the table means: per family, which maps beat random and why others do not."""
    settings = evaluation["settings"]
    sentences = _pointing(rows) + _deletion(evaluation, rows) + _cascade(rows, settings["randomization"])
    sentences += _robustness(rows, settings["robustness"]["radius"])
    return sentences + [line for name in evaluation["methods"] for line in _warnings(name, evaluation, cascade=False)]


def _pointing(rows: list[Row]) -> list[str]:
    scored = [row for row in rows if "localisation" in row.record]
    if not scored:
        return []
    misses = [row for row in scored if _score(row, "localisation", "pointing_game")["verdict"] != "above"]
    best = max(scored, key=lambda row: _score(row, "localisation", "pointing_game")["value"] or 0)
    game = _score(best, "localisation", "pointing_game")
    sentences = [
        f"Pointing game: {len(scored) - len(misses)} of {len(scored)} maps put their peak on the class evidence more "
        f"often than random maps; {best.label} most often ({game['value']:.0%} of the images, chance "
        f"{game['chance']:.0%})."
    ]
    for row in misses:
        game = _score(row, "localisation", "pointing_game")
        sentences.append(f"{row.label} hits the class evidence no more often than random maps ({game['value']:.0%} vs "
                         f"{game['baseline']:.0%}): {_why(row, game)}.")  # fmt: skip
    return sentences


def _deletion(evaluation: dict[str, Any], rows: list[Row]) -> list[str]:
    """Which maps' deletion curves beat random ones, and for the others, what the curves show."""
    scored = [row for row in rows if "faithfulness" in row.record]
    misses = [row for row in scored if _score(row, "faithfulness", "deletion_auc")["verdict"] != "above"]
    if not scored:
        return []
    flat = [row for row in misses if row.record.get("flat", 0) >= 0.5]
    sentences = [f"Deletion: {len(scored) - len(misses)} of {len(scored)} maps lower the class probability faster "
                 "than random maps.", *(f"{row.label} does not: {_why(row, {})}." for row in flat)]  # fmt: skip
    others = [row for row in misses if row not in flat]
    if others:
        sentences.append(_deletion_why(evaluation, others))
    return sentences


def _deletion_why(evaluation: dict[str, Any], rows: list[Row]) -> str:
    random = evaluation["baselines"]["faithfulness"]["curves"]
    share, start, first, floor = (
        random["shares"][1],
        random["deletion"][0],
        random["deletion"][1],
        random["deletion"][-1],
    )
    listed = ", ".join(f"{row.label} ({_score(row, 'faithfulness', 'deletion_auc')['value']:.2f} vs "
                       f"{_score(row, 'faithfulness', 'deletion_auc')['baseline']:.2f})" for row in rows)  # fmt: skip
    faster = [row for row in rows if (row.record["faithfulness"]["curves"]["deletion"][1] or 1) < first]
    images = max(_score(row, "faithfulness", "deletion_auc")["images"] for row in rows)
    if first <= start / 2:
        why = (f"deleting even {share:.0%} of the pixels at random drops the probability from {start:.2f} to "
               f"{first:.2f}: scattered deletions alone take the images out of what the model knows")  # fmt: skip
    else:
        why = (f"{len(faster)} of them fall faster than random over the first {share:.0%} of the pixels (random: "
               f"{start:.2f} to {first:.2f}), but every curve then settles near {floor:.2f}, the probability of an "
               "image with every pixel removed, which takes most of the area")  # fmt: skip
    return (f"Deletion AUC cannot tell {listed} from random maps on these {images} images: {why}; the rest of the "
            "difference is within two standard errors.")  # fmt: skip


def _cascade(rows: list[Row], settings: dict[str, Any]) -> list[str]:
    cascaded = [row for row in rows if row.record.get("randomization")]
    sensitive = [row.label for row in cascaded if row.record["randomization"]["verdict"] == "sensitive"]
    sentences = [f"Randomization: the maps of {', '.join(sensitive)} lose their resemblance to the trained ones "
                 f"(Spearman below {settings['similar_above']:g} once every stage is re-initialised): they depend on "
                 "what the model learned."] if sensitive else []  # fmt: skip
    for row in cascaded:
        cascade = row.record["randomization"]
        top, full = cascade["top"]["spearman"], cascade["full"]["spearman"]
        if full is not None and full >= settings["similar_above"]:
            sentences.append(f"{row.label} still resembles its trained map with every stage re-initialised "
                             f"(Spearman {full:.2f}): it shows the structure of the image more than what the model "
                             "learned.")  # fmt: skip
        elif top is not None and top >= BARELY:
            sentences.append(f"{row.label} barely changes when the top layers are randomized (Spearman {top:.2f} "
                             f"after the head, {full:.2f} after all stages): it shows image edges more than what the "
                             "model uses to decide.")  # fmt: skip
    return sentences


def _robustness(rows: list[Row], radius: float) -> list[str]:
    scored = [row for row in rows if "robustness" in row.record]
    stable = [row.label for row in scored if _score(row, "robustness", "max_sensitivity")["verdict"] == "above"]
    unclear = [f"{row.label} ({_number(score['value'])} vs {_number(score['baseline'])})" for row in scored
               if (score := _score(row, "robustness", "max_sensitivity"))["verdict"] != "above"]  # fmt: skip
    sentences = [f"Under input noise of ±{radius:g}, {', '.join(stable)} move less than random maps."] if stable else []
    if unclear:
        sentences.append(f"Max-sensitivity cannot tell {', '.join(unclear)} from a map drawn at random on "
                         f"{_score(scored[0], 'robustness', 'max_sensitivity')['images']} images.")  # fmt: skip
    return sentences


def _score(row: Row, family: str, metric: str) -> dict[str, Any]:
    return row.record[family][metric]


def _why(row: Row, score: dict[str, Any]) -> str:
    if row.record.get("flat", 0) >= 0.5:
        return (f"the map is flat on {row.record['flat']:.0%} of the images (the layer's output is too small at this "
                "input size to have a location), so it carries no position at all")  # fmt: skip
    return (f"on these {score['images']} images the difference is within two standard errors "
            f"({_number(score['se'])} for the map, {_number(score['baseline_se'])} for random maps)")  # fmt: skip


def _left_out(evaluation: dict[str, Any]) -> list[str]:
    lines = [f"{text(method['title'])}: {family} left out, {text(reason)}" for method in evaluation["methods"].values()
             for family, reason in method["skipped"].items()]  # fmt: skip
    lines += [f"{code(name)}: not evaluated, {text(reason)}" for name, reason in evaluation["not_evaluated"].items()]
    return ["### Not evaluated", "\n".join(f"- {line}" for line in lines)] if lines else []


def _warnings(name: str, evaluation: dict[str, Any], cascade: bool = True) -> list[str]:
    """Sentences for a method's own section: every score below random on this run, and (``cascade``) an
    insensitive randomization cascade."""
    method = evaluation["methods"][name]
    lines = []
    for row in _rows(name, method):
        where = f" at {code(row.layer)}" if row.layer else ""
        for family, metrics in METRICS.items():
            for metric, (label, meaning) in metrics.items():
                score = row.record.get(family, {}).get(metric)
                if score and score["verdict"] == "below":
                    lines.append(
                        f"On this run, {row.title}{where} scores below random maps on {label} "
                        f"({score['value']:.2f} vs {score['baseline']:.2f}): {meaning}."
                    )
        record = row.record.get("randomization")
        if cascade and record and record["verdict"] == "insensitive":
            lines.append(
                f"On this run, {row.title}{where} stays alike when every layer of the model is re-initialised "
                f"(Spearman {record['full']['spearman']:.2f}): it shows the image more than what the model learned."
            )
    return lines


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
