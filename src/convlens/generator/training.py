"""Training the generator prior on the run's own training images, with the classifier fixed.

The generator learns to invert the classifier's code layer as in Dosovitskiy & Brox (2016) and the
DGN paper (Nguyen et al. 2016): an image loss (pixel MSE to the encoded image), a feature loss (the
classifier's code of the generated image against the code it was generated from, so that what the
classifier reads in G(h) is h) and an adversarial loss from a small discriminator (which makes the
images sharper than MSE alone). The PPGN-h prior (Nguyen et al. 2017) is a denoising autoencoder
trained on the standardized codes. No library trains a generator against an arbitrary fixed
classifier, so the loops are written here; every random draw comes from seeded ``torch.Generator``s.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from convlens.generator.encoding import CodeStatistics, ImageSpace, encode
from convlens.generator.networks import CodeDenoiser, Discriminator, UpConvGenerator, seeded_init_
from convlens.generator.settings import GeneratorSettings, PriorSettings
from convlens.models.layers import eval_mode, frozen_parameters, model_device

History = dict[str, list[float]]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoded:
    """The training set as the generator sees it: uint8 ``images`` (N, C, H, W), their flattened ``codes``
    (N, D) at ``layer`` of the fixed classifier, the codes' statistics, and ``shape``, one code's (C, h, w)
    when the layer is spatial (else ())."""

    images: Tensor
    codes: Tensor
    layer: str
    statistics: CodeStatistics
    shape: tuple[int, ...] = ()


def train_generator(
    model: nn.Module, data: Encoded, space: ImageSpace, settings: GeneratorSettings, seed: int
) -> tuple[UpConvGenerator, History]:
    """A generator for ``data`` and its per-step losses (``image``, ``feature``, ``adversarial``,
    ``discriminator``); the classifier stays fixed and in eval mode."""
    device = model_device(model)
    data = dataclasses.replace(data, statistics=data.statistics.to(device))  # standardizes batches on the device
    seeds = torch.Generator().manual_seed(seed)
    channels, size = data.images.shape[1], data.images.shape[-1]
    generator = seeded_init_(UpConvGenerator(data.codes.shape[1], channels, size, settings.widths, data.shape), seeds)
    if settings.ridge_start:
        penalty = fit_coarse_path_(generator, data.statistics.standardize(data.codes), data.images)
        log.info("generator: linear path started at the ridge fit, penalty %g per training code", penalty)
    generator = generator.to(device)
    critic = seeded_init_(Discriminator(channels, settings.discriminator_widths), seeds).to(device)
    optimizers = (
        _generator_optimizer(generator, settings),
        torch.optim.Adam(critic.parameters(), lr=settings.discriminator_lr, betas=(0.5, 0.999)),
    )
    history: History = {}
    with eval_mode(model), frozen_parameters(model):
        for _ in range(settings.steps):
            index = torch.randint(len(data.codes), (settings.batch_size,), generator=seeds)
            real = data.images[index].to(device).float() / 255
            losses = _generator_step(model, generator, critic, optimizers, real, data, index, space, settings)
            for key, value in losses.items():
                history.setdefault(key, []).append(round(value, 6))
    return generator.eval(), history


def _generator_optimizer(generator: UpConvGenerator, settings: GeneratorSettings) -> torch.optim.Adam:
    """Adam at ``lr`` for the up-convolutions and at ``linear_lr`` for the linear path: Adam moves every
    weight by about its learning rate per step whatever the gradient, and on the linear path's
    code-to-pixel matrix that noise added up to a checkerboard and doubled the ridge fit's held-out error
    on the demo faces (docs/generator.md)."""
    linear = set(generator.coarse.parameters())
    rest = [parameter for parameter in generator.parameters() if parameter not in linear]
    groups = [{"params": rest}, {"params": list(linear), "lr": settings.linear_lr}]
    return torch.optim.Adam(groups, lr=settings.lr)


@torch.no_grad()
def fit_coarse_path_(generator: UpConvGenerator, codes: Tensor, images: Tensor) -> float:
    """Start the generator's linear path at the ridge regression from standardized ``codes`` (N, D) to
    the half-resolution ``images`` (uint8), fitted before the tanh (targets ``atanh(2 x - 1)``) on at
    most :data:`RIDGE_IMAGES` of them; the penalty is the one of :data:`RIDGE_PENALTIES` (times the
    images fitted) with the least leave-one-out error, so the fit cannot overfit a small training set.
    Returns that penalty. Gradient steps then refine the path: within a CPU budget of a few hundred
    steps, Adam alone left it short of this closed-form optimum (on the demo faces, above the mean
    image's error). Pixels are fitted in column blocks: beside the float32 half-resolution images
    (1.2 GB for 8192 CIFAR-10 images at 224 px) only one block is held in float64."""
    codes, images = codes[:RIDGE_IMAGES].double().cpu(), images[:RIDGE_IMAGES]
    pixels = torch.cat([F.interpolate(part.float() / 255, size=generator.coarse_size, mode="area").flatten(1)
                        for part in images.split(256)])  # fmt: skip
    code_mean = codes.mean(0)
    u, singular, v_t = torch.linalg.svd(codes - code_mean, full_matrices=False)
    penalties = [factor * len(codes) for factor in RIDGE_PENALTIES]
    shrinks = [singular**2 / (singular**2 + penalty) for penalty in penalties]
    leverages = [(u**2 * shrink).sum(1, keepdim=True) + 1 / len(codes) for shrink in shrinks]  # + the intercept's
    errors, projected, target_mean = torch.zeros(len(penalties), dtype=torch.float64), [], []
    for block in pixels.split(4096, dim=1):
        targets = torch.atanh((2 * block - 1).clamp(-_TANH_LIMIT, _TANH_LIMIT)).double()
        target_mean.append(targets.mean(0))
        targets -= target_mean[-1]
        projected.append(u.T @ targets)
        for index, (shrink, leverage) in enumerate(zip(shrinks, leverages, strict=True)):
            residual = targets - u @ (shrink[:, None] * projected[-1])
            errors[index] += (residual / (1 - leverage)).pow(2).sum()  # leave-one-out, in closed form
    best = int(errors.argmin())
    weight = v_t.T @ ((singular / (singular**2 + penalties[best]))[:, None] * torch.cat(projected, 1))
    generator.coarse.weight.copy_(weight.T)
    generator.coarse.bias.copy_(torch.cat(target_mean) - code_mean @ weight)
    return RIDGE_PENALTIES[best]


#: Ridge penalties tried by :func:`fit_coarse_path_`, per image fitted.
RIDGE_PENALTIES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
#: The most training images the ridge fit uses (a few times the code's dimensions is plenty).
RIDGE_IMAGES = 8192
#: Pixel targets are kept within tanh's range before atanh (0.96: 2% of the range from 0 and 1).
_TANH_LIMIT = 0.96


def _generator_step(
    model: nn.Module,
    generator: UpConvGenerator,
    critic: Discriminator,
    optimizers: tuple[torch.optim.Optimizer, torch.optim.Optimizer],
    real: Tensor,
    data: Encoded,
    index: Tensor,
    space: ImageSpace,
    settings: GeneratorSettings,
) -> dict[str, float]:
    """One generator update, then one discriminator update; the losses (those with weight 0 are skipped)."""
    statistics = data.statistics
    z = statistics.standardize(data.codes[index].to(real.device))
    fake = generator(z)
    losses = {"image": F.mse_loss(fake, real)}
    part = slice(0, settings.feature_batch)  # the classifier and the critic see a few images per step: they cost most
    if settings.feature_weight > 0:
        rebuilt = statistics.standardize(encode(model, data.layer, space.to_input(fake[part])))
        losses["feature"] = F.mse_loss(rebuilt, z[part])
    if settings.adversarial_weight > 0:
        losses["adversarial"] = F.softplus(-critic(fake[part])).mean()
    loss = sum(getattr(settings, f"{key}_weight") * value for key, value in losses.items())
    optimizers[0].zero_grad()
    loss.backward(inputs=list(generator.parameters()))
    optimizers[0].step()
    if settings.adversarial_weight > 0:
        critic_loss = F.softplus(-critic(real[part])).mean() + F.softplus(critic(fake[part].detach())).mean()
        optimizers[1].zero_grad()
        critic_loss.backward(inputs=list(critic.parameters()))
        optimizers[1].step()
        losses["discriminator"] = critic_loss
    return {key: value.item() for key, value in losses.items()}


def train_denoiser(standardized: Tensor, settings: PriorSettings, seed: int) -> tuple[CodeDenoiser, History]:
    """The PPGN-h prior: a denoising autoencoder on standardized codes (N, D), corrupted with Gaussian
    noise of std ``settings.noise``; its per-step reconstruction loss."""
    seeds = torch.Generator().manual_seed(seed)
    denoiser = seeded_init_(CodeDenoiser(standardized.shape[1], settings.hidden), seeds)
    optimizer = torch.optim.Adam(denoiser.parameters(), lr=settings.lr)
    losses = []
    for _ in range(settings.steps):
        clean = standardized[torch.randint(len(standardized), (settings.batch_size,), generator=seeds)]
        noisy = clean + settings.noise * torch.randn(clean.shape, generator=seeds)
        loss = F.mse_loss(denoiser(noisy), clean)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(round(loss.item(), 6))
    return denoiser.eval(), {"denoiser": losses}


@torch.no_grad()
def reconstruction_errors(generator: UpConvGenerator, codes: Tensor, images: Tensor, mean_image: Tensor) -> dict:
    """Pixel MSE (images in [0, 1]) of held-out ``images`` (uint8) reconstructed from their ``codes``,
    and of the training set's mean image as the baseline every reconstruction must beat."""
    device = next(generator.parameters()).device
    real = images.float() / 255
    rebuilt = torch.cat([generator(part.to(device)).cpu() for part in codes.split(250)])
    return {
        "heldout_reconstruction_mse": round(F.mse_loss(rebuilt, real).item(), 6),
        "mean_image_mse": round(F.mse_loss(mean_image.expand_as(real), real).item(), 6),
    }
