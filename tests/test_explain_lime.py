"""LIME (lime package): superpixel sizing, grayscale classifier, batching, seeding, and that it finds
the only region a toy model looks at."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_fer_cnn
from lime.lime_image import LimeImageExplainer
from torch import Tensor, nn

from convlens.data.synthetic import make_faces
from convlens.explain.lime import (
    BatchedLimeImageExplainer,
    LimeExplanation,
    LimeExplanations,
    classifier_fn,
    lime_explanations,
    lime_image,
    slic_segmenter,
    tensor_classifier,
)
from convlens.models import FerCNN, ResNet

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = {"num_samples": 200, "batch_size": 128}


class QuadrantModel(nn.Module):
    """Class 1's logit is 8 x the mean of the top-left quadrant, class 0's is 0: a model whose
    evidence lives in one known region."""

    def forward(self, x: Tensor) -> Tensor:
        half = x.shape[-1] // 2
        evidence = 8 * x[:, :, :half, :half].mean(dim=(1, 2, 3))
        return torch.stack([torch.zeros_like(evidence), evidence], dim=1)


def _faces(count: int) -> Tensor:
    """Synthetic 48x48 faces as model input (normalized with mean 0.5, std 0.25 as the faces config)."""
    images = torch.from_numpy(make_faces(count, seed=5).images).permute(0, 3, 1, 2).float() / 255
    return (images - 0.5) / 0.25


def test_slic_gives_25_to_50_superpixels_on_48px_faces() -> None:
    segment = slic_segmenter(48, 48)
    for image in _faces(20):
        segments = segment(lime_image(image))
        count = len(np.unique(segments))
        assert 25 <= count <= 50
        assert segments.min() == 0 and segments.max() == count - 1  # LIME indexes superpixels 0..n-1


def test_the_classifier_feeds_lime_images_back_to_a_grayscale_model() -> None:
    model = small_fer_cnn()
    images = _faces(4)
    batch = np.stack([lime_image(image) for image in images])
    assert batch.shape == (4, 48, 48, 3)
    with torch.no_grad():
        expected = torch.softmax(model(images), dim=1).numpy()
    np.testing.assert_allclose(classifier_fn(model, channels=1)(batch), expected, rtol=1e-5, atol=1e-6)


def test_the_model_sees_batches_of_batch_size() -> None:
    model = small_fer_cnn()
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _module, inputs: sizes.append(len(inputs[0])))
    lime_explanations(model, _faces(1), [3], num_samples=300, batch_size=128)
    assert sizes == [128, 128, 44]


def test_batched_perturbations_are_the_packages_own() -> None:
    """Same seed: the classifier sees exactly the images lime's own loop builds, and the
    explanations agree to the last bit."""
    image, segment = lime_image(_faces(1)[0]), slic_segmenter(48, 48)
    seen: dict[str, list[np.ndarray]] = {"package": [], "batched": []}
    model = small_fer_cnn()
    classify = {"package": classifier_fn(model, channels=1), "batched": tensor_classifier(model, channels=1)}

    def recording(name: str):
        as_lime = (
            (lambda batch: batch.copy()) if name == "package" else (lambda batch: batch.permute(0, 2, 3, 1).numpy())
        )
        return lambda batch: seen[name].append(as_lime(batch)) or classify[name](batch)

    results = {}
    for name, explainer in (("package", LimeImageExplainer), ("batched", BatchedLimeImageExplainer)):
        results[name] = explainer(random_state=3).explain_instance(
            image, recording(name), labels=(2,), top_labels=None, hide_color=0.5, num_samples=300,
            batch_size=128, segmentation_fn=segment, random_seed=3,
        )  # fmt: skip
    np.testing.assert_array_equal(np.concatenate(seen["batched"]), np.concatenate(seen["package"]))
    assert len(seen["package"]) == 3  # 300 copies in batches of 128
    assert results["batched"].local_exp == results["package"].local_exp


def test_lime_is_identical_for_a_fixed_seed() -> None:
    model, images = small_fer_cnn(), _faces(1)
    first = lime_explanations(model, images, [3], seed=7, **FAST)
    again = lime_explanations(model, images, [3], seed=7, **FAST)
    other = lime_explanations(model, images, [3], seed=8, **FAST)
    for a, b, c in zip(first, again, other, strict=True):
        assert a.weights == b.weights and a.top_weights == b.top_weights
        np.testing.assert_array_equal(a.positive_mask, b.positive_mask)
        np.testing.assert_array_equal(a.negative_mask, b.negative_mask)
        assert a.weights != c.weights


def test_a_batch_gives_the_explanations_of_single_calls() -> None:
    model, images, targets = small_fer_cnn(), _faces(2), [1, 6]
    batch = lime_explanations(model, images, targets, **FAST)
    for index, explanation in enumerate(batch):
        (single,) = lime_explanations(model, images[index : index + 1], targets[index : index + 1], **FAST)
        assert explanation.weights == single.weights
        np.testing.assert_array_equal(explanation.segments, single.segments)


def test_lime_finds_the_region_the_model_looks_at() -> None:
    """Only the top-left quadrant raises class 1: its superpixels get the largest weights, and the
    rest (which the model ignores) get at most a quarter of the smallest of those."""
    image = torch.full((1, 3, 32, 32), 1.0)
    (explanation,) = lime_explanations(QuadrantModel(), image, [1], num_samples=400, num_features=3, hide_color=0.0)
    inside = {int(segment) for segment in np.unique(explanation.segments[:16, :16])}
    assert len(inside) >= 2
    assert {segment for segment, _ in explanation.top_weights} <= inside
    assert explanation.positive_mask[:16, :16].any() and not explanation.positive_mask[16:, 16:].any()
    weakest_inside = min(explanation.weights[segment] for segment in inside)
    strongest_outside = max(abs(w) for segment, w in explanation.weights.items() if segment not in inside)
    assert strongest_outside < 0.25 * weakest_inside


def test_weights_masks_and_weight_map_agree() -> None:
    (explanation,) = lime_explanations(small_fer_cnn(), _faces(1), [4], num_features=4, **FAST)
    ranked = sorted(explanation.weights.items(), key=lambda item: -abs(item[1]))
    assert explanation.top_weights == ranked[:4]
    weight_map = explanation.weight_map()
    for segment, weight in explanation.weights.items():
        assert np.all(weight_map[explanation.segments == segment] == weight)
    positive = [s for s, w in ranked if w > 0][:4]
    np.testing.assert_array_equal(explanation.positive_mask, np.isin(explanation.segments, positive))
    assert not (explanation.positive_mask & explanation.negative_mask).any()


@pytest.mark.parametrize(
    ("model", "shape"),
    [(ResNet(18, 10, 3).eval(), (3, 32, 32)), (FerCNN(7, 1, widths=(8, 16, 32, 64)).eval(), (1, 48, 48))],
    ids=["resnet18-rgb", "fer_cnn-gray"],
)
def test_lime_runs_on_1_and_3_channel_models(model: nn.Module, shape: tuple[int, ...]) -> None:
    explanations = lime_explanations(model, torch.randn(1, *shape), [5], **FAST)
    assert [e.label for e in explanations] == [5]
    for explanation in explanations:
        assert explanation.segments.shape == shape[1:]
        assert explanation.num_segments >= 10


def test_the_evaluated_map_is_the_positive_part_of_the_superpixel_weights() -> None:
    """Graded by coefficient, so its peak is the strongest superpixel (pointing game) and its mass spreads
    over all positive ones (relevance mass): on the 0/1 top-superpixel mask the two were the same number."""
    from convlens.explain.lime import LimeExplanation, LimeExplanations

    segments = np.arange(4).repeat(4).reshape(4, 4)  # rows 0-3 are superpixels 0-3
    weights = {0: 0.3, 1: 0.1, 2: -0.2, 3: 0.0}
    mask = np.isin(segments, [0, 1])
    explanation = LimeExplanation(0, segments, weights, [(0, 0.3), (2, -0.2)], mask, segments == 2, 0.5, 0.4)
    found = LimeExplanations([explanation]).localisation_maps()[None][0]
    np.testing.assert_allclose(found[:, 0], [0.3, 0.1, 0.0, 0.0])


def _explained(score: float) -> LimeExplanation:
    none = np.zeros((2, 2), dtype=bool)
    return LimeExplanation(0, np.zeros((2, 2), dtype=int), {0: 0.1}, [(0, 0.1)], none, none, score, 0.5)


def test_low_local_r2_is_a_score_and_a_note() -> None:
    """Each image's R² is a score of its figure; a mean under 0.3 (the shapes' confused pairs, 0.09-0.21) is said."""
    weak = LimeExplanations([_explained(0.09), _explained(0.21)])
    assert weak.scores(1) == {"local_r2": 0.21} and weak.scores(None) == {}
    [note] = weak.notes()
    assert note.startswith("the local linear models reach a mean R² of 0.15 over the perturbed copies (under 0.3)")
    assert LimeExplanations([_explained(0.2), _explained(0.5)]).notes() == []
