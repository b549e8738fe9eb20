"""Feature inversion: the optimization reaches the target features, for early and deep layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from convlens.explain.inversion import Inversion, InversionParams, Inversions, invert_features
from convlens.models import FerCNN, ResNet


def _models() -> list[tuple[nn.Module, int, int, str]]:
    torch.manual_seed(0)
    return [
        (ResNet(18, 10, 3).eval(), 3, 32, "layer4.1.relu"),
        (FerCNN(7, 1, widths=(8, 16, 32, 64)).eval(), 1, 48, "layer4.relu2"),
    ]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = _models()
IDS = ["resnet18-rgb", "fercnn-gray"]
FAST = InversionParams(steps=64)


@pytest.mark.parametrize(("model", "channels", "size", "deep"), MODELS, ids=IDS)
@pytest.mark.parametrize("depth", ["early", "deep"])
def test_inversion_cuts_the_feature_loss_by_ninety_percent(
    model: nn.Module, channels: int, size: int, deep: str, depth: str
) -> None:
    """Default settings but 64 steps (the loss flattens out after ~30); seed-0 models, seed-1 images:
    all reach < 5% of the starting loss in our runs."""
    torch.manual_seed(1)
    images = torch.randn(2, channels, size, size)
    layer = "stem.relu" if depth == "early" else deep
    result = invert_features(model, images, layer, FAST)
    assert result.layer == layer
    assert result.images.shape == images.shape
    assert result.feature_loss.shape == (FAST.steps + 1, 2)
    assert result.loss.shape == (FAST.steps, 2)
    assert (result.feature_loss[-1] <= 0.1 * result.feature_loss[0]).all()
    assert not torch.allclose(result.images, images)  # the priors keep it from copying noise exactly


@pytest.mark.parametrize(("model", "channels", "size", "deep"), MODELS, ids=IDS)
def test_the_image_correlation_tells_a_kept_picture_from_a_matched_feature(
    model: nn.Module, channels: int, size: int, deep: str
) -> None:
    """Both layers' feature losses fall by 90%, but only the early layer gives the picture back: the
    correlation with the input (numpy's Pearson) is near 1 there and near 0 at the deep, coarse layer."""
    rows, columns = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = ((rows**2 + columns**2) < 0.4).float() * 2 - 1
    images = torch.stack([disc, -disc])[:, None].expand(-1, channels, -1, -1).contiguous()
    early, late = (invert_features(model, images, layer, FAST) for layer in ("stem.relu", deep))
    for found in (early, late):
        expected = [np.corrcoef(found.images[i].flatten(), images[i].flatten())[0, 1] for i in range(2)]
        np.testing.assert_allclose(found.image_correlation.numpy(), expected, atol=1e-5)
    assert (early.image_correlation > 0.9).all() and (late.image_correlation < 0.5).all()


def test_images_are_inverted_independently() -> None:
    """Each image's loss depends on that image only: image 0 follows the same path alone as in a batch
    (the seeded start noise of image 0 is the same in both)."""
    model, channels, size, _ = MODELS[1]
    images = torch.randn(2, channels, size, size)
    config = InversionParams(steps=8)
    batch = invert_features(model, images, "layer2", config)
    alone = invert_features(model, images[:1], "layer2", config)
    assert torch.allclose(batch.loss[:, 0], alone.loss[:, 0], rtol=1e-4, atol=1e-6)


def test_bad_settings_are_reported() -> None:
    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        InversionParams(steps=0)


def test_unknown_layer_is_reported_before_optimizing() -> None:
    model = MODELS[1][0]
    with pytest.raises(ValueError, match="unknown layer 'conv5'; valid layers: stem"):
        invert_features(model, torch.randn(1, 1, 48, 48), "conv5")


def _inversion(layer: str, start: float, end: float, correlation: float) -> Inversion:
    return Inversion(layer, torch.zeros(2, 1, 4, 4), torch.tensor([[start, start], [end, end]]), torch.zeros(1, 2),
                     torch.full((2,), correlation))  # fmt: skip


def test_a_matched_layer_whose_images_show_noise_gets_a_note() -> None:
    """Feature loss down 95% with correlation 0.04 (demo_shapes layer4): said; a kept picture or an unmatched
    layer is not."""
    found = Inversions({"deep": _inversion("deep", 1.0, 0.05, 0.04), "shallow": _inversion("shallow", 1.0, 0.01, 0.98),
                        "unmatched": _inversion("unmatched", 1.0, 0.8, 0.04)})  # fmt: skip
    [note] = found.notes()
    assert note.startswith("deep: the inverted images match the layer's features (mean feature loss drop 0.950, at")
    assert "yet correlate 0.04 with their inputs (under 0.3)" in note
    near = Inversions({"deep": _inversion("deep", 1.0, 0.00451, 0.04)})  # rounded once, as the caption's score is
    assert near.scores(0)["feature_loss_drop_deep"] == pytest.approx(0.9955)
    assert f"drop {near.scores(0)['feature_loss_drop_deep']:#.3g}," in near.notes()[0], "note and caption agree"
