"""The verdict rules that combine tests: randomization's cells (the full cascade judged against a
threshold and the larger reference at once, the first stage against the threshold) and robustness read
together with randomization."""

from __future__ import annotations

import pytest
import torch

from convlens.evaluate.best_layer import best_layer
from convlens.evaluate.randomization import (
    Cascade,
    RandomizationParams,
    cascade_mark,
    cascade_reason,
    cascade_verdict,
    randomization,
    sensitivity_mark,
)
from convlens.evaluate.verdicts import stable_for_a_reason
from convlens.report import trust_scores
from convlens.report.trust_scores import Row

SUPPORTED = {"verdict": "supported", "why": "better than the edge detector's map on max-sensitivity"}


@pytest.mark.parametrize(
    ("threshold", "structure", "expected"),
    [
        ("above", "level", "above"),  # changed, and within the margin of what structure gives: sensitive
        ("above", "above", "above"),
        ("above", "below", "below"),  # keeps more of itself than structure gives plus the margin
        ("level", "level", "level"),  # not shown to change
        ("below", "above", "below"),
        ("above", "too few images", "too few images"),
    ],
)
def test_sensitivity_needs_a_change_and_no_excess_over_the_reference(
    threshold: str, structure: str, expected: str
) -> None:
    assert sensitivity_mark({"threshold": threshold, "structure": structure}) == expected


@pytest.mark.parametrize(
    ("full", "first", "expected"),
    [
        ("above", "above", "above"),
        ("above", "level", "level"),  # the head alone not shown to change it: undecided, not sensitive
        ("above", "below", "below"),  # alike after the head alone: it does not show what tells the classes apart
        ("level", "below", "below"),
        ("too few images", "below", "too few images"),
        ("level", "above", "level"),
        ("below", "above", "below"),
    ],
)
def test_a_map_the_head_leaves_alike_is_insensitive(full: str, first: str, expected: str) -> None:
    assert cascade_mark({"verdict": full}, {"verdict": first}) == expected


def test_robustness_counts_only_for_maps_that_depend_on_the_weights() -> None:
    insensitive = {"randomization": {"verdict": "not supported", "why": "no"}, "robustness": SUPPORTED}
    found = stable_for_a_reason(insensitive)["robustness"]
    assert found["verdict"] == "not supported" and "stable for free" in found["why"]
    for cascade in ("supported", "not tested"):
        verdicts = {"randomization": {"verdict": cascade, "why": ""}, "robustness": SUPPORTED}
        assert stable_for_a_reason(verdicts)["robustness"] == SUPPORTED


def _cells(threshold: str, structure: str, verdict: str, first: str = "above") -> tuple[dict, dict]:
    means = {"threshold": 0.5, "structure": 0.27}
    marks = {"threshold": threshold, "structure": structure}
    against = {name: {"mean": means[name], "mark": marks[name], "p_adjusted": 0.07} for name in means}
    sensitivity = {"value": 0.22, "verdict": verdict, "margin": 0.1, "against": against}
    return sensitivity, {"value": 0.93, "verdict": first, "against": {"threshold": {"mean": 0.5, "p_adjusted": 0.3}}}


@pytest.mark.parametrize(
    ("marks", "verdict", "says"),
    [
        (("above", "level"), "above", "within 0.1 of what two randomised models' maps or an edge map share (0.27"),
        (("above", "below"), "below", "an edge map's similarity plus 0.1 (0.27): part of it survives"),
        (("below", "level"), "below", "above 0.5: it hardly changes"),
        (
            ("level", "level"),
            "level",
            "keeps Spearman 0.22 to the trained one (below 0.5 on average, but not "
            "significantly either way: adjusted p = 0.07)",
        ),
        (
            ("above", "level", "below"),
            "above",
            "the head re-initialised its map keeps Spearman 0.93, above 0.5: it shows what the lower layers respond "
            "to, not what tells the classes apart",
        ),
        (
            ("above", "level", "level"),
            "above",
            "keeps Spearman 0.93 (above 0.5 on average, but not significantly "
            "either way: adjusted p = 0.3): whether it shows what tells the classes apart is undecided",
        ),
    ],
)
def test_the_cascade_sentence_names_what_decided_it(marks: tuple[str, ...], verdict: str, says: str) -> None:
    assert says in cascade_reason(*_cells(*marks[:2], verdict, *marks[2:]))


@pytest.mark.parametrize(
    ("first", "says"),
    [("above", "lose their resemblance"), ("level", "not shown to depend"), ("below", "not shown to depend")],
)
def test_the_report_sentence_flips_with_the_first_stage(first: str, says: str) -> None:
    """The report's randomization sentence follows the verdict: one map, its full cascade sensitive, the
    head alone leaving it alike or not."""
    sensitivity, first_stage = _cells("above", "level", "above", first)
    record = {"sensitivity": sensitivity, "first_stage": first_stage, "full": {"spearman": 0.22}}
    record["verdict"] = cascade_verdict(record)
    why = {"verdict": "", "why": cascade_reason(sensitivity, first_stage)}
    row = Row("guided_backprop", "Guided backprop", "", {"randomization": record, "verdicts": {"randomization": why}})
    sentences = " ".join(trust_scores._cascade([row], {"similar_above": 0.5, "margin": 0.1}))
    assert says in sentences and "Guided backprop" in sentences


