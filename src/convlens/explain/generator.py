"""Activation maximization with a learned image prior: DGN-AM (Nguyen et al. 2016) and PPGN-h
(Nguyen et al. 2017), set beside the pixel-space class model and judged for confidence and realism.

DGN-AM searches the code space of the run's generator (``make generate``, :mod:`convlens.generator`)
instead of pixel space: gradient ascent on the code ``h`` so that the class's log-probability (or, as
the paper, its logit) for ``G(h)`` is maximal, with ``h`` kept inside the range of the training codes
as the DGN paper clips it. PPGN-h
adds the denoising autoencoder ``R`` on the code as a prior and samples a Markov chain per class,
``h <- h + eps1 (R(h) - h) + eps2 d log p(c | G(h)) / dh + N(0, eps3^2)``. Both step in standardized
code units, so one step size fits every layer. No library offers either for an arbitrary
classifier, so the loops are written here.

Realism is the Kernel Inception Distance of each class's images to real held-out images of the class,
in the channel means of the classifier's ``layer3``, set beside the spread of real sets' KID; samples that
collapsed to a constant or left the data range are marked failed (:mod:`convlens.explain.realism`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from convlens.data.transforms import resize
from convlens.explain.activation_max import AscentParams, class_model_images
from convlens.explain.method import ExplainBatch, MethodParams, NotApplicable, at_least
from convlens.explain.realism import RealImages, failure, judge
from convlens.explain.synthesis import GeneratorComparison, Synthesis
from convlens.generator import store
from convlens.generator.encoding import encode
from convlens.generator.store import GeneratorPrior, MissingGenerator, generator_folder, load_prior, read_json
from convlens.models.conventions import conforming
from convlens.models.layers import eval_mode, model_device
from convlens.provenance import portable_path
from convlens.run_files import read_class_names
from convlens.untrusted import UntrustedInputError

#: What DGN-AM can ascend (:class:`GeneratorPriorParams`).
OBJECTIVES = ("log_probability", "logit")


@dataclass(frozen=True)
class GeneratorPriorParams(MethodParams):
    """``steps`` of pixel-space ascent and of DGN-AM alike (Adam, ``lr`` on the standardized code,
    ``l2_weight`` decay). DGN-AM ascends the class's ``objective``: ``log_probability``, log p(c | G(h)) as
    PPGN's class term, which stops pushing once the class is certain (on both demos it kept DGN-AM's
    images far nearer real ones by KID at confidence near 1, docs/generator.md), or ``logit``, the
    pre-softmax unit of Nguyen et al. (2016), which drives the code to the corner of its range; each start's
    search stops once the classifier's confidence in its class reaches ``stop_confidence`` (1: never), since
    pushing past it drives the code away from the training codes (KID up to 61x the real yardstick at
    confidence 1.00 on ``demo_faces``, docs/generator.md). A PPGN-h
    chain of ``chain_steps`` per class with the paper's three weights, of which ``samples`` images taken
    evenly over its second half are shown; pixel space and DGN-AM draw ``samples`` images per class too,
    from as many seeded starts, since KID scores a set of at least 2. DGN-AM's first start and the
    chain's start are the same seeded code ``init_scale * N(0, 1)`` (0: the mean training code; 1, the default,
    the training codes' own spread per standardized dimension: over seeds 0-2 it met the DGN-AM bar for more
    classes than 0.5 or 1.5 on both demos, docs/generator.md).
    ``per_class``: the real test images shown beside them."""

    per_class: int | None = 1
    steps: int = 128
    lr: float = 0.1
    l2_weight: float = 0.0
    objective: str = "log_probability"
    stop_confidence: float = 0.95
    init_scale: float = 1.0
    chain_steps: int = 128
    samples: int = 3
    epsilon1: float = 0.2
    epsilon2: float = 1.0
    epsilon3: float = 0.02
    seed: int = 0

    def __post_init__(self) -> None:
        at_least("steps", self.steps, 1)
        at_least("chain_steps", self.chain_steps, 2)
        at_least("samples", self.samples, 2)
        if not 0 < self.stop_confidence <= 1:
            raise ValueError(f"stop_confidence={self.stop_confidence} must be in (0, 1] (1: never stop early)")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective={self.objective!r} must be one of {', '.join(OBJECTIVES)}")
        if self.samples > self.chain_steps // 2 + 1:
            raise ValueError(f"samples={self.samples} must be <= chain_steps // 2 + 1 (the chain's second half)")


@dataclass(frozen=True)
class GeneratorTrainingParams(MethodParams):
    """``per_class``: the test images reconstructed from their code."""

    per_class: int | None = 1


@dataclass(frozen=True)
class GeneratorReconstructions:
    """Test images (B) rebuilt from their code, in [0, 1]; the generator's losses and metrics."""

    rebuilt: Tensor
    errors: Tensor
    losses: dict[str, list[float]]
    metrics: dict[str, float]

    def scores(self, row: int | None) -> dict[str, float]:
        """Per image its reconstruction MSE; for the model the stage's held-out and mean-image MSE."""
        return dict(self.metrics) if row is None else {"reconstruction_mse": round(float(self.errors[row]), 5)}


