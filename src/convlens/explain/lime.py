"""LIME (Ribeiro et al. 2016) with the ``lime`` package: which superpixels make the model say a class.

``lime`` needs three things the package leaves to the caller, written here: superpixels sized to
the input (SLIC with ``n_segments`` scaled to the image area; quickshift's defaults give two to
four segments on a 48x48 face), a classifier function that feeds LIME's HxWx3 float images back
to a 1- or 3-channel model in large batches, and a seeded random state so that results repeat.
One part of the package is replaced for speed: :class:`BatchedLimeImageExplainer` builds the
perturbed images a batch at a time, as model-layout tensors (same random draws, same images, same result).
LIME works on the model input itself: hiding a superpixel sets it to ``hide_color`` in that space
(0 is the dataset mean after normalization).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from lime.lime_image import ImageExplanation, LimeImageExplainer
from lime.wrappers.scikit_image import SegmentationAlgorithm
from threadpoolctl import threadpool_limits
from torch import Tensor, nn

from convlens.explain.attribution import Targets, as_target_tensor
from convlens.explain.method import ExplainBatch, MethodParams, at_least
from convlens.models.conventions import conforming
from convlens.models.layers import eval_mode, model_device
from convlens.registry import weak_below

ClassifierFn = Callable[[np.ndarray], np.ndarray]
#: The classifier :class:`BatchedLimeImageExplainer` calls: (N, 3, H, W) float tensors -> (N, classes) probabilities.
TensorClassifier = Callable[[Tensor], np.ndarray]
#: Forward-pass size for LIME's batches on a CPU, where activations of small chunks stay in cache.
#: Model time per image, chunks of 32 vs 256 (1 thread): demo FerCNN 0.58 vs 1.0 ms, FER2013
#: FerCNN 7.3 vs 8.8 ms, ResNet-18 at 32 px 0.92 vs 0.71 ms. A GPU wants the whole batch.
CPU_MODEL_BATCH_SIZE = 32


@dataclass(frozen=True)
class LimeExplanation:
    """LIME's answer for one image and class.

    ``segments`` (H, W) labels superpixels 0..n-1; ``weights[s]`` is superpixel s's coefficient in
    the local linear model; ``top_weights`` the ``num_features`` largest by magnitude as
    (superpixel, weight); ``positive_mask``/``negative_mask`` (H, W) mark the top superpixels for
    and against the class; ``score`` is the local model's R^2 and ``local_prediction`` its output.
    """

    label: int
    segments: np.ndarray
    weights: dict[int, float]
    top_weights: list[tuple[int, float]]
    positive_mask: np.ndarray
    negative_mask: np.ndarray
    score: float
    local_prediction: float

    @property
    def num_segments(self) -> int:
        return len(self.weights)

    def weight_map(self) -> np.ndarray:
        """(H, W) float: every pixel carries its superpixel's weight."""
        lookup = np.array([self.weights[segment] for segment in range(self.num_segments)])
        return lookup[self.segments]


class BatchedLimeImageExplainer(LimeImageExplainer):
    """``LimeImageExplainer`` whose ``data_labels`` builds each batch of perturbed images with one
    torch ``where`` instead of a Python loop per image and superpixel (~100 us per image, 10-17%
    of an explanation with the demo model on a CPU), channel-planar as the model takes them: a numpy
    ``where`` over LIME's (N, H, W, 3) layout took 4-5 times as long (23-28 ms against 5-10 ms per batch of 256
    65-px images, one thread), a fifth of a demo_shapes explanation. Its ``classifier_fn`` is therefore a
    :data:`TensorClassifier` (:func:`tensor_classifier`). The random draws and the images handed to the
    classifier are exactly the package's (transposed), so are the explanations."""

    def data_labels(
        self,
        image: np.ndarray,
        fudged_image: np.ndarray,
        segments: np.ndarray,
        classifier_fn: TensorClassifier,
        num_samples: int,
        batch_size: int = 10,
    ) -> tuple[np.ndarray, np.ndarray]:
        n_features = np.unique(segments).shape[0]
        data = self.random_state.randint(0, 2, num_samples * n_features).reshape((num_samples, n_features))
        data[0, :] = 1
        shown, hidden = (
            torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))) for array in (image, fudged_image)
        )
        superpixel = torch.from_numpy(segments)
        labels = []
        for start in range(0, num_samples, batch_size):
            keep = torch.from_numpy(data[start : start + batch_size]).bool()[:, superpixel]  # (B, H, W): superpixel on
            labels.extend(classifier_fn(torch.where(keep[:, None], shown, hidden)))
        return data, np.array(labels)


