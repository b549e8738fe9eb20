"""The models: Table-1 ResNets with torchvision's parameter counts, FER CNN, shared conventions."""

from __future__ import annotations

import inspect

import pytest
import torch
import torchvision
from torch import nn

from convlens.models import NAMED_STAGES, RESNET_SPECS, FerCNN, ResNet


@pytest.mark.parametrize("depth", sorted(RESNET_SPECS))
def test_resnet_parameter_count_equals_torchvision(depth: int) -> None:
    ours = sum(p.numel() for p in ResNet(depth, num_classes=10).parameters())
    reference = getattr(torchvision.models, f"resnet{depth}")(num_classes=10)
    assert ours == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 64)])
def test_resnet_forward_shapes(channels: int, size: int) -> None:
    model = ResNet(18, num_classes=7, in_channels=channels).eval()
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


@pytest.mark.parametrize("channels", [1, 3])
def test_fer_cnn_forward_shapes(channels: int) -> None:
    model = FerCNN(num_classes=7, in_channels=channels, widths=(8, 16, 32, 64)).eval()
    assert model(torch.randn(2, channels, 48, 48)).shape == (2, 7)


def test_unknown_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"model.depth=19 .*18, 34, 50, 101, 152"):
        ResNet(19)


@pytest.mark.parametrize(
    "model", [ResNet(18, 10), ResNet(50, 10), FerCNN(7, 1, widths=(8, 16, 32, 64))], ids=["r18", "r50", "fer"]
)
def test_conventions_named_stages_and_one_relu_module_per_use(model: nn.Module) -> None:
    assert [name for name, _ in model.named_children()] == list(NAMED_STAGES)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(relu.inplace for relu in relus)
    calls = {id(relu): 0 for relu in relus}
    hooks = [relu.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1)) for relu in relus]
    model.eval()(torch.randn(1, model.in_channels, 64, 64))
    for hook in hooks:
        hook.remove()
    assert set(calls.values()) == {1}, "every ReLU module must be used exactly once per forward"
    for module in model.modules():
        if type(module).__module__.startswith("convlens."):
            assert "relu(" not in inspect.getsource(type(module).forward).replace("self.relu(", "")


def test_residual_blocks_start_as_identity_mapping() -> None:
    model = ResNet(18, 10)
    block = model.layer1[0]
    assert torch.count_nonzero(block.residual.conv2[1].weight) == 0
