"""Configs compose for every experiment; a typo or a bad value stops before training, naming the key."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import SCHEDULERS
from hydra.errors import ConfigCompositionException
from hydra.utils import instantiate
from omegaconf.errors import ConfigKeyError, ValidationError
from torch import nn

from convlens.config import ConfigError, check_data_fits, validate
from convlens.training.module import ClassifierModule

EXPERIMENTS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "experiment").glob("*.yaml"))
MODELS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "model").glob("*.yaml"))
OPTIMIZERS = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "optimizer").glob("*.yaml"))


def test_the_experiments_exist() -> None:
    assert EXPERIMENTS == ["cifar10_resnet18", "demo_faces", "demo_shapes", "fer2013_cnn", "fer2013_cnn_cpu"]


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
        ("optimizer.lr=0", r"optimizer.lr=0 must be > 0"),
        ("optimizer.lr=-0.1", r"optimizer.lr=-0.1 must be > 0"),
        ("optimizer.weight_decay=-1", r"optimizer.weight_decay=-1 must be >= 0"),
        ("data.batch_size=0", r"data.batch_size=0 must be >= 1"),
        ("data.image_size=16", r"data.image_size=16 is too small for convlens.models.ResNet.*>=32"),
        ("data.test_time_augmentation=twelve", r"data.test_time_augmentation=twelve must be one of"),
        ("module.label_smoothing=1.5", r"module.label_smoothing=1.5 must be in \[0, 1\)"),
        ("seed=-1", r"seed=-1 must lie in \[0, 2\*\*32\)"),
        # ``+key=`` gets past Hydra's closed nodes; validate() refuses it like a misspelt key.
        ("+trainer.max_epoch=1", r"trainer.max_epoch is not a config key; valid keys of trainer: _target_, accel"),
        ("+seeed=1", r"seeed is not a config key; valid keys: experiment_name, seed"),
        ("+data.augment.flip=true", r"data.augment.flip is not a config key; valid keys of data.augment: crop_pad"),
        ("+module.lr=0.1", r"module.lr is not a config key; valid keys of module: label_smoothing"),
        ("+optimizer.momentm=0.5", r"optimizer: unknown key\(s\) \['momentm'\] for torch.optim.AdamW"),
        ("+scheduler.gama=0.5", r"scheduler: unknown key\(s\) \['gama'\] for torch.optim.lr_scheduler.OneCycleLR"),
    ],
)
def test_invalid_values_and_unknown_keys_name_the_key(compose_train, override: str, message: str) -> None:
    cfg = compose_train("experiment=demo_shapes", override, "paths.output_dir=unused")
    with pytest.raises(ConfigError, match=message):
        validate(cfg)


def test_a_share_of_the_training_batches_below_one_batch_is_refused(compose_train) -> None:
    """Lightning rounds trainer.limit_train_batches x batches down and refuses 0; an integer 0 skips training."""
    cfg = compose_train("experiment=demo_faces", "data.batch_size=64", "paths.output_dir=unused")
    for share in (0.25, 1.0, 0, 3):
        cfg.trainer.limit_train_batches = share
        check_data_fits(cfg, 256)  # 4 batches
    cfg.trainer.limit_train_batches = 0.2
    with pytest.raises(ConfigError, match=r"trainer.limit_train_batches=0.2 keeps 0.2 x 4 < 1 .* share >= 1/4"):
        check_data_fits(cfg, 256)


def test_unknown_optimizer_lists_choices(compose_train) -> None:
    with pytest.raises(ConfigCompositionException, match=r"(?s)optimizer/adam.*adamw.*sgd"):
        compose_train("optimizer=adam")


def test_optimizer_and_scheduler_need_partial(compose_train) -> None:
    cfg = compose_train("optimizer._partial_=false", "paths.output_dir=unused")
    with pytest.raises(ConfigError, match=r"optimizer needs '_partial_: true'"):
        validate(cfg)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_every_optimizer_and_scheduler_builds(compose_train, optimizer: str, scheduler: str) -> None:
    """Each YAML file of conf/optimizer and conf/scheduler is all it takes to train with it."""
    cfg = compose_train(f"optimizer={optimizer}", f"scheduler={scheduler}", "paths.output_dir=unused")
    validate(cfg)
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    module = ClassifierModule(net, instantiate(cfg.optimizer), instantiate(cfg.scheduler) if cfg.scheduler else None,
                              ["a", "b", "c"])  # fmt: skip
    module.trainer = SimpleNamespace(estimated_stepping_batches=100)  # what build_scheduler asks of the trainer
    config = module.configure_optimizers()
    assert type(config["optimizer"]).__name__ == cfg.optimizer._target_.rsplit(".", 1)[-1]
    assert [group["weight_decay"] for group in config["optimizer"].param_groups] == [cfg.optimizer.weight_decay, 0.0]
    schedule = config.get("lr_scheduler")
    assert (schedule is None) == (scheduler == "none")


def test_demo_recipe_builds_the_same_optimizer_and_schedule(compose_train) -> None:
    """demo_shapes' recipe as the string-dispatched optimizer built it: AdamW (lr 0.003, betas 0.9/0.999),
    weight decay 0.05 on weights only, fused; one-cycle over every step, 20% warm-up."""
    cfg = compose_train("experiment=demo_shapes", "paths.output_dir=unused")
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    module = ClassifierModule(net, instantiate(cfg.optimizer, _convert_="all"), instantiate(cfg.scheduler), ["a"])
    module.trainer = SimpleNamespace(estimated_stepping_batches=195)
    config = module.configure_optimizers()
    optimizer, schedule = config["optimizer"], config["lr_scheduler"]
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True
    assert [(len(g["params"]), g["weight_decay"]) for g in optimizer.param_groups] == [(1, 0.05), (3, 0.0)]
    assert tuple(optimizer.defaults["betas"]) == (0.9, 0.999) and optimizer.defaults["eps"] == 1e-8
    assert schedule["interval"] == "step" and isinstance(schedule["scheduler"], torch.optim.lr_scheduler.OneCycleLR)
    assert schedule["scheduler"].total_steps == 195 and schedule["scheduler"]._schedule_phases[0]["end_step"] == 38
    assert [g["max_lr"] for g in optimizer.param_groups] == [0.003, 0.003]


def test_another_optimizer_and_schedule_for_an_experiment(compose_train) -> None:
    """An experiment sets only the keys all optimizers share (lr, weight_decay), so switching works."""
    cfg = compose_train("experiment=fer2013_cnn", "optimizer=adamw", "scheduler=cosine", "paths.output_dir=unused")
    validate(cfg)
    assert (cfg.optimizer._target_, cfg.optimizer.lr, cfg.scheduler.T_max) == ("torch.optim.AdamW", 0.01, 100)


def test_plateau_schedule_watches_validation_accuracy(compose_train) -> None:
    cfg = compose_train("experiment=fer2013_cnn", "paths.output_dir=unused")
    module = ClassifierModule(nn.Linear(2, 2), instantiate(cfg.optimizer), instantiate(cfg.scheduler), ["a", "b"])
    module.trainer = SimpleNamespace(estimated_stepping_batches=10)
    schedule = module.configure_optimizers()["lr_scheduler"]
    assert schedule["monitor"] == "val/acc" and schedule["scheduler"].mode == "max"
    assert schedule["scheduler"].factor == 0.75 and schedule["interval"] == "epoch"
