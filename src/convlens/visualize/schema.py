"""The structured schema of ``conf/visualize/visualize.yaml``: a typo or a wrong type is an error.

``params.<method>`` is typed by the method's settings dataclass from the registry, so the YAML and
the command line can only set fields the method has, with values of the field's type; what they do
not set keeps the dataclass default, the only default there is.
"""

from __future__ import annotations

from dataclasses import dataclass, field, make_dataclass
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from convlens.registry import METHODS, load, writable

SCHEMA_NAME = "visualize_schema"


@dataclass
class SelectionConfig:
    """Which test images are explained: per class the most confident hits and mistakes among the first
    ``max_candidates`` images of ``split`` (None: all), explained for the ``predicted`` or ``true`` class,
    and an example of each of the ``confused_pairs`` most frequent confusions (for methods that read
    the confusion matrix, such as LIME); ``rank`` orders each class's candidates by ``confidence`` or
    by ``index`` (the first in the split: the same images for models that classify them alike)."""

    split: str = "test"
    correct_per_class: int = 1
    wrong_per_class: int = 1
    confused_pairs: int = 3
    max_candidates: int | None = 1000
    explain: str = "predicted"
    rank: str = "confidence"


@dataclass
class VisualizeConfig:
    """``run`` (a run directory) or the latest run of ``experiment`` (None: of every experiment);
    ``methods`` None runs every registered method; ``params`` holds each method's settings."""

    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    device: str = "auto"
    channels_last: bool = True
    workers: int = 2
    threads: int | None = 1
    selection: SelectionConfig = field(default_factory=SelectionConfig)
    methods: list[str] | None = None
    params: Any = None


def schema() -> DictConfig:
    """The schema with one ``params`` field per registered method, typed by its settings dataclass."""
    settings = make_dataclass(
        "MethodSettings", [(name, load(spec.parameters), field(default_factory=load(spec.parameters)))
                           for name, spec in METHODS.items()],
    )  # fmt: skip
    root = make_dataclass("VisualizeSchema", [("params", settings, field(default_factory=settings))],
                          bases=(VisualizeConfig,))  # fmt: skip
    node = OmegaConf.structured(root)
    writable(node)
    return node


def register_schema() -> None:
    """Make the schema (with the methods registered now) known to Hydra before composing the config."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=schema())
