"""Configs compose for every experiment; a typo or a bad value stops before training, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from convlens.config import ConfigError, validate

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml"))


def test_the_four_experiments_exist() -> None:
    assert EXPERIMENTS == ["cifar10_resnet18", "demo_faces", "demo_shapes", "fer2013_cnn"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes_and_validates(compose_train, experiment: str) -> None:
    cfg = compose_train(f"experiment={experiment}", "paths.output_dir=unused")
    validate(cfg)
    assert cfg.experiment_name == experiment
    assert cfg.model.num_classes == cfg.data.num_classes


@pytest.mark.parametrize("model", MODELS)
def test_every_model_composes(compose_train, model: str) -> None:
    data = "data=faces" if model == "fer_cnn" else "data=shapes"
    validate(compose_train(f"model={model}", data, "paths.output_dir=unused"))


def test_real_experiments_use_the_assignment_settings(compose_train) -> None:
    cifar = compose_train("experiment=cifar10_resnet18", "paths.output_dir=unused")
    assert (cifar.data.image_size, cifar.model.depth, cifar.data.num_classes) == (224, 18, 10)
    fer = compose_train("experiment=fer2013_cnn", "paths.output_dir=unused")
    assert (fer.data.image_size, fer.data.channels, fer.data.num_classes) == (48, 1, 7)


def test_unknown_experiment_lists_the_valid_ones(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)experiment/cifar100.*demo_shapes"):
        compose_train("experiment=cifar100")


def test_unknown_model_lists_the_valid_ones(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)model/resnet19.*resnet18"):
        compose_train("model=resnet19")


def test_misspelt_override_key_is_an_error(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match="trainer.max_epoch"):
        compose_train("trainer.max_epoch=1")


def test_misspelt_key_in_a_config_file_is_an_error(compose_train, tmp_path: Path) -> None:
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "typo.yaml").write_text("# @package _global_\ndata:\n  bathc_size: 3\n")
    with pytest.raises((ConfigCompositionException, ConfigKeyError), match="bathc_size"):
        compose_train("experiment=typo", f"hydra.searchpath=[file://{tmp_path}]")


def test_misspelt_model_key_is_an_error(compose_train) -> None:
    cfg = compose_train("+model.widht=3", "paths.output_dir=unused")
    with pytest.raises(ConfigError, match=r"model: unknown key\(s\) \['widht'\].*valid keys: depth, num_classes"):
        validate(cfg)


def test_wrong_type_is_an_error(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match="data.batch_size=lots") as error:
        compose_train("data.batch_size=lots")
    assert isinstance(error.value.__cause__, ValidationError)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("module.optimizer.lr=0", r"module.optimizer.lr=0.0 must be > 0"),
        ("module.optimizer.lr=-0.1", r"module.optimizer.lr=-0.1 must be > 0"),
        ("data.batch_size=0", r"data.batch_size=0 must be >= 1"),
        ("data.image_size=16", r"data.image_size=16 is too small for convlens.models.ResNet.*>=32"),
        ("data.test_time_augmentation=twelve", r"data.test_time_augmentation=twelve must be one of"),
        ("module.label_smoothing=1.5", r"module.label_smoothing=1.5 must be in \[0, 1\)"),
    ],
)
def test_invalid_values_name_the_key(compose_train, override: str, message: str) -> None:
    cfg = compose_train("experiment=demo_shapes", override, "paths.output_dir=unused")
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_unknown_optimizer_lists_choices(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match="module.optimizer.name=adam") as error:
        compose_train("module.optimizer.name=adam")
    assert "expected one of [sgd, adamw]" in str(error.value.__cause__)
