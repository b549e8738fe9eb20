"""The structured schema of ``conf/compare/compare.yaml`` and the checks of its names against ``conf/``:
a misspelt key, a wrong type, an unknown experiment or model is an error before anything trains."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hydra.core.config_store import ConfigStore

SCHEMA_NAME = "compare_schema"


@dataclass
class CompareConfig:
    """Train (or, with ``reuse``, take the newest finished run of) ``experiment`` with each of ``models``,
    visualize and evaluate each run, and write one comparison report. ``train``, ``visualize`` and
    ``evaluate`` are Hydra overrides passed to those stages for every model, ``train_per_model`` more
    for the train stage of the models it names (after ``train``); ``methods`` the visualize
    methods (None: all); ``images`` how many test images the side-by-side figures show;
    ``trained_accuracy`` the test accuracy under which a model is flagged under-trained in the report's
    first table (its maps explain a weaker model, not the architecture)."""

    experiment: str = "demo_shapes"
    models: list[str] = field(default_factory=lambda: ["alexnet", "vgg11", "googlenet", "resnet18"])
    reuse: bool = False
    methods: list[str] | None = None
    images: int = 3
    trained_accuracy: float = 0.85
    train: list[str] = field(default_factory=list)
    train_per_model: dict[str, list[str]] = field(default_factory=dict)
    visualize: list[str] = field(default_factory=list)
    evaluate: list[str] = field(default_factory=list)
    outputs_dir: str = "outputs"
    reports_dir: str = "reports"


def register_schema() -> None:
    """Make the schema known to Hydra before composing ``conf/compare/compare.yaml``."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=CompareConfig)


def choices(conf_dir: Path, group: str) -> list[str]:
    """The options of a config group: the names of ``conf/<group>/*.yaml``."""
    return sorted(path.stem for path in (conf_dir / group).glob("*.yaml"))


def check_names(cfg: CompareConfig, conf_dir: Path) -> None:
    """Refuse an unknown experiment or model, a repeated model or a bad image count, naming the valid ones."""
    experiments, models = choices(conf_dir, "experiment"), choices(conf_dir, "model")
    if cfg.experiment not in experiments:
        raise ValueError(f"experiment={cfg.experiment!r} is not one of conf/experiment: {', '.join(experiments)}")
    unknown = [name for name in cfg.models if name not in models]
    if unknown:
        raise ValueError(f"MODELS: {', '.join(unknown)} not known; the models are: {', '.join(models)}")
    if len(cfg.models) < 2 or len(set(cfg.models)) != len(cfg.models):
        raise ValueError(f"MODELS={' '.join(cfg.models)}: name at least two different models to compare")
    stray = [name for name in cfg.train_per_model if name not in models]
    if stray:
        raise ValueError(f"train_per_model: {', '.join(stray)} not known; the models are: {', '.join(models)}")
    if cfg.images < 1:
        raise ValueError(f"images={cfg.images}: show at least one image")
    if not 0 <= cfg.trained_accuracy <= 1:
        raise ValueError(f"trained_accuracy={cfg.trained_accuracy}: a test accuracy between 0 and 1")
