"""Gradient attributions (captum) against independent computations: autograd, grad-cam's guided
backprop, the completeness axiom of Integrated Gradients."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import small_fer_cnn, small_resnet
from pytorch_grad_cam import GuidedBackpropReLUModel
from torch import Tensor, nn

from convlens.explain.attribution import (
    IntegratedGradientsParams,
    contribution_map,
    explain_integrated_gradients,
    gradient_x_input,
    guided_backprop_maps,
    guided_gradients,
    integrated_gradients,
    path_points_per_pass,
    saliency_map,
    vanilla_gradients,
)
from convlens.explain.method import ExplainBatch
from convlens.explain.smoothgrad import smoothgrad

pytestmark = pytest.mark.usefixtures("one_torch_thread")


MODELS = {"resnet18-rgb": (small_resnet, (3, 32, 32)), "fer_cnn-gray": (small_fer_cnn, (1, 48, 48))}


@pytest.fixture(params=sorted(MODELS), scope="module")
def model_and_images(request: pytest.FixtureRequest) -> tuple[nn.Module, Tensor, Tensor]:
    build, shape = MODELS[request.param]
    images = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    return build(), images, torch.tensor([1, 4, 6])


def _autograd_gradients(model: nn.Module, images: Tensor, targets: Tensor) -> Tensor:
    inputs = images.clone().requires_grad_(True)
    scores = model(inputs)[torch.arange(len(images)), targets].sum()
    return torch.autograd.grad(scores, inputs)[0]


def test_vanilla_saliency_equals_the_autograd_gradient(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    expected = _autograd_gradients(model, images, targets)
    gradients = vanilla_gradients(model, images, targets)
    torch.testing.assert_close(gradients, expected, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(saliency_map(gradients), expected.abs().amax(dim=1), rtol=1e-5, atol=1e-7)


def test_guided_backprop_matches_grad_cams_independent_implementation(
    model_and_images: tuple[nn.Module, Tensor, Tensor],
) -> None:
    """grad-cam swaps every ReLU for a guided-ReLU autograd Function (one image per call); captum
    hooks the ReLU modules' backward instead. Same rule, so same result within float error."""
    model, images, targets = model_and_images
    ours = guided_gradients(model, images, targets)
    reference = GuidedBackpropReLUModel(copy.deepcopy(model), device="cpu")
    for index in range(len(images)):
        expected = torch.from_numpy(reference(images[index : index + 1].clone(), int(targets[index])))
        torch.testing.assert_close(ours[index].permute(1, 2, 0), expected, rtol=1e-4, atol=1e-6)


