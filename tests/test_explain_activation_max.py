"""Activation maximization and class-model images raise their targets from the starting noise."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.explain.activation_max import AscentConfig, class_model_images, maximize_channels
from convlens.models import FerCNN, ResNet


def _models() -> list[tuple[nn.Module, int, int, str]]:
    torch.manual_seed(0)
    return [
        (ResNet(18, 10, 3).eval(), 3, 32, "layer3.1.relu"),
        (FerCNN(7, 1, widths=(8, 16, 32, 64)).eval(), 1, 48, "layer3.relu2"),
    ]


MODELS = _models()
IDS = ["resnet18-rgb", "fercnn-gray"]
#: Seed-0 models with jitter and L2 but no blur: on an untrained net the gradient is mostly high
#: frequency, which blurring undoes; here every channel gains > 15x (defaults: 9.6x-200x).
TENFOLD = AscentConfig(blur_every=0)


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_channel_activation_rises_tenfold(model: nn.Module, channels: int, size: int, layer: str) -> None:
    result = maximize_channels(model, layer, [0, 1, 2, 3], size, TENFOLD)
    assert result.layer == layer and result.targets.tolist() == [0, 1, 2, 3]
    assert result.images.shape == (4, channels, size, size)
    assert result.history.shape == (TENFOLD.steps, 4)
    assert (result.final_activation > 0).all()
    assert (result.final_activation >= 10 * result.start_activation).all()


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_defaults_run_and_each_image_targets_its_own_channel(
    model: nn.Module, channels: int, size: int, layer: str
) -> None:
    config = AscentConfig(steps=16)
    result = maximize_channels(model, layer, [5, 6], size, config)
    with torch.no_grad():
        swapped = maximize_channels(model, layer, [6, 5], size, AscentConfig(steps=0)).start_activation
    assert torch.isfinite(result.images).all()
    assert result.start_activation.shape == swapped.shape == (2,)
    assert (result.final_activation > result.start_activation).all()


def test_class_model_images_are_classified_as_their_class() -> None:
    """A toy classifier where every class is reachable: conv, ReLU, global pooling, linear."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3)).eval()
    result = class_model_images(model, [0, 1, 2], 16)
    assert result.layer == "logits" and result.images.shape == (3, 3, 16, 16)
    assert (result.final_activation > result.start_activation + 1).all()
    with torch.no_grad():
        assert model(result.images).argmax(1).tolist() == [0, 1, 2]


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_class_models_run_on_both_models(model: nn.Module, channels: int, size: int, layer: str) -> None:
    result = class_model_images(model, [0, 2], size, AscentConfig(steps=8))
    assert result.images.shape == (2, channels, size, size) and torch.isfinite(result.images).all()


def test_bad_targets_are_reported() -> None:
    model, _, size, layer = MODELS[1]
    with pytest.raises(ValueError, match=r"channel 32 out of range for layer 'layer3.relu2' with 32 channels"):
        maximize_channels(model, layer, [0, 32], size)
    with pytest.raises(ValueError, match="unknown layer 'layer3.relu9'; valid layers: stem"):
        maximize_channels(model, "layer3.relu9", [0], size)
    with pytest.raises(ValueError, match="class 7 out of range for a model with 7 classes"):
        class_model_images(model, [7], size)
