"""CAM family (grad-cam package) against CAMs computed by hand from forward/backward hooks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from conftest import small_fer_cnn, small_resnet
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.base_cam import BaseCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from convlens.explain.attribution import guided_gradients
from convlens.explain.cam import (
    CamParams,
    explain_grad_cam,
    explain_layer_cam,
    grad_cam,
    guided_grad_cam,
    layer_cam,
    layer_notes,
)
from convlens.explain.method import ExplainBatch, NotApplicable

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LAYERS = ["layer2", "layer3", "layer4"]


# ResNet at 64 px so that layer4 still has a 2x2 map; FerCNN's layer4 is 3x3 at 48 px.
MODELS = {"resnet18-rgb": (small_resnet, (3, 64, 64)), "fer_cnn-gray": (small_fer_cnn, (1, 48, 48))}


@pytest.fixture(params=sorted(MODELS), scope="module")
def model_and_images(request: pytest.FixtureRequest) -> tuple[nn.Module, Tensor, Tensor]:
    build, shape = MODELS[request.param]
    images = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    return build(), images, torch.tensor([2, 0, 5])


def _activations_and_gradients(model: nn.Module, images: Tensor, targets: Tensor, layer: str) -> tuple[Tensor, Tensor]:
    captured: dict[str, Tensor] = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: captured.update(a=out))
    try:
        scores = model(images)[torch.arange(len(images)), targets].sum()
    finally:
        handle.remove()
    return captured["a"].detach(), torch.autograd.grad(scores, captured["a"])[0]


def _normalize(cam: Tensor) -> Tensor:
    """Per image (cam - min) / (max - min + 1e-7), grad-cam's scaling (its epsilon matters for
    the tiny CAMs of untrained models)."""
    cam = cam - cam.flatten(1).min(1).values[:, None, None]
    return cam / (cam.flatten(1).max(1).values[:, None, None] + 1e-7)


def _upsample_and_normalize(cam: Tensor, size: tuple[int, int]) -> Tensor:
    """Normalize, upsample bilinearly (half-pixel centres, as cv2.resize), normalize again."""
    upsampled = F.interpolate(_normalize(cam)[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return _normalize(upsampled)


@pytest.mark.parametrize("layer", LAYERS)
def test_grad_cam_equals_the_hand_computed_map(model_and_images: tuple[nn.Module, Tensor, Tensor], layer: str) -> None:
    """relu(sum_k mean_ij(dY/dA_k) A_k), upsampled and normalized; agreement to 1e-4 of the [0, 1] range."""
    model, images, targets = model_and_images
    activations, gradients = _activations_and_gradients(model, images, targets, layer)
    cam = (gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(1).clamp(min=0)
    expected = _upsample_and_normalize(cam, images.shape[-2:])
    maps = grad_cam(model, images, targets, [layer])
    assert list(maps) == [layer]
    torch.testing.assert_close(maps[layer], expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_cam_equals_the_hand_computed_map(model_and_images: tuple[nn.Module, Tensor, Tensor], layer: str) -> None:
    """relu(sum_k relu(dY/dA_k) * A_k), upsampled and normalized; agreement to 1e-4."""
    model, images, targets = model_and_images
    activations, gradients = _activations_and_gradients(model, images, targets, layer)
    cam = (gradients.clamp(min=0) * activations).sum(1).clamp(min=0)
    expected = _upsample_and_normalize(cam, images.shape[-2:])
    torch.testing.assert_close(layer_cam(model, images, targets, [layer])[layer], expected, rtol=0, atol=1e-4)


def test_maps_cover_the_input_in_the_unit_range(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    for maps in (grad_cam(model, images, targets, LAYERS), layer_cam(model, images, targets, LAYERS)):
        assert list(maps) == LAYERS
        for cam in maps.values():
            assert cam.shape == (len(images), *images.shape[-2:])
            assert cam.min() >= 0 and cam.max() <= 1 + 1e-6


def test_guided_grad_cam_is_guided_backprop_masked_by_grad_cam(
    model_and_images: tuple[nn.Module, Tensor, Tensor],
) -> None:
    model, images, targets = model_and_images
    guided = guided_gradients(model, images, targets)
    cams = grad_cam(model, images, targets, ["layer3"])
    combined = guided_grad_cam(model, images, targets, ["layer3"])
    assert combined["layer3"].shape == images.shape
    torch.testing.assert_close(combined["layer3"], guided * cams["layer3"][:, None], rtol=1e-5, atol=1e-8)
    reused = guided_grad_cam(model, images, targets, ["layer3"], guided=guided)
    torch.testing.assert_close(reused["layer3"], combined["layer3"])


@pytest.mark.parametrize("method", [grad_cam, layer_cam, guided_grad_cam], ids=["grad_cam", "layer_cam", "guided"])
def test_a_batch_gives_the_maps_of_single_calls(model_and_images: tuple[nn.Module, Tensor, Tensor], method) -> None:
    model, images, targets = model_and_images
    batch = method(model, images, targets, ["layer3"])["layer3"]
    singles = torch.cat([method(model, images[i : i + 1], targets[i : i + 1], ["layer3"])["layer3"] for i in range(3)])
    torch.testing.assert_close(batch, singles, rtol=1e-4, atol=1e-5)


def test_unknown_layer_lists_the_valid_ones(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    with pytest.raises(ValueError, match=r"unknown layer 'layer9'; valid layers: stem, stem\.conv.*layer4"):
        grad_cam(model, images, targets, ["layer9"])


def test_cams_leave_no_hooks_and_no_gradients(model_and_images: tuple[nn.Module, Tensor, Tensor]) -> None:
    model, images, targets = model_and_images
    layer_cam(model, images, targets, LAYERS)
    assert all(not module._forward_hooks for module in model.modules())
    assert all(parameter.grad is None for parameter in model.parameters())


def test_layers_too_small_to_locate_anything_are_skipped_with_the_reason() -> None:
    """At 65 px a ResNet's layer4 is 3x3: left out and said why; at 33 px (layer3 3x3) every stage is too small."""
    model = small_resnet()
    batch = ExplainBatch(torch.randn(2, 3, 65, 65), torch.tensor([1, 2]), torch.zeros(1, 3, 65, 65), 10)
    result = explain_grad_cam(model, batch, CamParams(["layer3", "layer4"]))
    assert list(result.maps) == ["layer3"] and result.sizes == {"layer3": (5, 5), "layer4": (3, 3)}
    assert result.notes() == [
        "layer4 is 3x3 at 65 px input: a class activation map needs at least 5x5 positions to show where anything "
        "is, so it is left out"
    ]
    tiny = ExplainBatch(torch.randn(2, 3, 33, 33), torch.tensor([1, 2]), torch.zeros(1, 3, 33, 33), 10)
    with pytest.raises(NotApplicable, match="layer3 is 3x3 at 33 px input.*layer4 is 2x2"):
        explain_layer_cam(model, tiny, CamParams(["layer3", "layer4"]))