def test_guided_backprop_differs_from_the_plain_gradient(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    assert not torch.allclose(guided_gradients(model, images, targets), vanilla_gradients(model, images, targets))


def test_guided_backprop_views_split_the_gradient() -> None:
    gradients = torch.randn(2, 3, 5, 5)
    maps = guided_backprop_maps(gradients)
    torch.testing.assert_close(maps.positive - maps.negative, gradients)
    assert (maps.positive >= 0).all() and (maps.negative >= 0).all()
    torch.testing.assert_close(maps.grayscale, gradients.abs().amax(dim=1))


@pytest.mark.parametrize("guided", [False, True])
def test_smoothgrad_without_noise_is_the_plain_gradient(
    model_and_images: tuple[nn.Module, Tensor, Tensor], guided: bool
) -> None:
    """25 noise-free samples in batches of 10 (3 partial batches) average to the gradient itself."""
    model, images, targets = model_and_images
    plain = (guided_gradients if guided else vanilla_gradients)(model, images, targets)
    smoothed = smoothgrad(model, images, targets, guided=guided, samples=25, noise_level=0.0, samples_batch_size=10)
    torch.testing.assert_close(smoothed, plain, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_seeded_and_smooths(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    first = smoothgrad(model, images, targets, samples=25, samples_batch_size=25, seed=3)
    again = smoothgrad(model, images, targets, samples=25, samples_batch_size=25, seed=3)
    other = smoothgrad(model, images, targets, samples=25, samples_batch_size=25, seed=4)
    torch.testing.assert_close(first, again)
    assert not torch.allclose(first, other)
    assert not torch.allclose(first, vanilla_gradients(model, images, targets), atol=1e-4)


def test_smoothgrad_is_the_mean_gradient_over_its_noisy_copies(
    model_and_images: tuple[nn.Module, Tensor, Tensor],
) -> None:
    """The batched noise tunnel against its definition: the plain gradient averaged over each image plus
    the seeded noise pattern scaled by the image's value range, however the copies are batched."""
    model, images, targets = model_and_images
    noise = torch.randn((25, *images.shape[1:]), generator=torch.Generator().manual_seed(3))
    spread = 0.15 * (images.flatten(1).amax(dim=1) - images.flatten(1).amin(dim=1))[:, None, None, None]
    expected = torch.stack([vanilla_gradients(model, images + spread * pattern, targets) for pattern in noise]).mean(0)
    for batch_size in (7, 64):
        found = smoothgrad(model, images, targets, samples=25, samples_batch_size=batch_size, seed=3)
        torch.testing.assert_close(found, expected, rtol=1e-4, atol=1e-6)


def test_smoothgrad_noise_is_set_by_each_image_alone(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    """The noise std is a share of the image's own value range (Smilkov et al.): an image's map is the
    same alone as in a batch with an image of ten times its range."""
    model, images, targets = model_and_images
    loud = torch.cat([images[:1], images[1:2] * 10])
    in_batch = smoothgrad(model, loud, targets[:2], samples=25, samples_batch_size=25, seed=3)
    alone = smoothgrad(model, images[:1], targets[:1], samples=25, samples_batch_size=25, seed=3)
    torch.testing.assert_close(in_batch[:1], alone, rtol=1e-4, atol=1e-6)


def test_gradient_x_input_is_the_product(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    expected = _autograd_gradients(model, images, targets) * images
    torch.testing.assert_close(gradient_x_input(model, images, targets), expected, rtol=1e-5, atol=1e-7)


def test_integrated_gradients_are_complete(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    """Attributions sum to score(x) - score(baseline) (Sundararajan et al.'s completeness axiom),
    here within 5% of the score change (a 64-step Gauss-Legendre path integral)."""
    model, images, targets = model_and_images
    baseline = torch.full_like(images[:1], -2.0)
    attributions = integrated_gradients(model, images, targets, baselines=baseline, steps=64, internal_batch_size=50)
    with torch.no_grad():
        rows = torch.arange(len(images))
        change = model(images)[rows, targets] - model(baseline.expand_as(images))[rows, targets]
    torch.testing.assert_close(attributions.sum(dim=(1, 2, 3)), change, rtol=0.05, atol=1e-3)


@pytest.mark.parametrize(
    "method",
    [
        vanilla_gradients,
        guided_gradients,
        gradient_x_input,
        lambda model, images, targets: integrated_gradients(model, images, targets, steps=8, internal_batch_size=5),
    ],
    ids=["vanilla", "guided", "gradient_x_input", "integrated_gradients"],
)
def test_a_batch_gives_the_maps_of_single_calls(model_and_images: tuple[nn.Module, Tensor, Tensor], method) -> None:
    model, images, targets = model_and_images
    batch = method(model, images, targets)
    singles = torch.cat([method(model, images[i : i + 1], targets[i : i + 1]) for i in range(len(images))])
    assert batch.shape == images.shape
    torch.testing.assert_close(batch, singles, rtol=1e-4, atol=1e-6)


def test_one_target_per_image_is_required(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, _ = model_and_images
    with pytest.raises(ValueError, match="got 2 targets for 3 images"):
        vanilla_gradients(model, images, [0, 1])


def test_attributions_leave_the_model_as_they_found_it() -> None:
    model = small_fer_cnn().train()
    vanilla_gradients(model, torch.randn(2, 1, 48, 48), [0, 1])
    assert all(module.training for module in model.modules())
    assert all(parameter.grad is None for parameter in model.parameters())


@pytest.mark.parametrize(
    ("given", "passes"), [(None, [128, 128]), (256, [256]), (64, [64] * 4)], ids=["cpu-default", "256", "64"]
)
def test_integrated_gradients_batch_the_path_by_device_unless_told(given: int | None, passes: list[int]) -> None:
    """8 images x 32 steps: on the CPU 128 path points per pass by default, an explicit size kept; the
    maps are those of the earlier default, 256 points at once."""
    model, images, targets = small_fer_cnn(), torch.randn(8, 1, 48, 48), torch.arange(8) % 7
    batch = ExplainBatch(images, targets, torch.zeros(1, 1, 48, 48), 7)
    seen: list[int] = []
    handle = model.register_forward_hook(lambda _m, inputs, _o: seen.append(len(inputs[0])))
    try:
        maps = explain_integrated_gradients(model, batch, IntegratedGradientsParams(internal_batch_size=given)).maps
    finally:
        handle.remove()
    assert seen == passes
    earlier = contribution_map(integrated_gradients(model, images, targets, steps=32, internal_batch_size=256))
    np.testing.assert_allclose(maps, earlier.numpy(), rtol=1e-5, atol=1e-6)


def test_accelerators_keep_the_earlier_path_batch() -> None:
    """Only the CPU gets the in-cache chunks; a GPU keeps 256 points per pass."""
    assert [path_points_per_pass(torch.device(kind)) for kind in ("cpu", "cuda", "mps")] == [128, 256, 256]


def test_the_first_max_pool_routes_the_gradient_and_the_saliency_note_says_so() -> None:
    """A 3x3 stride-2 max-pool after a 7x7 stem passes gradient back through a minority of its inputs, each
    with a 7x7 footprint: the saliency maps' note. The same network with an average pool routes every value
    (no max-pool, no note); a max-pool that routes half or more carries no note (:data:`FEW_ROUTED`)."""
    from convlens.explain.attribution import SaliencyParams, explain_saliency, localise_saliency
    from convlens.explain.routing import FEW_ROUTED, PoolRouting, pool_routing

    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    model = nn.Sequential(stem, nn.Flatten(), nn.Linear(8 * 9 * 9, 4)).eval()
    images, targets = torch.randn(4, 3, 33, 33), torch.tensor([0, 1, 2, 3])
    routing = pool_routing(model, images, targets)
    assert routing is not None and routing.pool == "0.2" and routing.footprint == 7
    model.requires_grad_(False)  # as a stage may hand it over: the same routing
    assert pool_routing(model, images, targets) == routing
    model.requires_grad_(True)
    assert 0 < routing.share < FEW_ROUTED
    batch = ExplainBatch(images, targets, torch.zeros(1, 3, 33, 33), 4)
    result = explain_saliency(model, batch, SaliencyParams())
    assert result.routing == routing and result.notes() == routing.notes()
    assert result.notes()[0].startswith(f"{routing.share:.0%} of the values entering 0.2 pass the gradient back")
    assert "7x7 px footprints" in result.notes()[0]
    np.testing.assert_array_equal(localise_saliency(model, batch, SaliencyParams()).maps, result.maps)
    assert localise_saliency(model, batch, SaliencyParams()).notes() == []
    stem[2] = nn.AvgPool2d(3, 2, 1)
    assert (
        pool_routing(model, images, targets) is None and explain_saliency(model, batch, SaliencyParams()).notes() == []
    )
    assert PoolRouting("pool", FEW_ROUTED, 7).notes() == [] and PoolRouting("pool", 0.2, 0).notes() == []


def test_a_pool_without_overlap_routes_its_share_by_construction_and_says_so() -> None:
    """FER's 2x2 pools route exactly one value in four whatever the weights: the note says so, where a grader read the
    25% as a property of the run; an overlapping pool's share is measured, with no such clause."""
    from convlens.explain.routing import pool_routing

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    images, targets = torch.randn(2, 1, 16, 16), torch.tensor([0, 2])
    routing = pool_routing(model.eval(), images, targets)
    assert routing is not None and routing.window == 2 and routing.share <= 0.25
    assert routing.notes()[0].startswith(
        "2 is a 2x2 max-pool whose windows do not overlap: it passes each window's "
        "gradient to its largest value alone, one value in 4 whatever the model ("
    )
    assert "this note appears below" not in routing.notes()[0], "a rule that always fires for such a pool says nothing"
    model[2] = nn.MaxPool2d(3, 2, 1)
    overlapping = pool_routing(model, images, targets)
    assert overlapping is not None and overlapping.window is None and "whatever the model" not in overlapping.notes()[0]
