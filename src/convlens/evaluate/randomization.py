"""Model-parameter randomization (Adebayo et al. 2018, "Sanity checks for saliency maps"): the
stages of a copy of the model are re-initialised one after another from the head down, and each
method's maps are computed again after every stage; a map that stays alike while the weights that
make the model what it is are destroyed does not show what the model uses.

Re-initialising follows Quantus 0.6's ``MPRT`` exactly: every module with ``reset_parameters``
(convolutions, batch norms, linear layers) is reset after seeding torch with ``seed + 1``; so the
model after a stage here is Quantus's model after that stage's last module, and their similarities
agree (``tests/test_evaluate_quantus.py``). Similarity is the Spearman rank correlation (and SSIM) of
the maps' magnitudes, as Adebayo et al. and Quantus compare them; the signed maps (gradient x input,
Integrated Gradients) and CAMs at their layer's own resolution are reported beside.

Two maps of the same image agree to some degree whatever the weights: the image's structure and the
architecture shape them (two independently randomised models' saliency maps agree at about 0.4, their
deep LayerCAMs at 0.9). Two references measure that share, per image: the similarity of the maps of two
independently randomised models (the ``twin`` cascade, seeded with ``seed + 1``) and the similarity of
the trained map to the image's Sobel edge map (``edges``, a detector without a model). Each is a share
of similarity that needs no learned weight, so the larger of the two (floored at 0: a negative
correlation explains nothing) is what a map may keep and still be called changed.

A map is *sensitive* to the weights when, tested per image, (1) its similarity to the fully randomised
model's map lies below ``similar_above``, (2) it is not above that larger reference by more than
``margin`` (a few hundredths of Spearman over what structure gives are significant on 16 images but mean
nothing), and (3) its similarity after re-initialising the first stage alone (the head, the
class-specific weights) lies below ``similar_above`` too: a map that survives the head shows what the
lower layers respond to rather than what tells the classes apart, however much the lower layers'
randomization later changes it (Adebayo et al.'s finding for guided backprop), so (3) must be shown like
(1), not merely not refuted. It is *insensitive* when any of the three fails with significance,
*undecided* otherwise. "Not above" rather than "significantly below" is asked of the references, because
where randomised models' maps share no structure (``tests/test_evaluate_planted.py``) no similarity can
lie significantly below about 0, though the map provably depends on the weights (``docs/trust.md``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from convlens.evaluate.scores import mean_of, scores
from convlens.evaluate.similarity import is_flat, similarities, spearman
from convlens.evaluate.statistics import MIN_IMAGES
from convlens.registry import costly_methods

#: The named stages of every convlens model, from the head down.
STAGES = ("head", "layer4", "layer3", "layer2", "layer1", "stem")


@dataclass(frozen=True)
class RandomizationParams:
    """The cascade re-initialises ``stages`` in this order (cumulatively) on the first ``images``
    images of the evaluation's sample, seeded like Quantus's MPRT by ``seed`` (its twin by ``seed + 1``);
    methods in ``skip`` (default: those registered ``costly``, whose maps cost too much to compute
    once per stage) are left out, with that reason recorded. A map whose Spearman correlation to the
    trained map after the full cascade is not tested below ``similar_above`` has not changed enough to
    be called sensitive."""

    images: int = 16
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    seed: int = 42
    skip: list[str] = field(default_factory=costly_methods)
    similar_above: float = 0.5
    margin: float = 0.1

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin={self.margin}: give a Spearman difference in [0, 1)")
        if self.images < 1:
            raise ValueError(f"images={self.images} must be >= 1")
        if not self.stages or len(set(self.stages)) != len(self.stages):
            raise ValueError(f"stages={self.stages}: name each stage once, e.g. {list(STAGES)}")


def reset_stage(model: nn.Module, stage: str, seed: int) -> None:
    """Re-initialise every module of ``stage`` that has ``reset_parameters``, as Quantus's MPRT does
    (bottom module first, torch seeded with ``seed + 1`` before each), without touching the global
    random state."""
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for _, module in reversed(list(model.get_submodule(stage).named_modules())):
            if hasattr(module, "reset_parameters"):
                torch.manual_seed(seed + 1)
                module.reset_parameters()


def cascade(model: nn.Module, stages: list[str], seed: int) -> Iterator[tuple[str, nn.Module]]:
    """A copy of ``model`` with one more of ``stages`` re-initialised at every step (eval mode)."""
    randomized = copy.deepcopy(model).eval()
    for stage in stages:
        reset_stage(randomized, stage, seed)
        yield stage, randomized


def check_stages(model: nn.Module, stages: list[str]) -> None:
    """A ``ValueError`` naming the setting when a stage is not a submodule of the model."""
    names = {name for name, _ in model.named_children()}
    unknown = [stage for stage in stages if stage not in names]
    if unknown:
        raise ValueError(f"evaluate.randomization.stages: unknown stage(s) {unknown}; the model has {sorted(names)}")


#: Views of a map: magnitudes (tested), and the signed map and a CAM at its layer's size (reported).
TESTED_VIEW = "absolute"


@dataclass(frozen=True)
class Cascade:
    """One method-layer's maps on the cascade's images, per view (each (B, h, w)): the trained model's,
    after each step of the cascade, and after the twin's full cascade; and the images' edge maps."""

    trained: dict[str, Tensor]
    steps: list[dict[str, Tensor]]
    twin: dict[str, Tensor]
    edges: Tensor


def randomization(cascade: Cascade, params: RandomizationParams) -> dict[str, Any]:
    """The JSON record of one method-layer: mean Spearman and SSIM of the maps' magnitudes after each
    cascade step to the trained ones, the references (``baseline``: the twin's similarity to the
    randomised maps; ``edges``: the edge map's to the trained ones), the similarity after the first step
    (``top``) and after all (``full``), per step the images whose map turned flat (``flattened``: structured
    when trained, scored Spearman 0, see :func:`_flat_shares_nothing`), the other ``views`` (Spearman per step
    and of the twin), two
    tested cells (lower is better) and the verdict (:func:`cascade_verdict`, final once the table is
    adjusted): ``sensitivity``, the per-image Spearman after the full cascade against the threshold and
    against ``structure`` (per image the larger reference floored at 0, plus the margin), judged by
    :func:`sensitivity_mark`; ``first_stage``, the Spearman after the first stage alone against the threshold."""
    trained, full = cascade.trained[TESTED_VIEW], cascade.steps[-1][TESTED_VIEW]
    structured = ~is_flat(trained)
    per_step = [_flat_shares_nothing(similarities(trained, step[TESTED_VIEW]), structured) for step in cascade.steps]
    twin = _flat_shares_nothing(similarities(full, cascade.twin[TESTED_VIEW]), structured)
    edges = _flat_shares_nothing(similarities(trained, cascade.edges), structured)
    record: dict[str, Any] = {"stages": list(params.stages)}
    for name in ("spearman", "ssim"):
        record[name] = [mean_of(step[name]) for step in per_step]
    record["baseline"] = {name: mean_of(values) for name, values in twin.items()}
    record["edges"] = {name: mean_of(values) for name, values in edges.items()}
    record["flattened"] = [int((structured & is_flat(step[TESTED_VIEW])).sum()) for step in cascade.steps]
    record["top"] = {name: record[name][0] for name in ("spearman", "ssim")}
    record["full"] = {name: record[name][-1] for name in ("spearman", "ssim")}
    record["views"] = {view: _view(cascade, view) for view in cascade.trained if view != TESTED_VIEW}
    threshold = {"threshold": torch.full_like(twin["spearman"], params.similar_above)}
    structure = torch.maximum(twin["spearman"], edges["spearman"]).clamp_min(0) + params.margin
    cells = scores({"sensitivity": (per_step[-1]["spearman"], threshold | {"structure": structure}, "lower"),
                    "first_stage": (per_step[0]["spearman"], threshold, "lower")})  # fmt: skip
    record["sensitivity"] = cells["sensitivity"] | {"judged": SENSITIVITY, "margin": params.margin}
    record["first_stage"] = cells["first_stage"] | {"judged": FIRST_STAGE}
    record["verdict"] = cascade_verdict(record)
    return record


def _flat_shares_nothing(found: dict[str, Tensor], structured: Tensor) -> dict[str, Tensor]:
    """``found`` with Spearman 0 (no shared ordering) where the trained map has structure but a map it
    is compared with is flat (a CAM whose randomised layer gives no positive evidence anywhere): the map
    has lost all it showed, and leaving the image out would shrink the cell's n. SSIM stays undefined."""
    undefined = structured & found["spearman"].isnan()
    return found | {"spearman": torch.where(undefined, torch.zeros_like(found["spearman"]), found["spearman"])}


def _view(cascade: Cascade, view: str) -> dict[str, Any]:
    """Mean Spearman of one reported view after each step, and of the twin's to the full cascade's."""
    trained = cascade.trained[view]
    return {
        "spearman": [mean_of(spearman(trained, step[view])) for step in cascade.steps],
        "twin": mean_of(spearman(cascade.steps[-1][view], cascade.twin[view])),
    }


#: How the cascade's cells are judged (``evaluation.json``'s ``judged``): :func:`sensitivity_mark`, and
#: the first stage's cell on its own test (more alike than the threshold after the head alone: insensitive).
SENSITIVITY = "below the threshold, and not above the larger of the twin's and the edge map's similarity by the margin"
FIRST_STAGE = "below the threshold after the first stage alone"


def sensitivity_mark(marks: dict[str, str]) -> str:
    """The sensitivity cell's mark from its tests' marks (better = less alike): ``above`` (sensitive)
    when below the threshold and not above the structure reference; ``below`` (insensitive) when more
    alike than either; ``level`` otherwise."""
    if "too few images" in marks.values():
        return "too few images"
    if "below" in marks.values():
        return "below"
    return "above" if marks["threshold"] == "above" else "level"


def cascade_mark(sensitivity: dict[str, Any], first_stage: dict[str, Any] | None) -> str:
    """The cascade's mark from its two cells: insensitive (``below``) when the first stage alone leaves
    the map more alike than the threshold; sensitive (``above``) only when the full cascade is and the first
    stage alone is shown below the threshold too; else the sensitivity cell's mark, ``level`` where the
    first stage is not shown either way (the head's part is untested, not passed)."""
    full = sensitivity["verdict"]
    if first_stage is None or full == "too few images":
        return full
    if first_stage["verdict"] in ("below", "too few images"):
        return first_stage["verdict"]
    return "level" if full == "above" and first_stage["verdict"] != "above" else full


def cascade_reason(sensitivity: dict[str, Any], first_stage: dict[str, Any] | None) -> str:
    """What decided the cascade, in words, from its cells' tests (run after the table's adjustment). Said once per
    map in the report, so kept short: the head is the cascade's first stage, which its figure and section name."""
    tests = sensitivity["against"]
    threshold = tests["threshold"]["mean"]
    value, structure = _two_places(sensitivity["value"]), _two_places(tests["structure"]["mean"])
    kept = f"with every stage re-initialised its map keeps Spearman {value} to the trained one"
    if sensitivity["value"] is None:
        return "its maps are flat: there is no similarity to measure"
    if sensitivity["verdict"] == "too few images":
        return f"too few images (fewer than {MIN_IMAGES})"
    if first_stage is not None and first_stage["verdict"] == "below":
        return (f"with only the head re-initialised its map keeps Spearman {_two_places(first_stage['value'])}, above "
                f"{threshold:g}: it shows what the lower layers respond to, not what tells the classes apart "
                "(Adebayo et al.'s top-layer check)")  # fmt: skip
    if tests["threshold"]["mark"] == "below":
        return f"{kept}, above {threshold:g}: it hardly changes without the learned weights"
    if tests["structure"]["mark"] == "below":
        return (f"{kept}, more than the larger of two randomised models' and an edge map's similarity plus "
                f"{sensitivity['margin']:g} ({structure}): part of it survives the weights")  # fmt: skip
    if sensitivity["verdict"] == "level":
        return f"{kept}{_undecided(sensitivity, threshold)}"
    if first_stage is not None and first_stage["verdict"] != "above":
        return (f"with only the head re-initialised its map keeps Spearman "
                f"{_two_places(first_stage['value'])}{_undecided(first_stage, threshold)}: whether it shows what tells "
                "the classes apart is undecided (Adebayo et al.'s top-layer check)")  # fmt: skip
    return (f"{kept}, below {threshold:g} and within {sensitivity['margin']:g} of what two randomised models' maps "
            f"or an edge map share ({structure} with the margin): it changes with the weights")  # fmt: skip


def _undecided(cell: dict[str, Any], threshold: float) -> str:
    """`` (above 0.5 on average, but not significantly either way: adjusted p = 0.07)``: a cell whose test
    against the threshold marks neither side, with the side its mean lies on."""
    side = "above" if cell["value"] >= threshold else "below"
    adjusted = cell["against"]["threshold"].get("p_adjusted")
    shown = "" if adjusted is None else f": adjusted p = {adjusted:.2g}"
    return f" ({side} {threshold:g} on average, but not significantly either way{shown})"


def _two_places(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


#: A cascade's verdict from its mark (:func:`cascade_mark`).
CASCADE_VERDICTS = {
    "above": "sensitive", "below": "insensitive", "level": "undecided", "too few images": "too few images"
}  # fmt: skip


def cascade_verdict(record: dict[str, Any]) -> str:
    """``flat`` when the maps are constant (no similarity to measure), else the name of the cascade's
    mark (:data:`CASCADE_VERDICTS`)."""
    if record["full"]["spearman"] is None:
        return "flat"
    return CASCADE_VERDICTS[cascade_mark(record["sensitivity"], record.get("first_stage"))]
