"""Datasets: one DataModule, several sources (CIFAR-10, FER2013, synthetic shapes and faces)."""

# Run directories written before the synthetic source moved into synthetic/ name it
# convlens.data.sources.SyntheticSource in their config.yaml; Hydra resolves that path through this name.
from convlens.data import synthetic as sources
from convlens.data.arrays import ArraySplit, DatasetArrays
from convlens.data.module import ImageDataModule, ImageSplit

__all__ = ["ArraySplit", "DatasetArrays", "ImageDataModule", "ImageSplit", "sources"]
