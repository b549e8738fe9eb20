"""Published test accuracies to read a real run's against, one entry per dataset (the synthetic demos have none):
the summary cites them, the convergence sentences call a run underfitting against them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reference:
    """``accuracy``: the test accuracy ``model`` reaches on the dataset; ``cited``: the summary's row."""

    accuracy: float
    model: str
    cited: str


REFERENCES = {
    "cifar10": Reference(
        0.8633,
        "the Table-1 ResNet-18 at 224 px after 25 epochs (the course write-up)",
        "86.33% test for the Table-1 ResNet-18 at 224 px after 10,000 steps (25 epochs) in the course write-up",
    ),
    "fer2013": Reference(
        0.73,
        "a VGG-style CNN (Khaireddin & Chen 2021)",
        "humans about 65% (Goodfellow et al. 2013); a VGG-style CNN about 73% (Khaireddin & Chen 2021)",
    ),
}
