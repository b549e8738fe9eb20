"""Layer helpers: name lookup with helpful errors, activation hooks, defaults per model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.models import FerCNN, ResNet
from convlens.models.layers import (
    before_pooling,
    capture_activations,
    check_channels,
    default_cam_layers,
    default_feature_layers,
    eval_mode,
    first_conv_name,
    last_relu,
    layer_names,
    layer_output,
    pooled_stages,
    resolve_layer,
)


def _toy() -> nn.Module:
    return nn.Sequential(
        nn.Sequential(nn.BatchNorm2d(3), nn.Conv2d(3, 4, 3)), nn.ReLU(), nn.Dropout(), nn.Conv2d(4, 2, 1)
    )


def test_resolve_layer_returns_the_named_submodule() -> None:
    model = ResNet(18, 10, 3)
    assert resolve_layer(model, "layer4.1.residual.conv2") is model.layer4[1].residual.conv2
    assert resolve_layer(model, "stem.conv") is model.stem.conv


@pytest.mark.parametrize("name", ["layer9", "", "stem.conv.weight", "layer1.7"])
def test_unknown_layer_message_lists_valid_names(name: str) -> None:
    model = FerCNN(7, 1, widths=(8, 16, 32, 64))
    with pytest.raises(ValueError, match=f"unknown layer '{name}'") as error:
        resolve_layer(model, name)
    assert "valid layers: stem, stem.conv, stem.bn, stem.relu, layer1" in str(error.value)
    assert "head.fc2" in str(error.value)


def test_layer_names_in_definition_order_without_root() -> None:
    assert layer_names(_toy()) == ["0", "0.0", "0.1", "1", "2", "3"]


def test_first_conv_is_found_inside_nested_modules() -> None:
    assert first_conv_name(_toy()) == "0.1"
    assert first_conv_name(ResNet(18, 10, 1)) == "stem.conv"
    with pytest.raises(ValueError, match="no nn.Conv2d"):
        first_conv_name(nn.Sequential(nn.Linear(2, 2)))


def test_capture_activations_stores_outputs_and_removes_hooks_even_on_error() -> None:
    model = _toy().eval()
    images = torch.randn(2, 3, 8, 8)
    with capture_activations(model, ["1", "3"]) as captured:
        logits = model(images)
    assert torch.equal(captured["3"], logits)
    assert torch.equal(captured["1"], torch.relu(model[0](images)))
    with pytest.raises(RuntimeError, match="boom"), capture_activations(model, ["1"]):
        raise RuntimeError("boom")
    assert all(not module._forward_hooks for module in model.modules())


def test_layer_output_keeps_the_graph_for_backprop() -> None:
    model = _toy().eval()
    images = torch.randn(1, 3, 6, 6, requires_grad=True)
    layer_output(model, images, "1").sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0


def test_default_feature_layers_are_stem_and_conv5_activations() -> None:
    assert default_feature_layers(ResNet(18, 10, 3)) == ["stem.relu", "layer4.1.relu"]
    assert default_feature_layers(ResNet(50, 10, 3)) == ["stem.relu", "layer4.2.relu"]
    assert default_feature_layers(FerCNN(7, 1, widths=(8, 16, 32, 64))) == ["stem.relu", "layer4.relu2"]
    with pytest.raises(ValueError, match="contains no nn.ReLU"):
        last_relu(FerCNN(7, 1, widths=(8, 16, 32, 64)), "stem.conv")


def test_class_activation_maps_are_taken_before_a_stage_pools() -> None:
    """Grad-CAM's last convolutional layer: a VGG-style stage's last ReLU (before its max-pool and
    dropout), a ResNet stage (no pooling) as it is; a stage of pooling alone is left as it is."""
    fer = FerCNN(7, 1, widths=(8, 16, 32, 64))
    assert default_cam_layers(fer) == ["layer2.relu2", "layer3.relu2", "layer4.relu2"]
    assert default_cam_layers(ResNet(18, 10, 3)) == ["layer2", "layer3", "layer4"]
    with torch.no_grad():
        before = fer.get_submodule(before_pooling(fer, "layer4"))
        sizes = {}
        hooks = [module.register_forward_hook(lambda m, i, out, key=key: sizes.update({key: out.shape[-1]}))
                 for key, module in (("before", before), ("after", fer.layer4))]  # fmt: skip
        fer.eval()(torch.randn(1, 1, 48, 48))
    for hook in hooks:
        hook.remove()
    assert sizes == {"before": 6, "after": 3}
    pooling = nn.Sequential(nn.Conv2d(1, 1, 1), nn.Sequential(nn.MaxPool2d(2), nn.Dropout()))
    only_pooling = nn.Module()
    only_pooling.layer4 = nn.Sequential(nn.MaxPool2d(2), nn.Dropout())
    assert before_pooling(only_pooling, "layer4") == "layer4"
    wrapped = nn.Module()
    wrapped.layer4 = pooling
    assert before_pooling(wrapped, "layer4") == "layer4"  # the pooling is inside a child: not a trailing pool
    assert pooled_stages(fer, ["layer4.relu2", "layer4.conv1", "layer3"]) == {"layer4.relu2": "layer4"}
    assert pooled_stages(ResNet(18, 10, 3), ["layer4", "layer4.1.relu"]) == {}


def test_eval_mode_restores_each_module_flag() -> None:
    model = _toy().train()
    model[2].eval()
    with eval_mode(model):
        assert not any(module.training for module in model.modules())
    assert model.training and model[0].training and not model[2].training


def test_check_channels_message() -> None:
    output = torch.zeros(1, 4, 2, 2)
    check_channels(output, [0, 3], "conv")
    with pytest.raises(ValueError, match=r"channel 4 out of range for layer 'conv' with 4 channels \(0..3\)"):
        check_channels(output, [1, 4], "conv")
    with pytest.raises(ValueError, match="channel -1 out of range"):
        check_channels(output, [-1], "conv")