@conforming
def lime_explanations(
    model: nn.Module,
    images: Tensor,
    targets: Targets,
    *,
    num_samples: int = 1000,
    batch_size: int = 256,
    pixels_per_segment: int = 64,
    compactness: float = 20.0,
    sigma: float = 1.0,
    hide_color: float = 0.0,
    num_features: int = 5,
    seed: int = 0,
    model_batch_size: int | None = None,
) -> list[LimeExplanation]:
    """One LIME explanation per image for its target class (images are explained one by one, as
    LIME does; the ``num_samples`` perturbations of each reach the classifier ``batch_size`` at a
    time, which runs the model on ``model_batch_size`` of them at once, see :func:`tensor_classifier`)."""
    classes = as_target_tensor(targets, len(images), torch.device("cpu")).tolist()
    classifier = tensor_classifier(model, channels=images.shape[1], model_batch_size=model_batch_size)
    segmenter = slic_segmenter(images.shape[-2], images.shape[-1], pixels_per_segment, compactness, sigma)
    with eval_mode(model):
        return [
            explain_image(
                lime_image(image), label, classifier, segmenter, num_samples, batch_size, hide_color, num_features, seed
            )
            for image, label in zip(images, classes, strict=True)
        ]


def lime_image(image: Tensor) -> np.ndarray:
    """Model input (C, H, W) -> the HxWx3 float32 array LIME perturbs (gray is repeated 3 times);
    float32 as the model takes it, which halves the memory LIME's perturbed copies move."""
    array = image.detach().cpu().float().permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


def classifier_fn(model: nn.Module, channels: int, model_batch_size: int | None = None) -> ClassifierFn:
    """LIME's own classifier interface, for the package's explainer: (N, H, W, 3) float images ->
    (N, classes) softmax probabilities, by :func:`tensor_classifier`."""
    predict = tensor_classifier(model, channels, model_batch_size)
    return lambda batch: predict(torch.from_numpy(batch).permute(0, 3, 1, 2))


def tensor_classifier(model: nn.Module, channels: int, model_batch_size: int | None = None) -> TensorClassifier:
    """(N, 3, H, W) float images -> (N, classes) softmax probabilities.

    A 1-channel model gets the first of the three identical channels (:func:`lime_image` repeats gray, and
    LIME hides superpixels with one colour). The model runs on ``model_batch_size`` images at a time
    (None: all N at once, right for a GPU; on a CPU see ``CPU_MODEL_BATCH_SIZE``). The caller puts the
    model in eval mode.
    """
    device = model_device(model)

    def predict(batch: Tensor) -> np.ndarray:
        x = batch.to(device=device, dtype=torch.float32)
        if channels == 1:
            x = x[:, :1].contiguous()
        with torch.inference_mode():
            logits = torch.cat([model(chunk) for chunk in x.split(model_batch_size or len(x))])
            return torch.softmax(logits, dim=1).cpu().numpy()

    return predict


def slic_segmenter(
    height: int, width: int, pixels_per_segment: int = 64, compactness: float = 20.0, sigma: float = 1.0
) -> Callable[[np.ndarray], np.ndarray]:
    """SLIC superpixels of about ``pixels_per_segment`` pixels each (48x48 -> ~36 segments).

    SLIC segments in Lab colour space, which expects RGB in [0, 1]; model input is normalized,
    so each image is min-max rescaled (a contrast stretch) before segmentation.
    """
    slic = SegmentationAlgorithm(
        "slic",
        n_segments=max(1, round(height * width / pixels_per_segment)),
        compactness=compactness,
        sigma=sigma,
        start_label=0,
    )

    def segment(image: np.ndarray) -> np.ndarray:
        low, high = image.min(), image.max()
        return slic((image - low) / (high - low) if high > low else np.zeros_like(image))

    return segment


def explain_image(
    image: np.ndarray,
    label: int,
    classifier: TensorClassifier,
    segmenter: Callable[[np.ndarray], np.ndarray],
    num_samples: int,
    batch_size: int,
    hide_color: float,
    num_features: int,
    seed: int,
) -> LimeExplanation:
    """LIME's ``explain_instance`` on one HxWx3 ``image`` for ``label`` with a fresh seeded explainer
    (so an image's result does not depend on the images explained before it). numpy's BLAS gets
    one thread: LIME's ridge fits are tiny (samples x superpixels), and more threads made them
    3x slower on a 2-core machine."""
    with threadpool_limits(limits=1, user_api="blas"):
        explanation = BatchedLimeImageExplainer(random_state=seed).explain_instance(
            image,
            classifier,
            labels=(label,),
            top_labels=None,
            hide_color=hide_color,
            num_samples=num_samples,
            batch_size=batch_size,
            segmentation_fn=segmenter,
            random_seed=seed,
        )
    return _summarize(explanation, label, num_features)


