"""Model-parameter randomization (Adebayo et al. 2018, "Sanity checks for saliency maps"): the
stages of a copy of the model are re-initialised one after another from the head down, and each
method's maps are computed again after every stage; a map that stays alike while the weights that
make the model what it is are destroyed does not show what the model uses.

Re-initialising follows Quantus 0.6's ``MPRT`` exactly: every module with ``reset_parameters``
(convolutions, batch norms, linear layers) is reset after seeding torch with ``seed + 1``; so the
model after a stage here is Quantus's model after that stage's last module, and their similarities
agree (``tests/test_evaluate_quantus.py``). Similarity to the trained model's maps is measured by
Spearman rank correlation and SSIM (:mod:`convlens.evaluate.similarity`), next to the similarity of
the trained maps to uniform random maps; the verdict tests the per-image Spearman after the full
cascade against the threshold ``similar_above``, like any cell of the table.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from convlens.evaluate.scores import mean_of, score
from convlens.evaluate.similarity import similarities
from convlens.registry import costly_methods

#: The named stages of every convlens model, from the head down.
STAGES = ("head", "layer4", "layer3", "layer2", "layer1", "stem")


@dataclass(frozen=True)
class RandomizationParams:
    """The cascade re-initialises ``stages`` in this order (cumulatively) on the first ``images``
    images, seeded like Quantus's MPRT by ``seed``; methods in ``skip`` (default: those registered
    ``costly``, whose maps cost too much to compute once per stage) are left out, with that reason
    recorded. A map whose per-image Spearman correlation to the trained model's after the full
    cascade is tested above ``similar_above`` is called insensitive, below it sensitive."""

    images: int = 3
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    seed: int = 42
    skip: list[str] = field(default_factory=costly_methods)
    similar_above: float = 0.5

    def __post_init__(self) -> None:
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


def randomization(
    trained: Tensor, steps: list[Tensor], baseline: dict[str, Tensor], params: RandomizationParams
) -> dict[str, Any]:
    """The JSON record of one method-layer: mean Spearman and SSIM of the maps after each cascade step
    (``steps``, each (B, H, W)) to the ``trained`` ones, the random-map ``baseline`` values, the
    similarity after the first step (``top``) and after all (``full``), the ``sensitivity`` cell (the
    per-image Spearman after the full cascade tested against ``similar_above``, lower is better) and
    the verdict (:func:`cascade_verdict`, final once the table is adjusted)."""
    per_step = [similarities(trained, maps) for maps in steps]
    record: dict[str, Any] = {"stages": list(params.stages)}
    for name in ("spearman", "ssim"):
        record[name] = [mean_of(step[name]) for step in per_step]
    record["baseline"] = {name: mean_of(values) for name, values in baseline.items()}
    record["top"] = {name: record[name][0] for name in ("spearman", "ssim")}
    record["full"] = {name: record[name][-1] for name in ("spearman", "ssim")}
    full = per_step[-1]["spearman"]
    record["sensitivity"] = score(full, {"threshold": torch.full_like(full, params.similar_above)}, "lower")
    record["verdict"] = cascade_verdict(record)
    return record


#: A cascade's verdict from the mark of its sensitivity cell: Spearman after the full cascade below
#: the threshold (``above`` it in the better direction) is sensitive to the weights.
CASCADE_VERDICTS = {
    "above": "sensitive", "below": "insensitive", "level": "undecided", "too few images": "too few images"
}  # fmt: skip


def cascade_verdict(record: dict[str, Any]) -> str:
    """``flat`` when the maps are constant (no similarity to measure), else the name of the
    sensitivity cell's mark (:data:`CASCADE_VERDICTS`)."""
    if record["full"]["spearman"] is None:
        return "flat"
    return CASCADE_VERDICTS[record["sensitivity"]["verdict"]]
