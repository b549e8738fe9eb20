"""The structured schema of ``conf/evaluate/evaluate.yaml``: a typo or a wrong type is an error.

``evaluate.<family>`` is typed by the settings dataclass of each family in the registry
(:mod:`convlens.evaluation_registry`), whose field defaults are the only defaults; :func:`family_settings`
rebuilds the frozen dataclasses from the composed config, so a value out of range is refused with its key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, make_dataclass

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from convlens.evaluation_registry import FAMILIES
from convlens.registry import load, writable

SCHEMA_NAME = "evaluate_schema"


@dataclass
class EvaluateConfig:
    """``run`` (a run directory) or the latest run of ``experiment`` (None: of every experiment);
    ``methods`` None evaluates every method whose maps the visualize stage kept, each with the settings
    it recorded, on the evaluation's own sample: ``images`` images of the visualized split drawn with
    ``seed``, stratified by class, each explained for the model's ``predicted`` class or the ``true``
    one (``explain``); costly methods (LIME) use its first ``costly_images`` (None: all of them) and the
    families that recompute maps for every step (randomization, robustness) their first ``images``,
    nested stratified subsets (:mod:`convlens.evaluate.sample`). ``images`` None sizes the sample by the
    device the stage runs on and the number of classes (:func:`convlens.evaluate.sample.default_size`).
    On a CPU the methods' maps and then the families run in ``workers`` forked processes of one torch
    thread each (1: in this process, with ``threads``). The schema adds one field per registered family,
    its settings."""

    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    device: str = "auto"
    channels_last: bool = True
    threads: int | None = None
    workers: int = 2
    methods: list[str] | None = None
    images: int | None = None
    costly_images: int | None = None
    seed: int = 0
    explain: str = "predicted"


class Settings:
    """Every registered family's checked settings, one attribute per family in registry order (the
    frozen dataclass :func:`family_settings` builds on this base)."""

    def as_dict(self) -> dict[str, dict]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]


def schema() -> DictConfig:
    """The schema with one field per registered family, typed by its settings dataclass."""
    families = [
        (name, load(spec.settings), field(default_factory=load(spec.settings))) for name, spec in FAMILIES.items()
    ]
    node = OmegaConf.structured(make_dataclass("EvaluateSchema", families, bases=(EvaluateConfig,)))
    writable(node)
    return node


def register_schema() -> None:
    """Make the schema (with the families registered now) known to Hydra before composing the config."""
    ConfigStore.instance().store(name=SCHEMA_NAME, node=schema())


def family_settings(cfg: DictConfig) -> Settings:
    """The frozen settings of every family from the composed config; a bad value names its key."""
    built = {}
    for name, spec in FAMILIES.items():
        values = OmegaConf.to_container(cfg[name], resolve=True) if name in cfg else {}
        try:
            built[name] = load(spec.settings)(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"evaluate.{name}: {error}") from error
    fields = [(name, type(params)) for name, params in built.items()]
    return make_dataclass("FamilySettings", fields, bases=(Settings,), frozen=True)(**built)