def _one_layer_call(method: type[BaseCAM], model: nn.Module, images: Tensor, targets: Tensor, layer: str) -> Tensor:
    """grad-cam run on one layer alone, as the maps were computed before all layers shared a pass."""
    cam = method(model=model, target_layers=[model.get_submodule(layer)])
    try:
        return torch.from_numpy(cam(input_tensor=images, targets=[ClassifierOutputTarget(int(c)) for c in targets]))
    finally:
        cam.activations_and_grads.release()
        model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("order", [LAYERS, LAYERS[::-1]], ids=["forward", "reversed"])
@pytest.mark.parametrize("method", [(grad_cam, GradCAM), (layer_cam, LayerCAM)], ids=["grad_cam", "layer_cam"])
def test_one_pass_gives_the_maps_of_one_layer_calls(
    model_and_images: tuple[nn.Module, Tensor, Tensor], method, order: list[str]
) -> None:
    """Layers of three sizes in one forward and backward pass: each map as grad-cam gives it for that
    layer alone, in the order asked for (grad-cam lists its layers in the order they ran)."""
    ours, theirs = method
    model, images, targets = model_and_images
    passes = []
    handle = model.register_forward_hook(lambda *_: passes.append(1))
    try:
        maps = ours(model, images, targets, order)
    finally:
        handle.remove()
    assert list(maps) == order and len(passes) == 1
    for layer in order:
        torch.testing.assert_close(maps[layer], _one_layer_call(theirs, model, images, targets, layer))


def test_cams_fill_no_parameter_gradient_and_keep_requires_grad(
    model_and_images: tuple[nn.Module, Tensor, Tensor],
) -> None:
    """Backward stops filling weight gradients only for the call: a frozen parameter stays frozen, the others
    require gradients again afterwards."""
    model, images, targets = model_and_images
    parameters = list(model.parameters())
    filled = []
    handles = [parameter.register_hook(lambda grad: filled.append(1)) for parameter in parameters[1:]]
    parameters[0].requires_grad_(False)
    try:
        grad_cam(model, images, targets, LAYERS)
        flags = [parameter.requires_grad for parameter in parameters]
    finally:
        for handle in handles:
            handle.remove()
        parameters[0].requires_grad_(True)
    assert not filled
    assert flags == [False] + [True] * (len(parameters) - 1)


def test_a_layer_run_twice_cannot_share_a_pass() -> None:
    """torchvision's BasicBlock calls its ReLU twice: grad-cam would pair the maps with the wrong layers."""
    model = torchvision.models.resnet18(num_classes=10).eval()
    with pytest.raises(ValueError, match="to share a pass, each must be listed once and run once"):
        grad_cam.__wrapped__(model, torch.randn(2, 3, 64, 64), torch.tensor([1, 3]), ["layer3", "layer4.1.relu"])


def test_layers_that_stand_for_a_pooled_stage_are_named_only_where_a_stage_ends_in_pooling() -> None:
    """The FER CNN's stages end with a max-pool: its default layers are each stage's last ReLU, and the notes
    say so; a ResNet's stages end with a block, so its notes say nothing of pooling."""
    fer = explain_grad_cam(small_fer_cnn(), ExplainBatch(torch.randn(2, 1, 48, 48), torch.tensor([1, 2]),
                                                         torch.zeros(1, 1, 48, 48), 7), CamParams())  # fmt: skip
    assert fer.pooled == {"layer2.relu2": "layer2", "layer3.relu2": "layer3", "layer4.relu2": "layer4"}
    assert fer.notes()[-1].startswith(
        "layer2, layer3 and layer4 end with pooling, so each is mapped at its last layer before the pooling "
        "(layer2.relu2, layer3.relu2, layer4.relu2)"
    )
    assert layer_notes({}, {"layer4.relu2": "layer4"})[0].startswith("layer4 ends with pooling, so it is mapped")
    resnet = explain_layer_cam(small_resnet(), ExplainBatch(torch.randn(2, 3, 65, 65), torch.tensor([1, 2]),
                                                            torch.zeros(1, 3, 65, 65), 10), CamParams())  # fmt: skip
    assert resnet.pooled == {} and not any("pooling" in note for note in resnet.notes())
