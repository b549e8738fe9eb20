"""Every localisation and faithfulness metric, the verdict logic and the randomization cascade on
planted truth: a hand-weighted network whose logits provably read only one off-centre patch.

The patch holds vertical (class 0) or horizontal (class 1) stripes; a fixed logit (class 2) wins when
neither is there (deleted, blurred or imputed). Elsewhere the images carry stronger edges (random
black and white rectangles) and noise, so neither the edge detector nor the centre map can win by
accident. The planted model's saliency is exactly zero off the patch and beats every baseline on every
metric; the same maps rolled off the patch must beat random maps on none, and lose both family verdicts.
A negative control for the cascade keeps the patch in a fixed buffer, which no re-initialisation touches.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from convlens.evaluate import families, verdicts
from convlens.evaluate.faithfulness import BETTER, FaithfulnessParams
from convlens.evaluate.inputs import Images, MethodMaps
from convlens.evaluate.localisation import METRICS, LocalisationParams
from convlens.evaluate.randomization import RandomizationParams
from convlens.evaluate.recompute import Recompute
from convlens.evaluate.stage import _alike_reference, _method_record

SIZE, COUNT = 32, 32
#: The only pixels the planted model reads: rows 3-10, columns 21-28 (upper right, off the centre
#: and 3 px from the border).
PATCH = (slice(3, 11), slice(21, 29))
#: Where the off-patch maps are rolled to (rows 19-26, columns 5-12): no pixel of the patch.
OFF = (16, 16)
STRIPE, LOGIT_SCALE, ABSENT_LOGIT = 0.5, 6.0, 3.0
BASELINES = ("random", "edges", "centre")
CELLS = [("localisation", metric) for metric in METRICS] + [("faithfulness", metric) for metric in BETTER]


def _patch_mask(rows: slice = PATCH[0], columns: slice = PATCH[1]) -> Tensor:
    """(H, W) bool: the patch, or the part of it at ``rows``, ``columns``."""
    mask = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    mask[rows, columns] = True
    return mask


class PlantedModel(nn.Module):
    """Logits from the patch alone: class 0 k * (mean |horizontal step| - mean |vertical step|) over
    the steps between two patch pixels, class 1 its negative, class 2 a fixed logit. The patch is
    planted in the head's weights (zero off it), so the randomization cascade can destroy it."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 4, 3, padding=1, bias=False), relu=nn.ReLU()))
        self.layer1 = nn.Conv2d(4, 2, 1, bias=False)
        self.head = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc=nn.Linear(2 * SIZE * SIZE, 3)))
        with torch.no_grad():
            self.stem.conv.weight.zero_()
            for channel, (row, column), sign in [(0, (1, 2), 1), (1, (1, 2), -1), (2, (2, 1), 1), (3, (2, 1), -1)]:
                self.stem.conv.weight[channel, 0, 1, 1] = -sign  # channels: +-(right - here), +-(below - here)
                self.stem.conv.weight[channel, 0, row, column] = sign
            self.layer1.weight.copy_(torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 1]])[:, :, None, None])  # |steps|
            horizontal = _patch_mask(PATCH[0], slice(PATCH[1].start, PATCH[1].stop - 1)).float()
            vertical = _patch_mask(slice(PATCH[0].start, PATCH[0].stop - 1), PATCH[1]).float()
            stripes = torch.cat([(horizontal / horizontal.sum()).flatten(), -(vertical / vertical.sum()).flatten()])
            self.head.fc.weight.copy_(LOGIT_SCALE * torch.stack([stripes, -stripes, torch.zeros_like(stripes)]))
            self.head.fc.bias.copy_(torch.tensor([0.0, 0.0, ABSENT_LOGIT]))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer1(self.stem(x)))