def prior_of(batch: ExplainBatch, model: nn.Module) -> GeneratorPrior:
    """The run's generator prior on the model's device; :class:`NotApplicable` when the run has none."""
    if batch.run_dir is None:
        raise NotApplicable("no run directory: the generator prior is read from <run>/generator/")
    try:
        return load_prior(batch.run_dir).to(model_device(model))
    except MissingGenerator as error:
        raise NotApplicable(
            f"no generator in this run: run `make generate RUN={portable_path(batch.run_dir)}` first"
        ) from error


def start_codes(prior: GeneratorPrior, classes: int, params: GeneratorPriorParams) -> Tensor:
    """Seeded standardized codes (classes, samples, D) inside the training range."""
    generator = torch.Generator().manual_seed(params.seed)
    z = params.init_scale * torch.randn(classes, params.samples, len(prior.statistics.mean), generator=generator)
    return prior.statistics.clip_(z.to(prior.statistics.mean.device))


def synthesized_logits(model: nn.Module, prior: GeneratorPrior, z: Tensor) -> Tensor:
    """The classifier's logits for the images the generator draws from standardized codes ``z``."""
    return model(prior.space.to_input(prior.generator(z)))


def dgn_am(model: nn.Module, prior: GeneratorPrior, classes: Tensor, params: GeneratorPriorParams) -> Tensor:
    """DGN-AM: per class and start the standardized code (K, S, D) whose image maximizes the class's objective,
    each start frozen once its image reaches ``params.stop_confidence`` (Adam's momentum would move it on)."""
    z = start_codes(prior, len(classes), params).flatten(0, 1).requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=params.lr)
    rows, classes = torch.arange(len(z)), classes.repeat_interleave(params.samples).to(z.device)
    with eval_mode(model), eval_mode(prior.generator):
        for _ in range(params.steps):
            logits = synthesized_logits(model, prior, z)
            reached = logits.detach().softmax(1)[rows, classes] >= params.stop_confidence
            if reached.all():
                break
            scores = _class_scores(logits, params.objective)[rows, classes]
            loss = -(scores - params.l2_weight * z.pow(2).sum(1))
            optimizer.zero_grad()
            loss.sum().backward(inputs=[z])
            kept = z.detach()[reached]
            optimizer.step()
            with torch.no_grad():
                z[reached] = kept
                prior.statistics.clip_(z)
    return z.detach().unflatten(0, (-1, params.samples))


def _class_scores(logits: Tensor, objective: str) -> Tensor:
    """What DGN-AM ascends for every class: the logits or their log-softmax."""
    return logits.log_softmax(1) if objective == "log_probability" else logits


def ppgn_chain(model: nn.Module, prior: GeneratorPrior, classes: Tensor, params: GeneratorPriorParams) -> Tensor:
    """PPGN-h: a chain per class; the standardized codes (K, S, D) sampled over its second half."""
    z = start_codes(prior, len(classes), params)[:, 0]
    noise = torch.Generator().manual_seed(params.seed + 1)
    keep = _sample_steps(params)
    rows, samples = torch.arange(len(classes)), []
    with eval_mode(model), eval_mode(prior.generator), eval_mode(prior.denoiser):
        for step in range(1, params.chain_steps + 1):
            z = z.detach().requires_grad_(True)
            log_p = synthesized_logits(model, prior, z).log_softmax(1)[rows, classes.to(z.device)]
            (gradient,) = torch.autograd.grad(log_p.sum(), z)
            with torch.no_grad():
                shake = torch.randn(z.shape, generator=noise).to(z.device)
                pull = prior.denoiser(z) - z
                z = z + params.epsilon1 * pull + params.epsilon2 * gradient + params.epsilon3 * shake
                prior.statistics.clip_(z)
            if step in keep:
                samples.append(z.detach())
    return torch.stack(samples, 1)


def _sample_steps(params: GeneratorPriorParams) -> set[int]:
    """``samples`` steps spread evenly over the chain's second half, the last one included."""
    half = params.chain_steps // 2
    return {params.chain_steps - round(index * half / max(params.samples - 1, 1)) for index in range(params.samples)}


