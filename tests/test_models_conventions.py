"""The model-conventions adapter: torchvision models that break the conventions are adapted (same
outputs, one non-inplace ReLU module per use) so Grad-CAM and guided backprop come out right; our
own models are returned untouched; what cannot be adapted is refused by name. Random weights, no
download; the numbers print with ``-s``."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F
import torchvision
from captum.attr import LayerGradCam
from torch import Tensor, nn

from convlens.explain.attribution import guided_gradients
from convlens.explain.cam import grad_cam
from convlens.models import VGG, AlexNet, ConventionError, FerCNN, GoogLeNet, ResNet, adapt, violations

TORCHVISION = ["resnet18", "vgg11_bn", "densenet121", "mobilenet_v3_small"]


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        warnings.filterwarnings("ignore", message="Input Tensor .* did not already require gradients")
        yield


def relu_uses(model: nn.Module, images: Tensor) -> list[int]:
    """How often each nn.ReLU module runs in one forward pass."""
    relus = [module for module in model.modules() if isinstance(module, nn.ReLU)]
    calls = dict.fromkeys(map(id, relus), 0)
    hooks = [r.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1)) for r in relus]
    with torch.no_grad():
        model(images)
    for hook in hooks:
        hook.remove()
    return list(calls.values())


@pytest.mark.parametrize(
    "model",
    [ResNet(18, 10), ResNet(50, 10), FerCNN(7, 1, widths=(8, 16, 32, 64)), AlexNet(10), VGG(11, 10), GoogLeNet(10)],
    ids=["resnet18", "resnet50", "fer_cnn", "alexnet", "vgg11", "googlenet"],
)
def test_our_models_are_returned_untouched(model: nn.Module) -> None:
    assert violations(model) == []
    assert adapt(model) is model


@pytest.mark.parametrize("arch", TORCHVISION)
def test_torchvision_models_are_adapted_with_the_same_outputs(arch: str, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    model = getattr(torchvision.models, arch)(num_classes=10).eval()
    images = torch.randn(2, 3, 64, 64)
    assert violations(model)
    with caplog.at_level(logging.INFO, logger="convlens.models.conventions"):
        adapted = adapt(model)
    assert f"adapted {type(model).__name__} to the model conventions" in caplog.text
    with torch.no_grad():
        assert torch.equal(model(images), adapted(images))
    assert set(relu_uses(adapted, images)) == {1}
    assert not any(getattr(module, "inplace", False) for module in adapted.modules())
    assert violations(adapted) == []
    assert any(getattr(module, "inplace", False) for module in model.modules()), "the argument is left as it was"


def test_reused_relu_gets_a_module_per_use_and_names_and_hooks_stay() -> None:
    model = torchvision.models.resnet18(num_classes=10).eval()
    assert "layer4.1 (BasicBlock): 'relu' is called 2 times per forward" in violations(model)
    assert "layer4.1 (BasicBlock): operates in place ('+='), overwriting a tensor a hook may hold" in violations(model)
    adapted = adapt(model)
    block = adapted.layer4[1]
    assert [name for name, _ in block.named_children()] == ["conv1", "bn1", "relu", "conv2", "bn2", "relu_1"]
    assert type(block).__name__ == "BasicBlock"
    assert set(adapted.state_dict()) == set(model.state_dict())
    fired = []
    for name in ("layer4", "layer4.1", "layer4.1.relu_1"):
        adapted.get_submodule(name).register_forward_hook(lambda m, i, o, name=name: fired.append(name))
    with torch.no_grad():
        adapted(torch.randn(1, 3, 64, 64))
    assert sorted(fired) == ["layer4", "layer4.1", "layer4.1.relu_1"]


def test_in_place_add_no_longer_overwrites_a_captured_feature_map() -> None:
    """torchvision's ``out += identity`` alters bn2's output after a hook captured it."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    images = torch.randn(1, 3, 64, 64)

    def captured_vs_recomputed(net: nn.Module) -> tuple[Tensor, Tensor]:
        block, seen = net.layer1[0], {}

        def keep(name: str, tensor: Tensor) -> None:  # a hook returning a value would replace the output
            seen.setdefault(name, tensor)

        handles = [block.register_forward_hook(lambda m, i, o: keep("in", i[0].clone())),
                   block.bn2.register_forward_hook(lambda m, i, o: keep("bn2", o))]  # fmt: skip
        with torch.no_grad():
            net(images)
        for handle in handles:
            handle.remove()
        with torch.no_grad():
            return seen["bn2"], block.bn2(block.conv2(block.relu(block.bn1(block.conv1(seen["in"])))))

    assert not torch.allclose(*captured_vs_recomputed(model))
    assert torch.allclose(*captured_vs_recomputed(adapt(model)))


def pearson(a: Tensor, b: Tensor) -> Tensor:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))


