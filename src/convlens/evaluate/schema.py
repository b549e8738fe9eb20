"""The structured schema of ``conf/evaluate/evaluate.yaml``: a typo or a wrong type is an error.

Each family of metrics has its settings dataclass (in its module, whose field defaults are the only
defaults); :func:`family_settings` rebuilds the frozen dataclasses from the composed config, so a
value out of range is refused with its key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig, OmegaConf

from convlens.evaluate.faithfulness import FaithfulnessParams
from convlens.evaluate.localisation import LocalisationParams
from convlens.evaluate.randomization import RandomizationParams
from convlens.evaluate.robustness import RobustnessParams
from convlens.visualize.schema import _writable

SCHEMA_NAME = "evaluate_schema"
FAMILIES = {
    "localisation": LocalisationParams,
    "faithfulness": FaithfulnessParams,
    "randomization": RandomizationParams,
    "robustness": RobustnessParams,
}


@dataclass
class EvaluateConfig:
    """``run`` (a run directory) or the latest run of ``experiment`` (None: of every experiment);
    ``methods`` None evaluates every method whose maps the visualize stage kept."""

    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    device: str = "auto"
    channels_last: bool = True
    threads: int | None = None
    methods: list[str] | None = None
    localisation: LocalisationParams = field(default_factory=LocalisationParams)
    faithfulness: FaithfulnessParams = field(default_factory=FaithfulnessParams)
    randomization: RandomizationParams = field(default_factory=RandomizationParams)
    robustness: RobustnessParams = field(default_factory=RobustnessParams)


@dataclass(frozen=True)
class Settings:
    """Every family's checked settings."""

    localisation: LocalisationParams
    faithfulness: FaithfulnessParams
    randomization: RandomizationParams
    robustness: RobustnessParams

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def register_schema() -> None:
    """Make the schema known to Hydra before composing the config (frozen settings made writable)."""
    node = OmegaConf.structured(EvaluateConfig)
    _writable(node)
    ConfigStore.instance().store(name=SCHEMA_NAME, node=node)


def family_settings(cfg: DictConfig) -> Settings:
    """The frozen settings of every family from the composed config; a bad value names its key."""
    built = {}
    for name, params_type in FAMILIES.items():
        values = OmegaConf.to_container(cfg[name], resolve=True) if name in cfg else {}
        try:
            built[name] = params_type(**values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"evaluate.{name}: {error}") from error
    return Settings(**built)