def test_a_map_that_turns_flat_under_the_cascade_counts_as_changed() -> None:
    """A randomised CAM with no positive evidence anywhere is flat: its Spearman to the structured trained
    map is 0, so the image stays in the cells (n = 16) instead of leaving them with a NaN."""
    generator = torch.Generator().manual_seed(0)
    trained = torch.rand(16, 8, 8, generator=generator)
    flat_after = torch.rand(16, 8, 8, generator=generator)
    flat_after[:5] = 0.0
    steps = [{"absolute": trained + 0.01 * flat_after}, {"absolute": flat_after}]
    twin = {"absolute": torch.rand(16, 8, 8, generator=generator)}
    record = randomization(Cascade({"absolute": trained}, steps, twin, torch.rand(16, 8, 8)), RandomizationParams(
        stages=["head", "layer1"]))  # fmt: skip
    assert record["sensitivity"]["against"]["threshold"]["n"] == 16
    assert record["sensitivity"]["against"]["structure"]["n"] == 16
    assert record["verdict"] == "insensitive"  # the head alone leaves it alike
    assert record["flattened"] == [0, 5]
    row = Row("grad_cam", "Grad-CAM", "layer3", {"randomization": record})
    assert trust_scores._flattened([row]) == [
        "Maps the cascade turns flat (zero or constant where the trained map was not), on how many of 16 images "
        "after re-initialising `head`, `layer1` in turn: Grad-CAM at `layer3` 0, 5. Each counts as Spearman 0 "
        "(nothing left of what it showed), so part of those maps' fall in similarity is the map going blank, not "
        "moving."
    ]
    steps[1]["absolute"] = torch.rand(16, 8, 8, generator=generator)  # nothing flat: no sentence
    record = randomization(Cascade({"absolute": trained}, steps, twin, torch.rand(16, 8, 8)), RandomizationParams(
        stages=["head", "layer1"]))  # fmt: skip
    assert trust_scores._flattened([Row("grad_cam", "Grad-CAM", "layer3", {"randomization": record})]) == []
    trained[0] = 0.0  # a flat trained map has nothing to compare: that image leaves the cell
    record = randomization(Cascade({"absolute": trained}, steps, twin, torch.rand(16, 8, 8)), RandomizationParams(
        stages=["head", "layer1"]))  # fmt: skip
    assert record["sensitivity"]["against"]["threshold"]["n"] == 15


def _layer(supported: int, failed: int, pointing: float | None = None) -> dict:
    verdicts = ["supported"] * supported + ["not supported"] * failed + ["not tested"] * (4 - supported - failed)
    families = ("localisation", "faithfulness", "randomization", "robustness")
    record: dict = {
        "verdicts": {family: {"verdict": verdict} for family, verdict in zip(families, verdicts, strict=True)}
    }
    if pointing is not None:
        record["localisation"] = {"pointing_game": {"value": pointing}}
    return record


def _worse_than_centre() -> dict:
    against = {"random": {"mark": "above"}, "edges": {"mark": "level"}, "centre": {"mark": "below"}}
    return {"faithfulness": {"road": {"verdict": "above", "against": against}}}


def _less_steady_than_edges() -> dict:
    cell = {"verdict": "below", "reference": "edges", "against": {"edges": {"mark": "below"}}}
    return {"robustness": {"max_sensitivity": cell}}


def _alike(value: float) -> dict:
    return {"alike_across_images": {"value": value, "repeats": None}}