@conforming
def explain_generator_prior(model: nn.Module, batch: ExplainBatch, params: GeneratorPriorParams) -> GeneratorComparison:
    """The ``generator_prior`` method: per class the pixel-space class model, DGN-AM and PPGN-h samples."""
    prior = prior_of(batch, model)
    classes = torch.arange(batch.num_classes)
    real = _real_images(prior, classes, params.samples)
    targets, size = classes.repeat_interleave(params.samples).tolist(), tuple(batch.inputs.shape[-2:])
    pixel = class_model_images(model, targets, size, AscentParams(steps=params.steps, seed=params.seed)).images
    drawn = {"dgn_am": dgn_am(model, prior, classes, params), "ppgn": ppgn_chain(model, prior, classes, params)}
    methods = {"pixel": _synthesis(model, prior, real, pixel.unflatten(0, (-1, params.samples)), True, params.seed)}
    methods |= {name: _drawn(model, prior, real, z, params.seed) for name, z in drawn.items()}
    yardstick = torch.tensor([real.yardstick(label, params.samples, params.seed) for label in classes.tolist()])
    names = tuple(read_class_names(batch.run_dir, batch.num_classes))
    return GeneratorComparison(classes, names, methods, yardstick, params.objective)


def _real_images(prior: GeneratorPrior, classes: Tensor, samples: int) -> RealImages:
    """The held-out images' features, checked to hold sets of ``samples`` for every class."""
    real = RealImages(prior.heldout, prior.heldout_labels)
    for label in classes.tolist():
        if reason := real.check(label, samples):
            raise NotApplicable(f"realism needs more held-out images ({reason}): raise heldout_images of make generate")
    return real


def _drawn(model: nn.Module, prior: GeneratorPrior, real: RealImages, z: Tensor, seed: int) -> Synthesis:
    """The synthesis of standardized codes ``z`` (K, S, D): their images, judged as model input."""
    with torch.no_grad():
        images = prior.generator(z.flatten(0, 1)).unflatten(0, z.shape[:2])
    return _synthesis(model, prior, real, images, False, seed)


def _synthesis(
    model: nn.Module, prior: GeneratorPrior, real: RealImages, images: Tensor, input_space: bool, seed: int
) -> Synthesis:
    """Judge ``images`` (K, S, C, H, W), model input or pixels in [0, 1], made one class per row."""
    flat = images.flatten(0, 1)
    inputs = flat if input_space else prior.space.to_input(flat)
    classes = torch.arange(len(images))
    found = judge(model, inputs, classes.repeat_interleave(images.shape[1]), prior.feature_layer)
    features = found.pop("features").unflatten(0, images.shape[:2])
    realism = torch.tensor([real.realism(features[row], row, seed) for row in classes.tolist()])
    pixels = prior.space.unclamped_pixels(flat.detach()) if input_space else flat
    failed = [failure(sample) for sample in pixels.cpu()]
    rows = tuple(tuple(failed[row * images.shape[1] : (row + 1) * images.shape[1]]) for row in classes.tolist())
    shaped = {key: value.view(images.shape[:2]) for key, value in found.items()}
    return Synthesis(images.cpu(), realism=realism, failed=rows, input_space=input_space, **shaped)


@conforming
def explain_generator_training(
    model: nn.Module, batch: ExplainBatch, params: GeneratorTrainingParams
) -> GeneratorReconstructions:
    """The ``generator_training`` method: test images rebuilt from their code, and the training losses."""
    prior = prior_of(batch, model)
    with torch.no_grad(), eval_mode(model):
        codes = encode(model, prior.code_layer, batch.inputs.to(model_device(model)))
        rebuilt = prior.generator(prior.statistics.standardize(codes)).cpu()
    real = prior.space.to_pixels(batch.inputs).cpu()
    errors = (resize(rebuilt, prior.space.image_size) - real).pow(2).flatten(1).mean(1)
    folder = generator_folder(batch.run_dir)
    losses, metrics = _losses(folder / store.LOSSES), _metrics(folder / store.METRICS)
    return GeneratorReconstructions(rebuilt, errors, losses, metrics)


def _losses(path: Path) -> dict[str, list[float]]:
    losses = read_json(path)
    if not isinstance(losses, dict) or not all(
        isinstance(values, list) and all(isinstance(v, int | float) for v in values) for values in losses.values()
    ):
        raise UntrustedInputError(f"{path} must map loss names to lists of numbers; {store.again(path)}")
    return losses


def _metrics(path: Path) -> dict[str, float]:
    metrics = read_json(path)
    if not isinstance(metrics, dict):
        raise UntrustedInputError(f"{path} must hold a JSON object; {store.again(path)}")
    return {key: value for key, value in metrics.items() if isinstance(value, int | float) and key != "seconds"}
