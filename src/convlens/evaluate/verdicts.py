"""The verdicts of a whole evaluation: every test of the table adjusted together, then one verdict per
family of metrics for each method and layer.

The family of tests held to the false discovery rate is the run's whole table: every metric cell
against each of its baselines (random maps, ``edges``, ``centre``) and every randomization cascade
against its threshold and references, adjusted together by Benjamini-Hochberg; a test is marked only when it
survives, and one on fewer than :data:`~convlens.evaluate.statistics.MIN_IMAGES` images never is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields
from typing import Any

from convlens.evaluate.randomization import (
    FIRST_STAGE,
    SENSITIVITY,
    cascade_mark,
    cascade_reason,
    cascade_verdict,
    sensitivity_mark,
)
from convlens.evaluate.statistics import FDR, MIN_IMAGES, PairedTest, adjust, mark
from convlens.evaluation_registry import FAMILIES, REFERENCES, scored_metrics

#: What the adjusted family of tests is, as ``evaluation.json`` states it.
TESTS_ADJUSTED = "every test of this run's table: each metric cell against each of its baselines, and each "
TESTS_ADJUSTED += "randomization cascade against its threshold (after the first stage and after all) and against the "
TESTS_ADJUSTED += "larger of its randomised twin's and the edge map's similarity"
LABELS = {metric.key: metric.label for _, metric in scored_metrics()}
LABELS |= {"sensitivity": "randomization", "first_stage": "randomization of the first stage"}


def adjust_table(methods: dict[str, Any]) -> dict[str, Any]:
    """Adjust the p-value of every test in ``methods`` (``evaluation.json``'s records, changed in place)
    together, mark each test and set each cell's ``verdict`` (and each cascade's) from the marks;
    returns the ``multiple_testing`` record."""
    tests = [test for cell in _cells(methods) for test in cell["against"].values()]
    for test, adjusted in zip(tests, adjust([test["p"] for test in tests]), strict=True):
        test["p_adjusted"] = adjusted
        test["mark"] = mark(PairedTest(**{field.name: test[field.name] for field in fields(PairedTest)}), adjusted)
    for cell in _cells(methods):
        cell["verdict"] = cell_verdict(cell)
    for record in _layers(methods):
        if "randomization" in record:
            record["randomization"]["verdict"] = cascade_verdict(record["randomization"])
    tested = sum(test["p"] is not None for test in tests)
    return {"method": "benjamini-hochberg", "q": FDR, "tests": tested, "family": TESTS_ADJUSTED}


def cell_verdict(cell: dict[str, Any]) -> str:
    """A cell's mark: against its ``reference`` baseline, or for randomization's sensitivity cell from all
    its tests (:func:`~convlens.evaluate.randomization.sensitivity_mark`)."""
    if cell.get("judged") == SENSITIVITY:
        return sensitivity_mark({name: test["mark"] for name, test in cell["against"].items()})
    return cell["against"][cell["reference"]]["mark"]


def add_family_verdicts(methods: dict[str, Any]) -> None:
    """Set ``verdicts`` (per registered family, :func:`family_verdict`) on every method's layer records,
    robustness read together with randomization (:func:`stable_for_a_reason`)."""
    for method in methods.values():
        for record in method["layers"].values():
            found = {
                family: family_verdict(_family_cells(record.get(family)), method["skipped"].get(family),
                                       spec.beyond_model_free)
                for family, spec in FAMILIES.items()
            }  # fmt: skip
            record["verdicts"] = stable_for_a_reason(found)


def stable_for_a_reason(verdicts: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
    """A map that does not depend on the weights is stable under input noise for free (a constant map is
    perfectly robust): robustness is supported only where randomization, when tested, is too."""
    robust, cascade = verdicts.get("robustness"), verdicts.get("randomization")
    if not robust or not cascade or robust["verdict"] != "supported" or cascade["verdict"] != "not supported":
        return verdicts
    why = f"{robust['why']}, but its maps are not shown to depend on the weights (randomization): stable for free"
    return verdicts | {"robustness": {"verdict": "not supported", "why": why}}


def family_verdict(
    cells: dict[str, dict[str, Any]], skipped: str | None, beyond_model_free: bool = False
) -> dict[str, str]:
    """One family's verdict on one map, from its cells' marks against their reference baseline (random
    maps; the edge map for robustness); randomization's from its two cascade cells (:func:`_cascade_verdict`).

    **supported**: better than the reference on at least one metric of the family after the table's
    adjustment, worse on none, and, ``beyond_model_free`` (faithfulness), worse than none of the cells' other
    baselines (the edge map, the centred blob) and better than each on at least one of those metrics; **not
    supported**: worse on one, better on none, beaten by a model-free map on one or matched by it on every metric
    it wins; **not tested**
    when the family left the method out (skipped is never support) or no cell has enough images.
    ``why`` says which metrics decided it."""
    if skipped:
        return {"verdict": "not tested", "why": skipped}
    if any(cell.get("judged") == SENSITIVITY for cell in cells.values()):
        return _cascade_verdict(cells)
    tested = {key: cell for key, cell in cells.items() if cell["verdict"] != "too few images"}
    if not tested:
        return {"verdict": "not tested", "why": f"too few images (fewer than {MIN_IMAGES} per cell)"}
    reference = REFERENCES.get(next(iter(tested.values()))["reference"], "its baseline")
    worse, better = ([LABELS.get(key, key) for key, cell in tested.items() if cell["verdict"] == side]
                     for side in ("below", "above"))  # fmt: skip
    if worse:
        return {"verdict": "not supported", "why": f"worse than {reference} on {', '.join(worse)}"}
    beaten_by = _beaten_by_model_free(tested) if beyond_model_free else ""
    if beaten_by:
        why = f"worse than {beaten_by}: a map that ignores the model ranks the pixels better there"
        return {"verdict": "not supported", "why": why}
    unbeaten = _unbeaten(tested) if beyond_model_free else []
    if better and unbeaten:
        why = (f"better than {reference} on {', '.join(better)}, but on none of them better than "
               f"{' or '.join(unbeaten)}: a map that ignores the model ranks the pixels as well")  # fmt: skip
        return {"verdict": "not supported", "why": why}
    if better:
        # The rule's other half said too: FER2013's "supported for 9 of 15 (better than random maps on ...)" read as
        # if the other 6 had not beaten random maps (a grader).
        beyond = ", and than each model-free map on at least one of them, worse than neither on any"
        why = f"better than {reference} on {', '.join(better)}{beyond if beyond_model_free else ''}"
        return {"verdict": "supported", "why": why}
    tried = ", ".join(LABELS.get(key, key) for key in tested)  # "on any metric" read oddly beside one metric
    return {"verdict": "not supported", "why": f"not shown better than {reference} on {tried}"}


def _beaten_by_model_free(cells: dict[str, dict[str, Any]]) -> str:
    """The model-free maps (baselines other than the reference) that are better than the map on some metric, each
    with its metrics ("the edge detector's map and the centred blob on ROAD"), or "" where none is. FER2013's
    Integrated Gradients beat random maps and both model-free maps on deletion, and both model-free maps beat it
    on ROAD: it had been called faithful."""
    metrics: dict[str, list[str]] = {}
    for key, cell in cells.items():
        for name, test in cell["against"].items():
            if name != cell["reference"] and test.get("mark") == "below":
                metrics.setdefault(name, []).append(LABELS.get(key, key))
    by_metrics: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(metrics):
        by_metrics.setdefault(tuple(metrics[name]), []).append(REFERENCES.get(name, name))
    return " and than ".join(f"{' and '.join(names)} on {', '.join(keys)}" for keys, names in by_metrics.items())


def _unbeaten(cells: dict[str, dict[str, Any]]) -> list[str]:
    """The baselines other than the reference (the model-free maps) that the map beats on none of the metrics
    where it beats the reference, as :data:`REFERENCES` names them."""
    winning = [cell for cell in cells.values() if cell["verdict"] == "above"]
    others = {name for cell in winning for name in cell["against"] if name != cell["reference"]}
    return [REFERENCES.get(name, name) for name in sorted(others)
            if not any(cell["against"].get(name, {}).get("mark") == "above" for cell in winning)]  # fmt: skip


def _cascade_verdict(cells: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Randomization's verdict from its sensitivity and first-stage cells, with what decided it."""
    sensitivity = next(cell for cell in cells.values() if cell.get("judged") == SENSITIVITY)
    first_stage = next((cell for cell in cells.values() if cell.get("judged") == FIRST_STAGE), None)
    mark = cascade_mark(sensitivity, first_stage)
    verdict = {"above": "supported", "too few images": "not tested"}.get(mark, "not supported")
    return {"verdict": verdict, "why": cascade_reason(sensitivity, first_stage)}


def _family_cells(record: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {key: cell for key, cell in (record or {}).items() if isinstance(cell, dict) and "against" in cell}


def _layers(methods: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for method in methods.values():
        yield from method["layers"].values()


def _cells(methods: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every tested cell of the table: a record with a test ``against`` each of its baselines."""
    for record in _layers(methods):
        for family in FAMILIES:
            yield from _family_cells(record.get(family)).values()