def captum_grad_cam(model: nn.Module, images: Tensor, targets: Tensor, layer: str) -> Tensor:
    """captum's LayerGradCam, upsampled bilinearly to the input as grad-cam does."""
    maps = LayerGradCam(model, model.get_submodule(layer)).attribute(images, target=targets, relu_attributions=True)
    return F.interpolate(maps, size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0].detach()


def test_grad_cam_on_a_reused_relu_agrees_with_captum_only_after_adaptation() -> None:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10).eval()
    images, targets = torch.randn(2, 3, 64, 64), torch.tensor([1, 3])
    adapted = adapt(model)
    agreement = {}
    for label, net, layer in (("before", model, "layer4.1.relu"), ("after", adapted, "layer4.1.relu"),
                              ("after", adapted, "layer4.1.relu_1")):  # fmt: skip
        ours = grad_cam.__wrapped__(net, images, targets, [layer])[layer]  # unchecked: grad_cam refuses `model`
        agreement[f"{label} {layer}"] = pearson(ours, captum_grad_cam(net, images, targets, layer))
    print({key: [round(value, 4) for value in values.tolist()] for key, values in agreement.items()})
    assert agreement["before layer4.1.relu"].min() < 0.9
    assert agreement["after layer4.1.relu"].min() > 0.99
    assert agreement["after layer4.1.relu_1"].min() > 0.99


class GuidedReLU(torch.autograd.Function):
    """ReLU whose backward passes only positive gradients where the input was positive."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad.clamp(min=0) * (x > 0)


def reference_guided_backprop(
    model: nn.Module, images: Tensor, targets: Tensor, monkeypatch: pytest.MonkeyPatch
) -> Tensor:
    """Guided backprop by hand: every F.relu (nn.ReLU calls it too) replaced by GuidedReLU."""
    with monkeypatch.context() as patch:
        patch.setattr(F, "relu", lambda input, inplace=False: GuidedReLU.apply(input))
        images = images.clone().requires_grad_(True)
        model(images).gather(1, targets[:, None]).sum().backward()
    return images.grad


def test_guided_backprop_through_functional_relu_is_right_only_after_adaptation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    model = torchvision.models.densenet121(num_classes=10).eval()
    images, targets = torch.randn(2, 3, 32, 32), torch.tensor([1, 3])
    reference = reference_guided_backprop(model, images, targets, monkeypatch)
    error = {
        # unchecked (__wrapped__): guided_gradients refuses `model`, and the "before" error shows why
        label: ((guided_gradients.__wrapped__(net, images, targets) - reference).norm() / reference.norm()).item()
        for label, net in (("before", model), ("after", adapt(model)))
    }
    print(f"densenet121 guided backprop, relative L2 to the reference: {error}")
    assert error["before"] > 0.05
    assert error["after"] < 1e-5


class SharedConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.conv(self.conv(x)))


class ShapeDependent(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) if x.shape[-1] > 8 else x


class OptionalArgument(nn.Module):
    def forward(self, x: Tensor, shift: Tensor | None = None) -> Tensor:
        return F.relu(x if shift is None else x + shift)


def test_what_cannot_be_adapted_is_refused_by_name() -> None:
    with pytest.raises(ConventionError, match=r"conv' is called 2 times per forward, sharing weights"):
        adapt(nn.Sequential(SharedConv()))
    with pytest.raises(ConventionError, match=r"1 \(ShapeDependent\): forward cannot be traced by torch.fx"):
        adapt(nn.Sequential(nn.Conv2d(3, 3, 1), ShapeDependent()))
    with pytest.raises(ConventionError, match=r"forward takes optional arguments, which a traced graph would fix"):
        adapt(OptionalArgument())


class Functional(nn.Module):
    """Every kind of functional or in-place ReLU and in-place arithmetic on local tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        kept = y
        y.add_(1.0)
        z = torch.relu(y) + F.relu(y - 1, inplace=True) + (y * 2).relu_()
        z *= 0.5
        return z + kept


def test_functional_and_in_place_operations_are_rewritten_faithfully() -> None:
    model = Functional().eval()
    found = violations(model)
    assert "<model> (Functional): calls torch.relu in forward, which guided backprop and deconvnet do not see" in found
    assert "<model> (Functional): operates in place (Tensor.add_), overwriting a tensor a hook may hold" in found
    assert "<model> (Functional): operates in place ('*='), overwriting a tensor a hook may hold" in found
    adapted = adapt(model)
    images = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(images), adapted(images))
    assert relu_uses(adapted, images) == [1, 1, 1]


def test_in_place_change_of_the_input_is_refused() -> None:
    class Mutating(nn.Module):
        def forward(self, x: Tensor) -> Tensor:
            x += 1
            return x

    with pytest.raises(ConventionError, match=r"operates in place \('\+=' on its input\)"):
        adapt(Mutating())
