"""Deterministic choice of the test images to explain: per class, correct and wrong examples, and
examples of the most confused class pairs.

Within a class, the most confident examples come first (ties broken by index), so the picks are
typical cases: the clearest hit and the most confident mistake. Ranked by ``index`` instead, the
first hits of each class are chosen: models that classify those images alike pick the same ones,
so that `make compare` can show several architectures' maps of one image. The confused pairs are the largest
off-diagonal cells of a confusion matrix given by the caller (the run's test confusion matrix, which the report
prints: the candidates' one-view predictions had ranked FER2013's pairs otherwise), each pair with an example among
the candidates, else of the candidates' own (ties by label order); for each, its most confident example joins the
selection (or is found in it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from convlens.models.layers import eval_mode, model_device

#: How the examples of a class are ranked: most confident first, or first in the split first.
RANKS = ("confidence", "index")
#: The class an image is explained for: the model's answer, or the image's label.
EXPLAINED = ("predicted", "true")


def explained_class(value: object, key: str) -> str:
    """The config value ``key`` (``visualize.selection.explain``, ``evaluate.explain``) as one of
    :data:`EXPLAINED`. Hydra reads ``true`` on the command line as a boolean, which a ``str`` field keeps
    as 'True', so the value is compared in lower case; anything else is refused with the choices."""
    found = str(value).lower()
    if found not in EXPLAINED:
        raise ValueError(f"{key}={value!r}; choose one of {', '.join(EXPLAINED)}")
    return found


@dataclass(frozen=True)
class Selection:
    """Chosen images: ``indices`` into the split, their true ``labels`` and ``predictions``, all (K,), and
    the model's softmax ``probabilities`` (K, classes), in selection order; ``pairs`` (P,) the
    positions of the confused-pair examples, the most frequent confusion first; the first ``per_class``
    positions are the per-class picks, any later ones were added as confused-pair examples."""

    indices: Tensor
    labels: Tensor
    predictions: Tensor
    probabilities: Tensor
    pairs: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    per_class: int | None = None

    def __post_init__(self) -> None:
        if self.per_class is None:
            object.__setattr__(self, "per_class", len(self.indices))

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def correct(self) -> Tensor:
        return self.labels == self.predictions

    @property
    def confidences(self) -> Tensor:
        """(K,) the probability of each prediction."""
        return self.probabilities.gather(1, self.predictions[:, None])[:, 0]


def predict(model: nn.Module, inputs: Tensor, batch_size: int = 256) -> Tensor:
    """Softmax probabilities (N, classes) on CPU, computed in batches on the model's device."""
    device = model_device(model)
    with eval_mode(model), torch.inference_mode():
        batches = [torch.softmax(model(batch.to(device)), dim=1).cpu() for batch in inputs.split(batch_size)]
    return torch.cat(batches)


def select_examples(
    labels: Tensor,
    probabilities: Tensor,
    correct_per_class: int = 1,
    wrong_per_class: int = 1,
    confused_pairs: int = 0,
    rank: str = "confidence",
    confusion: Tensor | None = None,
) -> Selection:
    """Per class (in label order) up to ``correct_per_class`` correctly and ``wrong_per_class``
    wrongly classified examples, each group by descending confidence (``rank="index"``: in split
    order), then an example of each of the ``confused_pairs`` most frequent confusions that is not
    chosen yet: of ``confusion`` (classes x classes, rows true) where given, passing over a pair with no example
    among these images, else of these images' own predictions."""
    if correct_per_class < 0 or wrong_per_class < 0:
        raise ValueError(
            f"image counts must be >= 0, got correct_per_class={correct_per_class}, wrong_per_class={wrong_per_class}"
        )
    if rank not in RANKS:
        raise ValueError(f"selection rank={rank!r}; choose one of {', '.join(RANKS)}")
    confidences, predictions = probabilities.max(dim=1)
    order = torch.sort(-confidences, stable=True).indices if rank == "confidence" else torch.arange(len(labels))
    chosen: list[Tensor] = []
    for label in range(probabilities.shape[1]):
        in_class = order[labels[order] == label]
        hits = predictions[in_class] == label
        chosen += [in_class[hits][:correct_per_class], in_class[~hits][:wrong_per_class]]
    indices = torch.cat(chosen)
    per_class = len(indices)
    own = _counts(labels, predictions, probabilities.shape[1])
    ranked = _confusions(own if confusion is None else confusion)
    pairs = [(true, predicted) for true, predicted in ranked if own[true, predicted] > 0]  # with an example here
    pairs = pairs[:confused_pairs]
    examples = [order[(labels[order] == true) & (predictions[order] == predicted)][0] for true, predicted in pairs]
    extra = [example for example in examples if example not in indices]
    indices = torch.cat([indices, torch.stack(extra)]) if extra else indices
    positions = torch.tensor([int((indices == example).nonzero()[0]) for example in examples], dtype=torch.long)
    return Selection(indices, labels[indices], predictions[indices], probabilities[indices], positions, per_class)


def _counts(labels: Tensor, predictions: Tensor, classes: int) -> Tensor:
    """The confusion matrix (classes x classes, rows true) of ``predictions``."""
    return torch.bincount(labels * classes + predictions, minlength=classes * classes).view(classes, classes)


def _confusions(counts: Tensor) -> list[tuple[int, int]]:
    """(true, predicted) class pairs of a confusion matrix that occur, most frequent first (ties in label order)."""
    classes = len(counts)
    cells = [(int(counts[t, p]), t, p) for t in range(classes) for p in range(classes) if t != p and counts[t, p] > 0]
    return [(t, p) for _, t, p in sorted(cells, key=lambda cell: (-cell[0], cell[1], cell[2]))]


def select_test_images(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    preprocess: Callable[[Tensor], Tensor],
    *,
    correct_per_class: int = 1,
    wrong_per_class: int = 1,
    confused_pairs: int = 0,
    max_candidates: int | None = None,
    batch_size: int = 256,
    rank: str = "confidence",
    confusion: Tensor | None = None,
) -> Selection:
    """Classify the first ``max_candidates`` images (uint8, all if None) and select among them (``confusion``:
    the confusion matrix whose pairs the confused-pair examples show, see :func:`select_examples`)."""
    images, labels = images[:max_candidates], labels[:max_candidates]
    inputs = torch.cat([preprocess(batch) for batch in images.split(batch_size)])
    probabilities = predict(model, inputs, batch_size)
    return select_examples(
        labels.cpu(), probabilities, correct_per_class, wrong_per_class, confused_pairs, rank, confusion
    )
