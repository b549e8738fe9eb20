"""Feature maps: the right activations, the top channels, batch-independent."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.explain.features import ChannelRanking, FeatureMaps, LayerResponses, feature_maps, top_channels
from convlens.models import FerCNN, ResNet


def _models() -> list[tuple[nn.Module, int, int]]:
    torch.manual_seed(0)
    return [(ResNet(18, 10, 3).eval(), 3, 32), (FerCNN(7, 1, widths=(8, 16, 32, 64)).eval(), 1, 48)]


MODELS = _models()
IDS = ["resnet18-rgb", "fercnn-gray"]


@pytest.mark.parametrize(("model", "channels", "size"), MODELS, ids=IDS)
def test_default_layers_maps_means_and_top_channels(model: nn.Module, channels: int, size: int) -> None:
    images = torch.randn(3, channels, size, size)
    result = feature_maps(model, images, top_k=5)
    early, deep = list(result)
    assert early == "stem.relu" and deep.startswith("layer4.")
    stem = result[early]
    with torch.no_grad():
        expected = model.stem.relu(model.stem.bn(model.stem.conv(images)))
    assert torch.allclose(stem.maps, expected)
    assert torch.allclose(stem.mean_activation, expected.mean((2, 3)))
    assert stem.top_channels.shape == (3, 5)
    ranked = stem.mean_activation.gather(1, stem.top_channels)
    assert (ranked[:, :-1] >= ranked[:, 1:]).all()
    assert torch.allclose(ranked[:, 0], stem.mean_activation.max(1).values)


@pytest.mark.parametrize(("model", "channels", "size"), MODELS, ids=IDS)
def test_batch_equals_single_calls(model: nn.Module, channels: int, size: int) -> None:
    images = torch.randn(3, channels, size, size)
    batch = feature_maps(model, images, ["layer2", "layer3"], top_k=4)
    for index in range(3):
        single = feature_maps(model, images[index : index + 1], ["layer2", "layer3"], top_k=4)
        for name in batch:
            assert torch.allclose(batch[name].maps[index], single[name].maps[0], atol=1e-5)
            assert torch.equal(batch[name].top_channels[index], single[name].top_channels[0])


def test_train_mode_model_is_evaluated_in_eval_mode_and_restored() -> None:
    model, _, _ = MODELS[1]
    model.train()
    try:
        images = torch.randn(2, 1, 48, 48)
        assert torch.allclose(
            feature_maps(model, images)["stem.relu"].maps[:1], feature_maps(model, images[:1])["stem.relu"].maps
        )
        assert model.training
    finally:
        model.eval()


def test_top_k_is_capped_and_errors_are_clear() -> None:
    model, _, _ = MODELS[1]
    images = torch.randn(1, 1, 48, 48)
    assert top_channels(model, images, "stem.conv", 100).shape == (1, 8)
    with pytest.raises(ValueError, match="unknown layer 'layer5'; valid layers: stem, stem.conv"):
        feature_maps(model, images, ["layer5"])
    with pytest.raises(ValueError, match=r"expected \(B, C, H, W\)"):
        feature_maps(model, images, ["head.fc1"])


def _layer(name: str, zero_share: float, silent: int = 0, channels: int = 10) -> FeatureMaps:
    """One image's (1, channels, 10, 10) activations: the first ``silent`` channels zero everywhere, the
    rest ones with the first ``zero_share`` of the positions zeroed; mean and top channels as computed."""
    maps = torch.ones(1, channels, 10, 10)
    maps.view(1, channels, -1)[..., : round(100 * zero_share)] = 0
    maps[:, :silent] = 0
    mean = maps.mean(dim=(2, 3))
    return FeatureMaps(name, maps, mean, mean.topk(2, dim=1).indices)


def test_feature_map_notes_count_zeros_and_silent_channels_and_flip_with_depth() -> None:
    """The feature-maps section's notes: per layer the share of zero activations and the silent channels,
    and the deepest layer against the first, sparser / denser / alike at SPARSER_BY points."""
    shallow, deep = _layer("stem.relu", 0.2), _layer("layer4.relu2", 0.2, silent=5)  # 20% then 60% zeros
    notes = LayerResponses({"stem.relu": shallow, "layer4.relu2": deep}).notes()
    assert notes[0] == ("stem.relu: 20.0% of the activations are zero and 0 of its 10 channels are zero everywhere "
                        "on the image explained")  # fmt: skip
    assert notes[1].startswith("layer4.relu2: 60.0% of the activations are zero and 5 of its 10 channels are zero")
    assert notes[2] == ("layer4.relu2 is sparser than stem.relu: +40.0 points of zero activations, so fewer of its "
                        "units respond (the note calls a difference of more than 10 points sparser or denser; a "
                        "description of the image explained, not a test)")  # fmt: skip
    reversed_order = LayerResponses({"layer4.relu2": deep, "stem.relu": shallow}).notes()
    assert reversed_order[2].startswith("stem.relu is denser than layer4.relu2: -40.0 points")
    alike = LayerResponses({"a": shallow, "b": _layer("b", 0.25)}).notes()[2]
    assert alike.startswith("b is about as sparse as a (+5.0 points of zero activations")
    assert "1 of its 10 channels is zero everywhere" in LayerResponses({"a": _layer("a", 0.2, silent=1)}).notes()[0]
    assert len(LayerResponses({"a": shallow}).notes()) == 1 and LayerResponses({}).notes() == []


def test_activation_chart_notes_give_the_top_channels_share_against_equal_channels() -> None:
    even = _layer("stem.relu", 0.0)  # every channel alike: the top 2 of 10 carry their equal 20%
    assert ChannelRanking({"stem.relu": even}).notes() == [
        "stem.relu: the 2 most active of its 10 channels carry 20% of its mean activation on the image explained, "
        "1.0x the 20.0% that 2 of 10 equal channels would carry"
    ]
    assert "carry 100% of its mean activation" in ChannelRanking({"x": _layer("x", 0.0, silent=8)}).notes()[0]
    assert ChannelRanking({"x": _layer("x", 0.0, channels=2)}).notes() == [], "both of 2 channels ranked: no note"
