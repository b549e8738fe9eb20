"""Model-free maps that every method must beat to say something about the model (Adebayo et al. 2018):
an edge detector, which knows the image but not the model, and a centred blob, which knows neither
(objects in the datasets tend to sit in the middle). A method "no better than an edge detector"
shows the image's structure, not what the model uses.

- ``edges``: Sobel gradient magnitude of the image's luminance (``skimage.filters.sobel``);
- ``centre``: an isotropic Gaussian at the image centre, sigma a quarter of the shorter side.
"""

from __future__ import annotations

import numpy as np
import torch
from skimage.color import rgb2gray
from skimage.filters import sobel
from torch import Tensor

#: The centre map's sigma as a share of the image's shorter side.
CENTRE_SIGMA = 0.25
NAMES = ("edges", "centre")


def edge_maps(display: np.ndarray) -> Tensor:
    """Sobel edge magnitude (N, H, W) of display images (N, H, W, C) in [0, 1], gray or RGB."""
    gray = [rgb2gray(image) if image.shape[-1] == 3 else image[..., 0] for image in display]
    return torch.from_numpy(np.stack([sobel(image) for image in gray]).astype(np.float32))


def centre_maps(count: int, height: int, width: int) -> Tensor:
    """``count`` copies of a centred Gaussian (H, W) with sigma :data:`CENTRE_SIGMA` x the shorter side."""
    sigma = CENTRE_SIGMA * min(height, width)
    rows = torch.arange(height, dtype=torch.float32) - (height - 1) / 2
    columns = torch.arange(width, dtype=torch.float32) - (width - 1) / 2
    blob = torch.exp(-(rows[:, None] ** 2 + columns[None, :] ** 2) / (2 * sigma**2))
    return blob.expand(count, height, width).clone()


def model_free_maps(display: np.ndarray) -> dict[str, Tensor]:
    """Both baselines for display images (N, H, W, C), keyed by :data:`NAMES`, on the CPU."""
    count, height, width = display.shape[:3]
    return {"edges": edge_maps(display), "centre": centre_maps(count, height, width)}