@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ({"layer2": _layer(3, 1), "layer3": _layer(1, 3), "layer4": _layer(2, 2)}, "layer2"),  # most supported
        ({"layer2": _layer(2, 2), "layer3": _layer(2, 0), "layer4": _layer(1, 0)}, "layer3"),  # then fewest failed
        (
            {"layer2": _layer(2, 1, 0.5), "layer3": _layer(2, 1, 0.9) | {"randomization": {"verdict": "insensitive"}}},
            "layer2",
        ),  # then the fewest shown to fail (demo_shapes' LayerCAM: layer3 insensitive, layer2 undecided)
        (
            {"layer3": _layer(2, 1, 0.5), "layer4": _layer(2, 1, 0.9) | {"alike_across_images": {"repeats": True}}},
            "layer3",
        ),  # maps that repeat a pattern are shown to fail (demo_faces' Grad-CAM at layer4.relu2: the face's outline)
        (
            {"layer2": _layer(2, 1) | _alike(0.13) | _worse_than_centre(), "layer4": _layer(2, 1) | _alike(0.64)},
            "layer4",
        ),  # shown worse than a model-free map is shown to fail (FER2013's Grad-CAM at layer2.relu2: the centred blob)
        (
            {
                "layer2": _layer(2, 1) | {"faithfulness": {"road": {"verdict": "below", "reference": "random"}}},
                "layer3": _layer(2, 1) | _less_steady_than_edges(),
            },
            "layer3",
        ),  # max-sensitivity's reference is the edge map: worse than it counts once, a tie, then the deeper layer
        ({"layer2": _layer(2, 1, 0.9), "layer3": _layer(2, 1, 0.5)}, "layer2"),  # then the pointing game
        (
            {"layer2": _layer(2, 1) | _alike(0.13), "layer4": _layer(2, 1) | _alike(0.64)},
            "layer2",
        ),  # then the maps less alike across images (FER2013's Grad-CAM: the same blob on every face at layer4.relu2)
        ({"layer2": _layer(2, 1), "layer3": _layer(2, 1)}, "layer3"),  # then the deeper layer
    ],
)
def test_the_figures_show_the_layer_the_evaluation_supports_best(layers: dict, expected: str) -> None:
    """A CAM worse than random at its deepest layer is not the one the comparison shows."""
    found = best_layer(layers)
    assert found is not None and found["layer"] == expected
    assert found["why"].startswith(f"{len(found['supported'])} of 4 families supported")
    assert best_layer({"": _layer(4, 0)}) is None


def _faithfulness_cell(random: str, centre: str) -> dict:
    against = {"random": {"mark": random}, "edges": {"mark": "above"}, "centre": {"mark": centre}}
    return {"reference": "random", "verdict": random, "against": against}


def test_faithfulness_is_supported_only_beyond_the_maps_that_ignore_the_model() -> None:
    """FER2013: Grad-CAM at layer3 beat random maps on deletion, insertion and ROAD, and a centred blob did as
    well on all three; the map was called faithful and trusted. Beating random maps is not enough where a map
    that ignores the model ranks the pixels as well; one metric beyond every model-free map is."""
    from convlens.evaluate.verdicts import family_verdict

    matched = {"deletion_auc": _faithfulness_cell("above", "level"), "road": _faithfulness_cell("above", "level")}
    found = family_verdict(matched, None, beyond_model_free=True)
    assert found["verdict"] == "not supported" and found["why"] == (
        "better than random maps on deletion AUC, ROAD, but on none of them better than the centred blob: a map "
        "that ignores the model ranks the pixels as well"
    )
    assert family_verdict(matched, None)["verdict"] == "supported", "localisation keeps random maps as its bar"
    matched["road"] = _faithfulness_cell("above", "above")
    assert family_verdict(matched, None, beyond_model_free=True) == {
        "verdict": "supported", "why": "better than random maps on deletion AUC, ROAD, and than each model-free map on "
        "at least one of them, worse than neither on any"}  # fmt: skip
    matched["road"] = _faithfulness_cell("level", "above")  # beyond the blob only where it does not beat random maps
    assert family_verdict(matched, None, beyond_model_free=True)["verdict"] == "not supported"


def test_faithfulness_is_not_supported_where_a_map_that_ignores_the_model_ranks_the_pixels_better() -> None:
    """FER2013's Integrated Gradients beat random maps and both model-free maps on deletion, and both model-free
    maps beat it on ROAD: it was called faithful (a grader). A model-free map better on one metric refutes it."""
    from convlens.evaluate.verdicts import family_verdict

    cells = {"deletion_auc": _faithfulness_cell("above", "above"), "road": _faithfulness_cell("level", "below")}
    cells["road"]["against"]["edges"]["mark"] = "below"
    assert family_verdict(cells, None, beyond_model_free=True) == {
        "verdict": "not supported",
        "why": "worse than the centred blob and the edge detector's map on ROAD: a map that ignores the model ranks "
        "the pixels better there",
    }
    cells["deletion_auc"]["against"]["centre"]["mark"] = "below"
    assert family_verdict(cells, None, beyond_model_free=True)["why"].startswith(
        "worse than the centred blob on deletion AUC, ROAD and than the edge detector's map on ROAD: "
    )
    assert family_verdict(cells, None)["verdict"] == "supported", "localisation keeps random maps as its bar"
    cells["road"] = _faithfulness_cell("level", "level")
    assert family_verdict(cells, None, beyond_model_free=True)["verdict"] == "not supported"
    cells["deletion_auc"]["against"]["centre"]["mark"] = "above"
    assert family_verdict(cells, None, beyond_model_free=True)["verdict"] == "supported"


def test_a_family_won_on_no_metric_names_the_metrics_it_was_tried_on() -> None:
    """Robustness has one metric: "no better than the edge detector's map on any metric" read oddly (a grader)."""
    from convlens.evaluate.verdicts import family_verdict

    level = {"reference": "edges", "verdict": "level", "against": {"edges": {"mark": "level"}}}
    why = "not shown better than the edge detector's map on max-sensitivity"
    assert family_verdict({"max_sensitivity": level}, None) == {"verdict": "not supported", "why": why}
