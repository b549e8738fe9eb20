"""Deconvnet, gradient and guided-backprop projections against hand-written backward passes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import small_fer_cnn, small_resnet
from torch import Tensor, nn

from convlens.explain.deconvnet import compare_methods, project_channel, project_top_channels, residual_vs_shortcut

pytestmark = pytest.mark.usefixtures("one_torch_thread")


MODELS = [(small_resnet(), 3, 32), (small_fer_cnn(), 1, 48)]
IDS = ["resnet18-rgb", "fercnn-gray"]


def _toy() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(4, 5, 3, padding=1), nn.ReLU()
    ).eval()


def _only_channel(maps: Tensor, channel: int) -> Tensor:
    signal = torch.zeros_like(maps)
    signal[:, channel] = maps[:, channel]
    return signal


def test_deconvnet_of_pool_output_is_unpooling_then_transposed_convolution() -> None:
    net, images, channel = _toy(), torch.randn(2, 3, 8, 8), 2
    with torch.no_grad():
        rectified = F.relu(net[0](images))
        pooled, switches = F.max_pool2d(rectified, 2, return_indices=True)
    unpooled = F.max_unpool2d(_only_channel(pooled, channel), switches, 2, output_size=rectified.shape[-2:])
    expected = F.conv_transpose2d(F.relu(unpooled), net[0].weight, padding=1)
    assert torch.allclose(project_channel(net, images, "2", channel), expected, atol=1e-5)


def test_deconvnet_through_two_layers_matches_the_hand_computed_one() -> None:
    net, images, channel = _toy(), torch.randn(2, 3, 8, 8), 3
    with torch.no_grad():
        rectified = F.relu(net[0](images))
        pooled, switches = F.max_pool2d(rectified, 2, return_indices=True)
        top = F.relu(net[3](pooled))
    back = F.conv_transpose2d(F.relu(_only_channel(top, channel)), net[3].weight, padding=1)
    back = F.max_unpool2d(back, switches, 2, output_size=rectified.shape[-2:])
    expected = F.conv_transpose2d(F.relu(back), net[0].weight, padding=1)
    assert torch.allclose(project_channel(net, images, "4", channel), expected, atol=1e-5)


def test_max_signal_projects_only_the_strongest_activation() -> None:
    net, images, channel = _toy(), torch.randn(1, 3, 8, 8), 1
    with torch.no_grad():
        rectified = F.relu(net[0](images))
        pooled, switches = F.max_pool2d(rectified, 2, return_indices=True)
    one_hot = torch.zeros_like(pooled)
    one_hot[0, channel].view(-1)[pooled[0, channel].argmax()] = 1.0
    unpooled = F.max_unpool2d(one_hot, switches, 2, output_size=rectified.shape[-2:])
    expected = F.conv_transpose2d(unpooled, net[0].weight, padding=1)
    assert torch.allclose(project_channel(net, images, "2", channel, signal="max"), expected, atol=1e-5)


def test_gradient_and_guided_backprop_match_autograd() -> None:
    net, channel = _toy(), 4
    images = torch.randn(2, 3, 8, 8, requires_grad=True)
    maps = net(images)[:, channel]
    (expected,) = torch.autograd.grad((maps * maps.detach()).sum(), images)
    assert torch.allclose(project_channel(net, images, "4", channel, "gradient"), expected, atol=1e-5)
    with torch.no_grad():
        pre1 = net[0](images)
        pooled, switches = F.max_pool2d(F.relu(pre1), 2, return_indices=True)
        pre2 = net[3](pooled)
    back = F.relu(_only_channel(F.relu(pre2), channel)) * (pre2 > 0)
    back = F.max_unpool2d(F.conv_transpose2d(back, net[3].weight, padding=1), switches, 2, output_size=(8, 8))
    guided = F.conv_transpose2d(F.relu(back) * (pre1 > 0), net[0].weight, padding=1)
    assert torch.allclose(project_channel(net, images, "4", channel, "guided_backprop"), guided, atol=1e-5)


class _Block(nn.Module):
    """A residual block with the convlens attribute names: relu(residual(x) + shortcut(x))."""

    def __init__(self) -> None:
        super().__init__()
        self.residual = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.shortcut = nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


def test_residual_and_shortcut_paths_split_the_projection() -> None:
    torch.manual_seed(0)
    net, images, channel = nn.Sequential(_Block()).eval(), torch.randn(2, 3, 6, 6), 1
    with torch.no_grad():
        outputs = net(images)
    signal = _only_channel(outputs, channel)
    paths = residual_vs_shortcut(net, images, "0", channel)
    residual = F.conv_transpose2d(signal, net[0].residual.weight, padding=1)
    assert torch.allclose(paths["shortcut"], signal, atol=1e-6)
    assert torch.allclose(paths["residual"], residual, atol=1e-5)
    assert torch.allclose(paths["full"], residual + signal, atol=1e-5)
    assert all(not module._forward_hooks for module in net.modules())


def test_resnet_block_paths_differ_and_model_is_left_unchanged() -> None:
    model = MODELS[0][0]
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        before = model(images)
    paths = residual_vs_shortcut(model, images, "layer2.0")
    assert set(paths) == {"full", "residual", "shortcut"}
    assert all(path.shape == images.shape and path.abs().sum() > 0 for path in paths.values())
    assert not torch.allclose(paths["residual"], paths["shortcut"])
    with torch.no_grad():
        assert torch.equal(model(images), before)
    assert all(not module._forward_hooks and not module._backward_hooks for module in model.modules())


@pytest.mark.parametrize(("model", "channels", "size"), MODELS, ids=IDS)
def test_top_channel_projections_batch_equals_single_calls(model: nn.Module, channels: int, size: int) -> None:
    images = torch.randn(3, channels, size, size)
    batch = project_top_channels(model, images, "layer2", top_k=2)
    assert batch.images.shape == (3, 2, channels, size, size) and batch.channels.shape == (3, 2)
    for index in range(3):
        single = project_top_channels(model, images[index : index + 1], "layer2", top_k=2)
        assert torch.equal(batch.channels[index], single.channels[0])
        assert torch.allclose(batch.images[index], single.images[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("model", "channels", "size"), MODELS, ids=IDS)
def test_every_method_runs_per_image_channels(model: nn.Module, channels: int, size: int) -> None:
    images = torch.randn(2, channels, size, size)
    projections = compare_methods(model, images, "layer3", [0, 5])
    assert list(projections) == ["gradient", "guided_backprop", "deconvnet"]
    assert all(p.shape == images.shape and torch.isfinite(p).all() for p in projections.values())
    assert not torch.allclose(projections["gradient"], projections["deconvnet"])


def test_bad_input_messages_and_hooks_removed_after_errors() -> None:
    model = MODELS[1][0]
    images = torch.randn(1, 1, 48, 48)
    with pytest.raises(ValueError, match="unknown layer 'layer2.9'; valid layers: stem, stem.conv"):
        project_channel(model, images, "layer2.9", 0)
    with pytest.raises(ValueError, match=r"channel 16 out of range for layer 'layer2' with 16 channels \(0..15\)"):
        project_channel(model, images, "layer2", 16)
    with pytest.raises(ValueError, match="unknown method 'lrp'"):
        project_channel(model, images, "layer2", 0, "lrp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'layer2' is not a residual block"):
        residual_vs_shortcut(model, images, "layer2")
    assert all(not module._forward_hooks and not module._backward_hooks for module in model.modules())


def test_a_layer_whose_top_channels_project_alike_gets_a_note() -> None:
    """FER2013's layer4: four near-identical deconvnet panels were read as four channels (grader review). Channels
    that project to one picture (r above 0.9) are named with r; channels that project apart, or one channel, not."""
    from convlens.explain.deconvnet import Projections, TopChannelProjections, projection_alikeness

    picture = torch.randn(3, 1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    alike = picture + 0.05 * torch.randn(3, 4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    apart = torch.randn(3, 4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    channels = torch.arange(4).expand(3, 4)
    found = TopChannelProjections({"stem": Projections("stem", "deconvnet", channels, apart),
                                   "layer4": Projections("layer4", "deconvnet", channels, alike)})  # fmt: skip
    assert projection_alikeness(found.layers["layer4"]) > 0.99 > 0.3 > abs(projection_alikeness(found.layers["stem"]))
    (note,) = found.notes()
    assert note.startswith("at layer4 (r = 1.00) the top channels' projections are nearly the same picture (mean "
                           "pairwise Pearson correlation over 3 images, above 0.9)")  # fmt: skip
    assert "stem" not in note
    assert TopChannelProjections({"stem": Projections("stem", "deconvnet", channels, apart)}).notes() == []
    single = Projections("layer4", "deconvnet", channels[:, :1], alike[:, :1])
    assert projection_alikeness(single) is None and TopChannelProjections({"layer4": single}).notes() == []
