"""The verdict rules that combine tests: randomization's sensitivity cell (judged against a threshold
and two references at once) and robustness read together with randomization."""

from __future__ import annotations

import pytest

from convlens.evaluate.randomization import sensitivity_mark, sensitivity_reason
from convlens.evaluate.verdicts import stable_for_a_reason

SUPPORTED = {"verdict": "supported", "why": "better than the edge detector's map on max-sensitivity"}


@pytest.mark.parametrize(
    ("threshold", "twin", "edges", "expected"),
    [
        ("above", "level", "level", "above"),  # changed, and no more alike than either reference: sensitive
        ("above", "above", "above", "above"),
        ("above", "below", "level", "below"),  # keeps more of itself than two randomised models share
        ("above", "level", "below", "below"),  # keeps more of itself than an edge map has of it
        ("level", "level", "level", "level"),  # not shown to change
        ("below", "above", "above", "below"),
        ("above", "too few images", "level", "too few images"),
    ],
)
def test_sensitivity_needs_a_change_and_no_excess_over_either_reference(
    threshold: str, twin: str, edges: str, expected: str
) -> None:
    assert sensitivity_mark({"threshold": threshold, "twin": twin, "edges": edges}) == expected


def test_robustness_counts_only_for_maps_that_depend_on_the_weights() -> None:
    insensitive = {"randomization": {"verdict": "not supported", "why": "no"}, "robustness": SUPPORTED}
    found = stable_for_a_reason(insensitive)["robustness"]
    assert found["verdict"] == "not supported" and "stable for free" in found["why"]
    for cascade in ("supported", "not tested"):
        verdicts = {"randomization": {"verdict": cascade, "why": ""}, "robustness": SUPPORTED}
        assert stable_for_a_reason(verdicts)["robustness"] == SUPPORTED


def _cell(threshold: str, twin: str, edges: str, verdict: str) -> dict:
    means = {"threshold": 0.5, "twin": 0.17, "edges": 0.1}
    marks = {"threshold": threshold, "twin": twin, "edges": edges}
    return {"value": 0.22, "verdict": verdict, "against": {name: {"mean": means[name], "mark": marks[name]}
                                                           for name in means}}  # fmt: skip


@pytest.mark.parametrize(
    ("marks", "verdict", "says"),
    [
        (("above", "level", "level"), "above", "no more than two randomised models' maps share (0.17)"),
        (("above", "below", "level"), "below", "more than two randomised models' maps share (0.17)"),
        (("above", "level", "below"), "below", "more than an edge map shares with it (0.10)"),
        (("below", "level", "level"), "below", "above 0.5: it hardly changes"),
        (("level", "level", "level"), "level", "not shown to lie below 0.5"),
    ],
)
def test_the_cascade_sentence_names_what_decided_it(marks: tuple[str, str, str], verdict: str, says: str) -> None:
    assert says in sensitivity_reason(_cell(*marks, verdict))