def _summarize(explanation: ImageExplanation, label: int, num_features: int) -> LimeExplanation:
    """Weights and positive/negative masks of the top ``num_features`` superpixels."""
    ranked = [(int(segment), float(weight)) for segment, weight in explanation.local_exp[label]]
    _, positive = explanation.get_image_and_mask(label, positive_only=True, num_features=num_features)
    _, negative = explanation.get_image_and_mask(
        label, positive_only=False, negative_only=True, num_features=num_features
    )
    return LimeExplanation(
        label=label,
        segments=explanation.segments,
        weights=dict(ranked),
        top_weights=ranked[:num_features],
        positive_mask=positive.astype(bool),
        negative_mask=negative.astype(bool),
        score=float(explanation.score),
        local_prediction=float(np.asarray(explanation.local_pred).reshape(-1)[0]),
    )


# --- the registered method -------------------------------------------------------------------------


@dataclass(frozen=True)
class LimeParams(MethodParams):
    """``num_samples`` perturbed images per explanation, ``batch_size`` (>= 128) of them per call of
    the classifier, which runs the model on ``model_batch_size`` at once (None: ``CPU_MODEL_BATCH_SIZE``
    on a CPU, all on a GPU); SLIC superpixels of about ``pixels_per_segment`` pixels with
    ``compactness`` and ``sigma``; hidden superpixels set to ``hide_color`` in model-input space (0:
    the dataset mean); the top ``num_features`` superpixels shown; explanations for the first
    ``per_class`` chosen images of each class (None: all) and, to read LIME against the confusion
    matrix, for the example of each of the ``confused`` most frequent confusions, once for the class
    predicted and once for the true class; each explanation costs ``num_samples`` forward passes."""

    num_samples: int = 1000
    batch_size: int = 256
    pixels_per_segment: int = 64
    compactness: float = 20.0
    sigma: float = 1.0
    hide_color: float = 0.0
    num_features: int = 5
    seed: int = 0
    per_class: int | None = 1
    confused: int = 3
    model_batch_size: int | None = None

    def __post_init__(self) -> None:
        at_least("batch_size", self.batch_size, 128, "keeps the model busy")
        at_least("num_samples", self.num_samples, 1)


#: A local linear model whose R^2 over the perturbed copies is below this explains little of the answer (declared
#: in the registry, where the report reads it too).
EXPLAINS = weak_below("lime")["local_r2"]


@dataclass(frozen=True)
class LimeExplanations:
    """One :class:`LimeExplanation` per image; its superpixels' positive weights localise the class;
    ``scores`` gives each image's local R^2 and ``notes`` says when they are low on average."""

    explanations: list[LimeExplanation]

    def scores(self, row: int | None) -> dict[str, float]:
        return {} if row is None else {"local_r2": round(self.explanations[row].score, 4)}

    def notes(self) -> list[str]:
        """A note when the local linear models explain little (mean R^2 under :data:`EXPLAINS`)."""
        mean = float(np.mean([explanation.score for explanation in self.explanations])) if self.explanations else 1.0
        if mean >= EXPLAINS:
            return []
        return [f"the local linear models reach a mean R² of {mean:.2f} over the perturbed copies (under "
                f"{EXPLAINS:g}): their superpixel weights describe little of how the model's answer changes, so "
                "read the bars as weak evidence"]  # fmt: skip

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        """Per image the positive part of the weight map (every superpixel for the class, graded by its
        coefficient), not the 0/1 mask of the top superpixels the figures mark: on a 0/1 map the peak is
        the whole mask, so pointing game equals relevance mass, and deletion orders the mask at random."""
        return {None: np.stack([np.clip(e.weight_map(), 0, None) for e in self.explanations]).astype(float)}


@conforming
def explain_lime(model: nn.Module, batch: ExplainBatch, params: LimeParams) -> LimeExplanations:
    """LIME for each image of the batch and its target class."""
    cpu = model_device(model).type == "cpu"
    return LimeExplanations(
        lime_explanations(
            model,
            batch.inputs,
            batch.targets,
            num_samples=params.num_samples,
            batch_size=params.batch_size,
            pixels_per_segment=params.pixels_per_segment,
            compactness=params.compactness,
            sigma=params.sigma,
            hide_color=params.hide_color,
            num_features=params.num_features,
            seed=params.seed,
            model_batch_size=params.model_batch_size or (CPU_MODEL_BATCH_SIZE if cpu else None),
        )
    )
