"""First-layer filter grids: the right weights, each filter scaled on its own."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from convlens.explain.filters import first_conv_filters
from convlens.models import FerCNN, ResNet


@pytest.mark.parametrize("channels", [1, 3])
def test_filters_are_the_first_conv_weights_scaled_per_filter(channels: int) -> None:
    torch.manual_seed(0)
    model = ResNet(18, 10, channels)
    filters = first_conv_filters(model)
    weight = model.stem.conv.weight.detach()
    assert filters.layer == "stem.conv"
    assert filters.images.shape == (64, 7, 7, channels)
    flat = filters.images.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(64)) and torch.allclose(flat.max(1).values, torch.ones(64))
    low, high = (extreme[:, None, None, None] for extreme in weight.flatten(1).aminmax(dim=1))
    assert torch.allclose(filters.images.permute(0, 3, 1, 2) * (high - low) + low, weight, atol=1e-6)
    assert torch.allclose(
        filters.signed * weight.flatten(1).abs().max(1).values[:, None, None, None], weight, atol=1e-6
    )
    assert torch.allclose(filters.signed.flatten(1).abs().max(1).values, torch.ones(64))


def test_each_filter_is_scaled_independently() -> None:
    model = nn.Sequential(nn.Conv2d(3, 2, 2, bias=False))
    with torch.no_grad():
        model[0].weight[0] = torch.arange(12.0).view(3, 2, 2)
        model[0].weight[1] = -100 * torch.arange(12.0).view(3, 2, 2)
    filters = first_conv_filters(model)
    assert torch.allclose(filters.images[0].permute(2, 0, 1), torch.arange(12.0).view(3, 2, 2) / 11)
    assert torch.allclose(filters.images[1].permute(2, 0, 1), 1 - torch.arange(12.0).view(3, 2, 2) / 11)
    assert torch.allclose(filters.signed[1], -torch.arange(12.0).view(3, 2, 2) / 11)


def test_grayscale_and_other_channel_counts() -> None:
    fer = first_conv_filters(FerCNN(7, 1, widths=(8, 16, 32, 64)))
    assert fer.images.shape == (8, 3, 3, 1) and fer.signed.shape == (8, 1, 3, 3)
    four = first_conv_filters(nn.Sequential(nn.Conv2d(4, 5, 3)))
    assert four.images is None and four.signed.shape == (5, 4, 3, 3)


def test_constant_filter_does_not_divide_by_zero() -> None:
    model = nn.Sequential(nn.Conv2d(1, 1, 3, bias=False))
    nn.init.zeros_(model[0].weight)
    filters = first_conv_filters(model)
    assert torch.isfinite(filters.images).all() and torch.isfinite(filters.signed).all()


def test_oriented_filters_are_counted_against_random_filters_of_the_same_shape() -> None:
    """Sections 7-10 of the FER2013 report had no observation: the first layer's filters are now counted as
    oriented (edge, bar, grating) beyond what Gaussian random filters of their shape reach, with a binomial test.
    Planted edge detectors are; random filters are not, more than chance."""
    from convlens.explain.filters import FirstConvFilters, oriented_filters

    generator = torch.Generator().manual_seed(3)
    edges = torch.zeros(16, 1, 3, 3)
    edges[:, :, 0], edges[:, :, 2] = 1.0, -1.0
    edges += 0.05 * torch.randn(edges.shape, generator=generator)
    indices, total, _, p = oriented_filters(edges)
    assert len(indices) == total == 16 and p < 1e-10
    noise = torch.randn(64, 3, 7, 7, generator=generator)
    indices, total, _, p = oriented_filters(noise)
    assert len(indices) < 10 and p > 0.05
    note = FirstConvFilters("stem.conv", None, edges).notes()[0]
    assert note.startswith("16 of 16 first-layer filters (filters 0, 1,") and "exceed the structure-tensor" in note
    assert note.endswith(
        "random filters would give 0.8 of 16; one-sided binomial p = 1.5e-21 (threshold 0.05): more than chance, so "
        "the layer has learned filters more oriented than random ones"
    )
    at_7x7 = FirstConvFilters("stem.conv", None, noise).notes()[0]
    assert at_7x7.endswith("not shown to exceed chance, so no evidence that the layer has learned oriented filters"), (
        "7x7: the test has power"
    )
    at_3x3 = FirstConvFilters("stem.conv", None, torch.randn(64, 1, 3, 3, generator=generator)).notes()[0]
    assert "random filters of this shape already reach 0.9" in at_3x3 and "little power here" in at_3x3
    assert oriented_filters(torch.randn(4, 3, 1, 1)) is None, "a 1x1 kernel has no orientation"
