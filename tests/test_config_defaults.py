"""The schemas' dataclass field defaults are the only defaults: no YAML file repeats one, so a default
changed in the dataclass is changed everywhere (a repeated value would silently keep the old one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from omegaconf import OmegaConf

from convlens.compare.schema import CompareConfig
from convlens.config import PathsConfig, TrainConfig, TrainerConfig
from convlens.generate.schema import GenerateConfig
from convlens.report.schema import ReportConfig
from convlens.visualize.schema import schema as visualize_schema

CONF = Path(__file__).parents[1] / "conf"

#: Each YAML file whose keys a dataclass schema types, with that schema. Data options stay out: each
#: states its dataset's own values (a batch size may match DataConfig's by chance).
SCHEMAS: dict[str, Any] = {
    "train.yaml": TrainConfig,
    "paths/default.yaml": PathsConfig,
    **{f"trainer/{path.name}": TrainerConfig for path in sorted((CONF / "trainer").glob("*.yaml"))},
    "visualize/visualize.yaml": visualize_schema(),
    "report/report.yaml": ReportConfig,
    "compare/compare.yaml": CompareConfig,
    "generate/generate.yaml": GenerateConfig,
}


def schema_defaults(schema: Any) -> dict[str, Any]:
    """The schema's defaults as plain values (interpolations unresolved, MISSING as ``???``)."""
    return OmegaConf.to_container(OmegaConf.structured(schema), resolve=False)


def repeated_defaults(values: dict[str, Any], defaults: dict[str, Any], prefix: str = "") -> list[str]:
    """The keys of ``values`` set to exactly their default; a non-empty mapping is compared key by key.
    Keys the schema lacks (``defaults``, ``hydra``) are Hydra's, not the schema's."""
    repeated = []
    for key, value in values.items():
        if key not in defaults:
            continue
        default = defaults[key]
        if isinstance(value, dict) and value and isinstance(default, dict):
            repeated += repeated_defaults(value, default, f"{prefix}{key}.")
        elif value == default:
            repeated.append(f"{prefix}{key}")
    return repeated


@pytest.mark.parametrize("path", sorted(SCHEMAS))
def test_no_yaml_repeats_a_schema_default(path: str) -> None:
    values = OmegaConf.to_container(OmegaConf.load(CONF / path), resolve=False)
    assert repeated_defaults(values, schema_defaults(SCHEMAS[path])) == [], (
        f"conf/{path} repeats these dataclass defaults; delete them from the YAML"
    )


def test_repeated_defaults_finds_nested_and_empty_repeats() -> None:
    values = {"workers": 2, "threads": 4, "selection": {"split": "test", "rank": "index"}, "params": {}}
    assert repeated_defaults(values, schema_defaults(visualize_schema())) == ["workers", "selection.split"]
    assert repeated_defaults({"train_per_model": {}}, schema_defaults(CompareConfig)) == ["train_per_model"]


@pytest.mark.parametrize(("trainer", "devices"), [("default", 1), ("cpu", 1), ("gpu", 1), ("ddp", -1)])
def test_trainer_devices_come_from_the_dataclass_or_the_option(compose_train, trainer: str, devices: int) -> None:
    """One device unless an option says otherwise (TrainerConfig.devices; conf/trainer/ddp.yaml: all)."""
    assert compose_train(f"trainer={trainer}", "paths.output_dir=unused").trainer.devices == devices
