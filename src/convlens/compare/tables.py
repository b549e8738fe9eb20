"""The comparison's tables: one row per architecture (accuracy, size, cost, time), and the trust scores
of every method per architecture next to their random baselines. Every number is read from the runs
(metrics.json, provenance.json, evaluation/evaluation.json) except FLOPs, which PyTorch's
``FlopCounterMode`` counts on one input; every string from a run is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import OmegaConf

from convlens.report.format import percent
from convlens.report.markdown import code, table, text
from convlens.report.model_table import model_rows
from convlens.report.run_data import RunData
from convlens.report.trust_verdicts import MARKS

#: The scores compared, by family: (family, metric, label); each cell is read at the method's deepest layer.
SCORES = (
    ("localisation", "pointing_game", "Pointing game (higher is better)"),
    ("faithfulness", "deletion_auc", "Deletion AUC (lower is better)"),
    ("faithfulness", "insertion_auc", "Insertion AUC (higher is better)"),
)


def flops(run: RunData) -> int:
    """FLOPs of one forward pass of the run's model on one input of its size (2 per multiply-add),
    counted by ``FlopCounterMode`` on a model built from the run's config (no weights are read)."""
    model = run.config.model
    if "weights" in model:
        model = OmegaConf.merge(model, {"weights": None})
    data = run.config.data
    return 2 * model_rows(model, int(data.channels), int(data.image_size))[-1].macs


def architecture_table(names: Sequence[str], runs: Sequence[RunData], trained: float) -> str:
    """One row per architecture: what it is, how well it classifies (flagged under-trained below ``trained``)
    and what it costs; then the models whose maps should not be compared, if any."""
    header = ("model", "architecture", "test accuracy", "parameters", "FLOPs per image", "epochs",
              "training time", "visualize", "evaluate")  # fmt: skip
    rows, weak = [], []
    for name, run in zip(names, runs, strict=True):
        metrics, stages = run.metrics, run.provenance.get("stages", {})
        accuracy = (metrics.get("test") or {}).get("acc")
        if accuracy is None or accuracy < trained:
            weak.append(code(name))
        shown = percent(accuracy) + ("" if code(name) not in weak else " **under-trained**")
        rows.append((
            code(name), text(metrics["model"]), shown,
            f"{metrics['parameters']:,}", f"{flops(run) / 1e6:,.1f} M", str(metrics["epochs"]),
            _seconds(metrics.get("train_seconds")), _seconds(stages.get("visualize")), _seconds(stages.get("evaluate")),
        ))  # fmt: skip
    size, channels = runs[0].config.data.image_size, runs[0].config.data.channels
    note = (
        f"Test accuracy of each run's best checkpoint (by validation accuracy); FLOPs of one {channels}x{size}x{size} "
        "input counted by PyTorch's FlopCounterMode (convolutions and matrix products, 2 per multiply-add); "
        "training time is the time spent in training epochs (metrics.json), visualize and evaluate the stage "
        "times in provenance.json."
    )
    advice = (
        "every model is: the maps below compare under-trained models, not architectures"
        if len(weak) == len(rows)
        else "their maps explain a weaker model, not the architecture; do not compare them with the others'"
    )
    warning = (
        [f"> **Under-trained:** {', '.join(weak)} (test accuracy under {trained:.0%}, `trained_accuracy`): {advice}. "
         "Train longer or with each model's own rate (`train_per_model`)."] if weak else []
    )  # fmt: skip
    return "\n\n".join([note, table(header, rows), *warning])


