"""Datasets: one DataModule, several sources (CIFAR-10, FER2013, synthetic shapes and faces)."""

from convlens.data.arrays import ArraySplit, DatasetArrays
from convlens.data.module import ImageDataModule, ImageSplit

__all__ = ["ArraySplit", "DatasetArrays", "ImageDataModule", "ImageSplit"]
