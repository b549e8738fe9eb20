"""The settings of the generator prior's two networks and their training (the library's defaults;
``make generate`` sets them under ``generator.*`` and ``prior.*``, :mod:`convlens.generate.schema`)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GeneratorSettings:
    """The up-convolutional generator and its training, with the three losses of Dosovitskiy & Brox
    (2016): image (pixel MSE), feature (the classifier's standardized code of the generated image
    against the code it came from) and adversarial. ``feature_batch``: the images of each batch that
    the classifier and the discriminator see (they cost most of a step on a CPU). ``ridge_start``: the
    linear path starts at its closed-form ridge fit (False: at zero, a grey image); ``linear_lr``: its
    learning rate (0: it stays at that fit, with ``ridge_start=false`` at zero)."""

    steps: int = 300
    batch_size: int = 32
    feature_batch: int = 8
    lr: float = 1e-3
    discriminator_lr: float = 2e-4
    image_weight: float = 1.0
    feature_weight: float = 0.01
    adversarial_weight: float = 0.002
    widths: list[int] = field(default_factory=lambda: [32, 16, 8])
    discriminator_widths: list[int] = field(default_factory=lambda: [16, 32, 64])
    ridge_start: bool = True
    linear_lr: float = 0.0


@dataclass
class PriorSettings:
    """The PPGN-h denoising autoencoder on standardized codes; ``noise`` is its corruption's std (in
    units of each code dimension's std): the larger, the smoother the prior."""

    steps: int = 500
    batch_size: int = 64
    lr: float = 3e-3
    noise: float = 1.0
    hidden: int = 256
