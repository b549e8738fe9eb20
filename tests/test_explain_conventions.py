"""The explain functions refuse a model that breaks the conventions (torchvision's resnet18 reuses a
ReLU per block, densenet121 calls F.relu and has an in-place ReLU), and on its adapted copy give
what captum, pytorch-grad-cam and plain forward hooks give."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch
import torchvision
from captum.attr import GuidedBackprop
from conftest import small_resnet
from pytorch_grad_cam import GradCAM, LayerCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import Tensor, nn

from convlens.explain.attribution import guided_gradients
from convlens.explain.cam import grad_cam, layer_cam
from convlens.explain.features import feature_maps
from convlens.models import ConventionError, adapt
from convlens.models.conventions import check_conventions

pytestmark = [
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:Setting backward hooks on ReLU", "ignore:Input Tensor 0 did not already"),
]

#: Per architecture: the layer the CAMs and feature maps are taken at (resnet18's layer4.1.bn2 is
#: overwritten by its block's in-place ReLU; densenet121's features.norm5 by its final in-place one).
ARCHITECTURES = {"resnet18": "layer4.1.bn2", "densenet121": "features.norm5"}
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


@pytest.fixture(params=sorted(ARCHITECTURES), scope="module")
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, nn.Module, str, Tensor, Tensor]:
    """(raw model, adapted copy, layer, images, targets): seeded, untrained, eval mode, 64 px."""
    torch.manual_seed(0)
    model = getattr(torchvision.models, request.param)(weights=None, num_classes=5).eval()
    images = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    return model, adapt(model), ARCHITECTURES[request.param], images, torch.tensor([1, 3])


def _grad_cam_package(method: type, model: nn.Module, images: Tensor, targets: Tensor, layer: str) -> Tensor:
    with method(model=model, target_layers=[model.get_submodule(layer)]) as cam:
        maps = cam(input_tensor=images, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    model.zero_grad(set_to_none=True)
    return torch.from_numpy(maps)


def _hooked_output(model: nn.Module, images: Tensor, layer: str) -> Tensor:
    captured: dict[str, Tensor] = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: captured.update(a=out.clone()))
    with torch.no_grad():
        model(images)
    handle.remove()
    return captured["a"]


CALLS: dict[str, Callable[[nn.Module, Tensor, Tensor, str], Tensor]] = {
    "grad_cam": lambda model, images, targets, layer: grad_cam(model, images, targets, [layer])[layer],
    "layer_cam": lambda model, images, targets, layer: layer_cam(model, images, targets, [layer])[layer],
    "guided_gradients": lambda model, images, targets, layer: guided_gradients(model, images, targets),
    "feature_maps": lambda model, images, targets, layer: feature_maps(model, images, [layer])[layer].maps,
}
REFERENCES: dict[str, Callable[[nn.Module, Tensor, Tensor, str], Tensor]] = {
    "grad_cam": lambda model, images, targets, layer: _grad_cam_package(GradCAM, model, images, targets, layer),
    "layer_cam": lambda model, images, targets, layer: _grad_cam_package(LayerCAM, model, images, targets, layer),
    "guided_gradients": lambda model, images, targets, layer: GuidedBackprop(model).attribute(images, target=targets),
    "feature_maps": lambda model, images, targets, layer: _hooked_output(model, images, layer),
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_a_raw_torchvision_model_is_refused_with_the_fix(case: tuple, method: str) -> None:
    model, _, layer, images, targets = case
    with pytest.raises(ConventionError, match=r"relu.*convlens\.models\.adapt\(model\)"):
        CALLS[method](model, images, targets, layer)


@pytest.mark.parametrize("method", sorted(CALLS))
def test_the_adapted_model_gives_the_reference_maps(case: tuple, method: str) -> None:
    _, adapted, layer, images, targets = case
    ours = CALLS[method](adapted, images, targets, layer)
    torch.testing.assert_close(ours, REFERENCES[method](adapted, images, targets, layer).detach(), **TOLERANCE)


def test_the_refusal_names_a_few_modules_then_a_count() -> None:
    model = torchvision.models.resnet18(weights=None, num_classes=5)
    with pytest.raises(ConventionError, match=r"relu \(ReLU\): operates in place.*; and \d+ more\. "):
        check_conventions(model)


def test_our_models_and_adapted_ones_pass() -> None:
    check_conventions(small_resnet())
    check_conventions(adapt(torchvision.models.resnet18(weights=None, num_classes=5)))


def test_the_check_is_cached_and_a_swapped_submodule_rechecked() -> None:
    model = adapt(torchvision.models.resnet18(weights=None, num_classes=5))
    start = time.perf_counter()
    check_conventions(model)
    first = time.perf_counter() - start
    start = time.perf_counter()
    check_conventions(model)
    cached = time.perf_counter() - start
    print(f"check_conventions on resnet18: first {first * 1e3:.1f} ms, cached {cached * 1e6:.0f} us")
    assert cached < min(first / 10, 0.005)
    model.layer1[0].relu = nn.ReLU(inplace=True)
    with pytest.raises(ConventionError, match="layer1.0.relu"):
        check_conventions(model)
