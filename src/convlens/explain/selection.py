"""Deterministic choice of the test images to explain: per class, correct and wrong examples.

Within a class, the most confident examples come first (ties broken by index), so the picks are
typical cases: the clearest hit and the most confident mistake.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from convlens.explain.layers import eval_mode, model_device


@dataclass(frozen=True)
class Selection:
    """Chosen images: ``indices`` into the split, their true ``labels``, ``predictions`` and the
    softmax ``confidences`` of the predictions, all (K,) and in selection order."""

    indices: Tensor
    labels: Tensor
    predictions: Tensor
    confidences: Tensor

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def correct(self) -> Tensor:
        return self.labels == self.predictions


def predict(model: nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
    """Softmax probabilities (N, classes) on CPU, computed in batches on the model's device."""
    device = model_device(model)
    with eval_mode(model), torch.inference_mode():
        batches = [torch.softmax(model(batch.to(device)), dim=1).cpu() for batch in inputs.split(batch_size)]
    return torch.cat(batches)


def select_examples(
    labels: Tensor, probabilities: Tensor, correct_per_class: int = 1, wrong_per_class: int = 1
) -> Selection:
    """Per class (in label order) up to ``correct_per_class`` correctly and ``wrong_per_class``
    wrongly classified examples, each group by descending confidence."""
    if correct_per_class < 0 or wrong_per_class < 0:
        raise ValueError(
            f"image counts must be >= 0, got correct_per_class={correct_per_class}, wrong_per_class={wrong_per_class}"
        )
    confidences, predictions = probabilities.max(dim=1)
    order = torch.sort(-confidences, stable=True).indices
    chosen: list[Tensor] = []
    for label in range(probabilities.shape[1]):
        in_class = order[labels[order] == label]
        hits = predictions[in_class] == label
        chosen += [in_class[hits][:correct_per_class], in_class[~hits][:wrong_per_class]]
    indices = torch.cat(chosen)
    return Selection(indices, labels[indices], predictions[indices], confidences[indices])


def select_test_images(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    preprocess: Callable[[Tensor], Tensor],
    *,
    correct_per_class: int = 1,
    wrong_per_class: int = 1,
    max_candidates: int | None = None,
    batch_size: int = 256,
) -> Selection:
    """Classify the first ``max_candidates`` images (uint8, all if None) and select among them."""
    images, labels = images[:max_candidates], labels[:max_candidates]
    inputs = torch.cat([preprocess(batch) for batch in images.split(batch_size)])
    probabilities = predict(model, inputs, batch_size)
    return select_examples(labels.cpu(), probabilities, correct_per_class, wrong_per_class)