class ArchitecturePatchModel(PlantedModel):
    """The same logits, but the patch is also cut out by a fixed buffer that no re-initialisation
    touches: its saliency stays on the patch whatever the weights (the cascade's negative control)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("patch", _patch_mask().float())

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.layer1(self.stem(x) * self.patch))


def planted_images(seed: int = 0) -> tuple[Tensor, Tensor, np.ndarray]:
    """Model inputs (N, 1, H, W) in [-1, 1], labels (N,) alternating 0/1, display images (N, H, W, 1):
    noise and three black or white rectangles off the patch (2 px clear of it), stripes on it."""
    rng = np.random.default_rng(seed)
    clear = np.zeros((SIZE, SIZE), dtype=bool)
    clear[PATCH[0].start - 2 : PATCH[0].stop + 2, PATCH[1].start - 2 : PATCH[1].stop + 2] = True
    images, labels = np.zeros((COUNT, SIZE, SIZE)), np.arange(COUNT) % 2
    for image, label in zip(images, labels, strict=True):
        image += rng.normal(0, 0.03, (SIZE, SIZE))
        placed = 0
        while placed < 3:
            height, width = rng.integers(4, 11, 2)
            top, left = rng.integers(0, SIZE - height), rng.integers(0, SIZE - width)
            if not clear[top : top + height, left : left + width].any():
                image[top : top + height, left : left + width] = rng.choice([-1.0, 1.0])
                placed += 1
        steps = STRIPE * (-1.0) ** np.arange(8)
        image[PATCH] = np.broadcast_to(steps[None, :] if label == 0 else steps[:, None], (8, 8))
    inputs = torch.from_numpy(np.clip(images, -1, 1)).float()[:, None]
    return inputs, torch.from_numpy(labels), ((inputs[:, 0, ..., None] + 1) / 2).numpy()


def planted_subject() -> families.Subject:
    """The planted model, its images with the patch as mask, and two methods: its ``saliency`` (on
    the patch) and ``off`` (the same maps rolled off it)."""
    model = PlantedModel().eval()
    inputs, labels, display = planted_images()
    black = torch.full((1, 1, SIZE, SIZE), -1.0)
    on = Recompute.recorded("saliency", {}, black, 3)(model, inputs, labels)[""]
    keys = [(index, int(label)) for index, label in enumerate(labels)]
    images = Images(inputs, labels, keys, _patch_mask().expand(COUNT, -1, -1).clone(), display)
    methods = {name: MethodMaps(name, {"": maps}, list(range(COUNT)), labels.tolist(), labels.tolist(), {})
               for name, maps in (("saliency", on), ("off", on.roll(OFF, dims=(-2, -1))))}  # fmt: skip
    return families.Subject(model, images, methods, black, 3)


@pytest.fixture(scope="module")
def subject(one_torch_thread: None) -> families.Subject:
    return planted_subject()


def _cascade(subject: families.Subject, model: nn.Module) -> families.Family:
    """The cascade of ``saliency`` on 16 images of ``model``, every stage it has re-initialised."""
    saliency = dataclasses.replace(subject, model=model, methods={"saliency": subject.methods["saliency"]})
    return families.randomization(saliency, RandomizationParams(images=16, stages=["head", "layer1", "stem"]))


def _table(subject: families.Subject, done: dict[str, families.Family]) -> dict[str, Any]:
    """``evaluation.json``'s ``methods`` as the stage builds it from the families ``done``: every test
    adjusted together, then a verdict per family."""
    reference = _alike_reference(subject)
    methods = {name: _method_record(name, maps, done, subject, reference) for name, maps in subject.methods.items()}
    verdicts.adjust_table(methods)
    verdicts.add_family_verdicts(methods)
    return methods


@pytest.fixture(scope="module")
def evaluation(subject: families.Subject) -> dict[str, Any]:
    """Localisation and faithfulness of both methods and the cascade of ``saliency``, in one table."""
    return _table(subject, {
        "localisation": families.localisation(subject, LocalisationParams()),
        "faithfulness": families.faithfulness(subject, FaithfulnessParams()),
        "randomization": _cascade(subject, subject.model),
    })  # fmt: skip


def _layer(evaluation: dict[str, Any], method: str) -> dict[str, Any]:
    return evaluation[method]["layers"][""]


def test_the_planted_model_reads_the_patch_alone(subject: families.Subject) -> None:
    """It classifies every image, its logits ignore any change off the patch, its saliency is zero
    there and nonzero on every patch pixel (so the maps on the patch rank it first)."""
    images, model = subject.images, subject.model
    with torch.no_grad():
        logits = model(images.inputs)
        noise = torch.rand(images.inputs.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
        scrambled = torch.where(images.masks[:, None], images.inputs, noise)
        assert torch.equal(logits.argmax(dim=1), images.targets)
        assert torch.allclose(model(scrambled), logits, atol=1e-5)
    saliency = subject.methods["saliency"].layers[""]
    assert (saliency[~images.masks] == 0).all() and (saliency[images.masks] > 0).all()


@pytest.mark.parametrize(("family", "metric"), CELLS)
def test_the_map_on_the_patch_beats_every_baseline(evaluation: dict[str, Any], family: str, metric: str) -> None:
    """Better than random maps, the edge detector and the centre blob, after the table's adjustment.
    (On faithfulness the edge and centre maps score worse than random maps here, since they reach the
    patch late, so a map moved off the patch still beats them: its test against random maps fails.)"""
    against = _layer(evaluation, "saliency")[family][metric]["against"]
    assert {baseline: against[baseline]["mark"] for baseline in BASELINES} == dict.fromkeys(BASELINES, "above"), against


@pytest.mark.parametrize(("family", "metric"), CELLS)
def test_the_map_off_the_patch_never_beats_random_maps(evaluation: dict[str, Any], family: str, metric: str) -> None:
    cell = _layer(evaluation, "off")[family][metric]
    assert cell["verdict"] != "above", cell["against"]["random"]


@pytest.mark.parametrize("family", ["localisation", "faithfulness"])
def test_family_verdicts_follow_the_patch(evaluation: dict[str, Any], family: str) -> None:
    assert _layer(evaluation, "saliency")["verdicts"][family]["verdict"] == "supported"
    assert _layer(evaluation, "off")["verdicts"][family]["verdict"] == "not supported"


def test_the_cascade_calls_the_planted_saliency_sensitive(evaluation: dict[str, Any]) -> None:
    """Re-initialising the head removes the patch from the weights, so the maps change entirely."""
    cascade = _layer(evaluation, "saliency")["randomization"]
    assert cascade["verdict"] == "sensitive", cascade
    assert _layer(evaluation, "saliency")["verdicts"]["randomization"]["verdict"] == "supported"


def test_the_cascade_calls_a_patch_fixed_by_the_architecture_insensitive(subject: families.Subject) -> None:
    """The negative control: when a fixed buffer holds the patch, the maps stay on it through the cascade."""
    table = _table(subject, {"randomization": _cascade(subject, ArchitecturePatchModel().eval())})
    cascade = _layer(table, "saliency")["randomization"]
    assert cascade["verdict"] == "insensitive", cascade


def test_faithfulness_in_parts_gives_the_whole(subject: families.Subject) -> None:
    """ROAD and deletion/insertion run as separate tasks (:attr:`FamilySpec.parts`) and joined: the same
    records and baseline, number for number, as the family run whole; each part alone scores only its own."""
    from convlens.evaluate.faithfulness import PARTS, per_image
    from convlens.evaluation_registry import FAMILIES

    assert FAMILIES["faithfulness"].parts == PARTS
    params = FaithfulnessParams(random_draws=2)
    whole = families.faithfulness(subject, params)
    parts = [families.run_family(FAMILIES["faithfulness"], subject, params, part=part)
             for part in FAMILIES["faithfulness"].parts]  # fmt: skip
    assert [sorted(key for key in part.records["saliency"][""] if key != "curves") for part in parts] == [
        ["deletion_auc", "insertion_auc"],
        ["road"],
    ]
    joined = families.merged(parts)
    assert joined.records == whole.records and joined.baseline == whole.baseline
    with pytest.raises(ValueError, match="faithfulness part 'roads'; parts: perturbation, road"):
        per_image(None, None, params, "roads")  # type: ignore[arg-type]
