"""Models that follow the convlens conventions (named stages, one non-inplace ReLU module per use)."""

from convlens.models.fer_cnn import FerCNN
from convlens.models.resnet import RESNET_SPECS, ResNet

NAMED_STAGES: tuple[str, ...] = ("stem", "layer1", "layer2", "layer3", "layer4", "head")

__all__ = ["NAMED_STAGES", "RESNET_SPECS", "FerCNN", "ResNet"]
