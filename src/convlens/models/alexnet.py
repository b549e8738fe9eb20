"""AlexNet as torchvision builds it (Krizhevsky 2014, "One weird trick": 64-192-384-256-256
filters, no LRN), every layer a named module, with a documented stem for small inputs."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from convlens.models.staged import Staged, check_width, scaled
from convlens.models.vgg import mlp_head
from convlens.models.weights import load_pretrained

#: The stem strides tried, torchvision's first: the model uses the largest that fits the input.
STEM_STRIDES = (4, 2, 1)


def feature_size(image_size: int, stem_stride: int) -> int:
    """Side of ``layer4``'s output (< 1: the input is too small): the 11x11 stem convolution
    (padding 2), then three 3x3/2 max-pools; the other convolutions keep the size."""
    size = (image_size + 2 * 2 - 11) // stem_stride + 1
    for _ in range(3):
        size = (size - 3) // 2 + 1
    return size


def stem_stride(image_size: int) -> int:
    """The largest of ``STEM_STRIDES`` for which ``image_size`` px leave a non-empty feature map."""
    for stride in STEM_STRIDES:
        if feature_size(image_size, stride) >= 1:
            return stride
    raise ValueError(f"model.image_size={image_size} is too small for AlexNet; use >= {AlexNet.min_input_size}")


def _conv_relu(
    in_channels: int, out_channels: int, kernel_size: int, padding: int, stride: int = 1, pool: bool = False
) -> nn.Sequential:
    """``conv``, ``relu`` and, for the blocks that have one, a 3x3/2 max-pool ``pool``."""
    stage = nn.Sequential()
    stage.add_module("conv", nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding))
    stage.add_module("relu", nn.ReLU())
    if pool:
        stage.add_module("pool", nn.MaxPool2d(3, 2))
    return stage


class AlexNet(Staged):
    """AlexNet for ``in_channels``-channel images of ``image_size`` px and ``num_classes`` classes.

    Stages: ``stem`` (11x11 conv, ReLU, max-pool), ``layer1`` (5x5 conv, ReLU, max-pool),
    ``layer2``/``layer3`` (3x3 conv, ReLU), ``layer4`` (3x3 conv, ReLU, max-pool), ``head``
    (torchvision's classifier behind its adaptive 6x6 average pool).

    Small inputs: torchvision's stride-4 stem and three 3x3/2 max-pools need 63 px; below that they
    leave nothing. Then the stem convolution uses stride 2 (35 to 62 px) or 1 (down to
    ``min_input_size`` = 21 px), the largest stride that keeps a feature map (:func:`stem_stride`).
    ``width_factor`` (1.0: torchvision's) scales every layer's channels and the classifier's hidden width.
    Only a stride changes, so the layers, the parameter count (torchvision's at every size) and
    ``weights`` (a torchvision ``alexnet`` file or weights name) stay the same; from 63 px up the
    model is exactly torchvision's. ``image_size`` comes from ``data.image_size`` in the config.
    """

    min_input_size = 21
    torchvision_arch = "alexnet"

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        image_size: int = 224,
        dropout: float = 0.5,
        weights: str | Path | None = None,
        width_factor: float = 1.0,
    ) -> None:
        super().__init__()
        check_width(width_factor, weights)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem_stride = stem_stride(image_size)
        c64, c192, c384, c256 = (scaled(channels, width_factor) for channels in (64, 192, 384, 256))
        self.stem = _conv_relu(in_channels, c64, 11, 2, self.stem_stride, pool=True)
        self.layer1 = _conv_relu(c64, c192, 5, 2, pool=True)
        self.layer2 = _conv_relu(c192, c384, 3, 1)
        self.layer3 = _conv_relu(c384, c256, 3, 1)
        self.layer4 = _conv_relu(c256, c256, 3, 1, pool=True)
        self.head = mlp_head(6, c256, scaled(4096, width_factor), num_classes, dropout, dropout_first=True)
        if weights is not None:
            load_pretrained(self, weights)

    def torchvision_modules(self) -> dict[str, str]:
        """torchvision's ``features.<i>`` and ``classifier.<i>`` -> our stages."""
        convs = dict(zip((0, 3, 6, 8, 10), ("stem", "layer1", "layer2", "layer3", "layer4"), strict=True))
        names = {f"features.{index}": f"{stage}.conv" for index, stage in convs.items()}
        return names | {"classifier.1": "head.fc1", "classifier.4": "head.fc2", "classifier.6": "head.fc3"}