def trust_tables(names: Sequence[str], runs: Sequence[RunData]) -> str:
    """Per score a table, methods x architectures, each cell ``value (random baseline) mark``; then the
    randomization cascade's verdicts."""
    evaluations = [run.evaluation for run in runs]
    methods = list(dict.fromkeys(name for found in evaluations if found for name in found["methods"]))
    parts = []
    for family, metric, label in SCORES:
        rows = [[_title(method, evaluations), *(_score(found, method, family, metric) for found in evaluations)]
                for method in methods]  # fmt: skip
        if family == "localisation":
            rows.insert(0, ["chance (mask area)", *(_chance(found) for found in evaluations)])
        parts += [f"### {label}", table(["method", *map(code, names)], rows)]
    rows = [[_title(method, evaluations), *(_cascade(found, method) for found in evaluations)] for method in methods]
    note = ("Spearman correlation of the maps' magnitudes to the trained model's after re-initialising the head → "
            "after every stage, in parentheses between two independently randomised models' maps; then the verdict "
            "(`docs/trust.md`).")  # fmt: skip
    parts += ["### Randomization cascade", note, table(["method", *map(code, names)], rows)]
    return "\n\n".join(parts)


def headline(names: Sequence[str], runs: Sequence[RunData]) -> str:
    """Per architecture, how many maps beat random maps on the pointing game and on deletion AUC."""
    rows = []
    for name, run in zip(names, runs, strict=True):
        found = run.evaluation
        cells = [_beat(found, family, metric) for family, metric, _ in SCORES[:2]]
        rows.append([code(name), *cells, _sensitive(found)])
    header = ("model", "better than random: pointing game", "better than random: deletion AUC",
              "randomization: maps that depend on the weights")  # fmt: skip
    return table(header, rows)


def _deepest(evaluation: dict[str, Any] | None, method: str) -> tuple[str, dict[str, Any]] | None:
    """The method's last (deepest) layer and its record in ``evaluation``, or None."""
    layers = ((evaluation or {}).get("methods", {}).get(method) or {}).get("layers") or {}
    return list(layers.items())[-1] if layers else None


def _title(method: str, evaluations: Sequence[dict[str, Any] | None]) -> str:
    found = next(found for found in evaluations if found and method in found["methods"])
    return text(found["methods"][method]["title"])


def _score(evaluation: dict[str, Any] | None, method: str, family: str, metric: str) -> str:
    deepest = _deepest(evaluation, method)
    score = (deepest[1].get(family) or {}).get(metric) if deepest else None
    if not deepest or not score or score.get("value") is None:
        return "-"
    return f"{score['value']:.2f} ({score['baseline']:.2f}){MARKS[score['verdict']]}{_at(deepest[0])}"


def _at(layer: str) -> str:
    return f" at {code(layer)}" if layer else ""


def _chance(evaluation: dict[str, Any] | None) -> str:
    chance = ((evaluation or {}).get("baselines", {}).get("localisation") or {}).get("chance")
    return "-" if chance is None else f"{chance:.2f}"


def _cascade(evaluation: dict[str, Any] | None, method: str) -> str:
    deepest = _deepest(evaluation, method)
    cascade = deepest[1].get("randomization") if deepest else None
    if not cascade or cascade["full"]["spearman"] is None:
        return "-" if not cascade else text(cascade["verdict"])
    top, full, baseline = (cascade[key]["spearman"] for key in ("top", "full", "baseline"))
    return f"{_number(top)} → {full:.2f} ({_number(baseline)}) {text(cascade['verdict'])}{_at(deepest[0])}"


def _beat(evaluation: dict[str, Any] | None, family: str, metric: str) -> str:
    if evaluation is None:
        return "not evaluated"
    scores = [record[family][metric] for method in evaluation["methods"].values()
              for record in method["layers"].values() if metric in (record.get(family) or {})]  # fmt: skip
    return f"{sum(score['verdict'] == 'above' for score in scores)} of {len(scores)}" if scores else "-"


def _sensitive(evaluation: dict[str, Any] | None) -> str:
    if evaluation is None:
        return "not evaluated"
    verdicts = [record["randomization"]["verdict"] for method in evaluation["methods"].values()
                for record in method["layers"].values() if record.get("randomization")]  # fmt: skip
    return f"{verdicts.count('sensitive')} of {len(verdicts)}" if verdicts else "-"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"
