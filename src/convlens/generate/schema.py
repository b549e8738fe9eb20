"""The structured schema of ``conf/generate/generate.yaml``: a typo or a wrong type is an error, and
:func:`check` refuses values out of range with the key that holds them."""

from __future__ import annotations

from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore

from convlens.generator.settings import GeneratorSettings, PriorSettings

SCHEMA_NAME = "generate_schema"


@dataclass
class GenerateConfig:
    """``run`` (a run directory) or the latest run of ``experiment`` (None: of every experiment).

    ``code_layer``: the classifier layer the generator inverts; ``layer3`` by default, a spatial code
    from which both demos' generators draw images the classifier reads as their class (PPGN-h: 6 of 7
    faces and 10 of 10 shapes with >= 2 of 3 samples at confidence >= 0.5, 2 of 7 and 5 of 10 with the
    penultimate features, docs/generator.md). None: the penultimate features, the input of the last ``nn.Linear``,
    as DGN inverts fc6 of its CaffeNet (the logits are then linear in the code). The generator learns
    from the first ``train_images`` training images; the realism measure compares synthesized images
    with the first ``heldout_images`` test images.
    """

    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    device: str = "auto"
    threads: int | None = 1
    seed: int = 0
    code_layer: str | None = "layer3"
    train_images: int = 2000
    heldout_images: int = 500
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    prior: PriorSettings = field(default_factory=PriorSettings)


def check(cfg: GenerateConfig) -> None:
    """A ``ValueError`` naming the first key whose value is out of range."""
    minimums = {
        "generator.steps": (cfg.generator.steps, 1), "generator.batch_size": (cfg.generator.batch_size, 2),
        "generator.feature_batch": (cfg.generator.feature_batch, 2),
        "prior.steps": (cfg.prior.steps, 1), "prior.batch_size": (cfg.prior.batch_size, 2),
        "prior.hidden": (cfg.prior.hidden, 1), "train_images": (cfg.train_images, 1),
        "heldout_images": (cfg.heldout_images, 1),
    }  # fmt: skip
    positive = {"generator.lr": cfg.generator.lr, "generator.discriminator_lr": cfg.generator.discriminator_lr,
                "prior.lr": cfg.prior.lr, "prior.noise": cfg.prior.noise}  # fmt: skip
    non_negative = {f"generator.{name}_weight": getattr(cfg.generator, f"{name}_weight")
                    for name in ("image", "feature", "adversarial")}  # fmt: skip
    non_negative["generator.linear_lr"] = cfg.generator.linear_lr
    for key, (value, minimum) in minimums.items():
        if value < minimum:
            raise ValueError(f"generate: {key}={value} must be >= {minimum}")
    for key, value in positive.items():
        if value <= 0:
            raise ValueError(f"generate: {key}={value} must be > 0")
    for key, value in non_negative.items():
        if value < 0:
            raise ValueError(f"generate: {key}={value} must be >= 0")
    if len(cfg.generator.widths) < 2 or min(cfg.generator.widths) < 1:
        raise ValueError(f"generate: generator.widths={list(cfg.generator.widths)} needs >= 2 positive widths")


def register_schema() -> None:
    """Make the schema known to Hydra before composing ``conf/generate/generate.yaml``."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=GenerateConfig)
