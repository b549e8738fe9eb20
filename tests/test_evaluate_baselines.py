"""The model-free baseline maps of the evaluation (convlens.evaluate.baselines)."""

from __future__ import annotations

import numpy as np
import torch

from convlens.evaluate.baselines import centre_maps, edge_maps, model_free_maps


def test_edges_lie_on_the_boundary_of_a_square() -> None:
    image = np.zeros((1, 33, 33, 3))
    image[0, 10:23, 10:23] = 1.0
    edges = edge_maps(image)[0]
    boundary = torch.zeros(33, 33, dtype=torch.bool)
    boundary[9:24, 9:24] = True
    boundary[12:21, 12:21] = False
    assert edges[boundary].sum() / edges.sum() > 0.99
    assert edges[16, 16] == 0 and edges[0, 0] == 0


def test_gray_and_rgb_images_give_the_same_edges() -> None:
    gray = np.random.default_rng(0).random((2, 16, 16, 1))
    assert torch.allclose(edge_maps(gray), edge_maps(np.repeat(gray, 3, axis=-1)), atol=1e-6)


def test_centre_peaks_in_the_middle_and_is_symmetric() -> None:
    blob = centre_maps(2, 33, 33)
    assert blob.shape == (2, 33, 33) and blob[0].argmax() == 16 * 33 + 16
    assert torch.allclose(blob[0], blob[0].flip(0)) and torch.allclose(blob[0], blob[0].T)
    assert blob[0, 16, 16] == 1.0 and blob[0, 0, 0] < 0.05


def test_both_baselines_for_a_batch() -> None:
    maps = model_free_maps(np.random.default_rng(0).random((3, 20, 24, 3)))
    assert {name: tuple(value.shape) for name, value in maps.items()} == {"edges": (3, 20, 24), "centre": (3, 20, 24)}
