"""Models that follow the convlens conventions (named stages, one non-inplace ReLU module per use),
and the adapter that checks those conventions on any model (:mod:`convlens.models.conventions`)."""

from convlens.models.alexnet import AlexNet
from convlens.models.conventions import ConventionError, adapt, violations
from convlens.models.fer_cnn import FerCNN
from convlens.models.googlenet import GoogLeNet
from convlens.models.resnet import RESNET_SPECS, ResNet
from convlens.models.staged import NAMED_STAGES, Staged
from convlens.models.vgg import VGG, VGG_SPECS

__all__ = [
    "NAMED_STAGES",
    "RESNET_SPECS",
    "VGG",
    "VGG_SPECS",
    "AlexNet",
    "ConventionError",
    "FerCNN",
    "GoogLeNet",
    "ResNet",
    "Staged",
    "adapt",
    "violations",
]
