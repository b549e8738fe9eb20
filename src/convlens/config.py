"""Structured config schemas and value checks: a typo or a bad value stops before any training.

The dataclasses below are registered in Hydra's ConfigStore as ``train_schema``; ``conf/train.yaml``
lists it first in its defaults, so every YAML file and command-line override is merged into typed,
closed nodes (an unknown key is an error naming it; keys added with ``+key=`` are refused by
:func:`validate`, since Hydra lets those through). Nodes with a free shape (``model``, ``data.source``,
``optimizer``, ``scheduler``, loggers, callbacks) are checked against their ``_target_``'s signature instead.
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_object
from omegaconf import MISSING, DictConfig, OmegaConf
from torch.optim.lr_scheduler import OneCycleLR

from convlens.data.transforms import TTA_VIEWS
from convlens.untrusted import UntrustedInputError, safe_name


@dataclass
class ModuleConfig:
    label_smoothing: float = 0.0
    channels_last: bool = True
    compile: bool = False
    batched_weight_grad: bool = True  # CPU fp32: tiny-map conv weight gradients in one matmul (training/conv_grad.py)


@dataclass
class AugmentConfig:
    crop_padding: int = 0
    crop_fill: str = "constant"  # "constant" (black), "replicate" or "reflect" (docs/spatial_bias.md)
    hflip: bool = False
    rotate_degrees: float = 0.0
    erase_prob: float = 0.0
    erase_scale: list[float] = field(default_factory=lambda: [0.02, 0.2])


@dataclass
class DataConfig:
    _target_: str = "convlens.data.ImageDataModule"
    name: str = MISSING
    data_dir: str = "${paths.data_dir}"
    source: Any = MISSING
    num_classes: int = MISSING
    channels: int = MISSING
    image_size: int = MISSING
    mean: list[float] = MISSING
    std: list[float] = MISSING
    batch_size: int = 128
    eval_batch_size: int = 256
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    test_time_augmentation: str = "none"  # test split only: "none", "hflip" or "ten_crop"
    on_device: bool = True
    seed: int = "${seed}"  # type: ignore[assignment]  # interpolated: the run's seed


@dataclass
class TrainerConfig:
    _target_: str = "pytorch_lightning.Trainer"
    accelerator: str = "auto"
    devices: Any = 1  # a count, a list of ids, -1 (all) or "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "auto"  # auto: bf16-mixed on a bf16 GPU, on a CPU where measured faster; else 32-true
    max_epochs: int = 10
    deterministic: bool = False
    benchmark: bool = False
    sync_batchnorm: bool = False
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int = 1
    check_val_every_n_epoch: int = 1
    log_every_n_steps: int = 10
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    num_sanity_val_steps: int = 0
    enable_progress_bar: bool = True  # drawn on a terminal only (training/console.py)
    enable_model_summary: bool = True
    use_distributed_sampler: bool = False  # the data module shards its own batches
    default_root_dir: str = "${paths.output_dir}"


@dataclass
class PathsConfig:
    data_dir: str = "data"
    cache_dir: str = "data/cache"
    outputs_dir: str = "outputs"
    output_dir: str | None = None  # null: a new outputs_dir/<experiment>/<time>, made by the train stage
    latest: bool = True  # false: the finished run does not become <experiment>/latest (make compare's runs)


@dataclass
class TrainConfig:
    experiment_name: str = MISSING
    seed: int = 42
    ckpt_path: str | None = None
    run_test: bool = True
    data: DataConfig = MISSING
    model: Any = MISSING
    optimizer: Any = MISSING  # a ``_partial_`` torch.optim class (conf/optimizer/)
    scheduler: Any = None  # a ``_partial_`` torch.optim.lr_scheduler class (conf/scheduler/); empty: none
    module: ModuleConfig = field(default_factory=ModuleConfig)
    trainer: TrainerConfig = MISSING
    logger: Any = MISSING
    callbacks: Any = MISSING
    paths: PathsConfig = MISSING


def register_configs() -> None:
    """Make the schema known to Hydra before composing ``conf/train.yaml``."""
    ConfigStore.instance().store(name="train_schema", node=TrainConfig)


class ConfigError(ValueError):
    """A config value that would fail later; the message names the key and the fix."""


def validate(cfg: DictConfig) -> None:
    """Check values the schema's types cannot express; raise ConfigError naming the key."""
    check_known_keys(cfg, TrainConfig)
    _check_range(cfg, "optimizer.lr", OmegaConf.select(cfg, "optimizer.lr", default=1) > 0, "must be > 0, e.g. 0.1")
    weight_decay = OmegaConf.select(cfg, "optimizer.weight_decay", default=0)
    _check_range(cfg, "optimizer.weight_decay", weight_decay >= 0, "must be >= 0")
    _check_range(cfg, "module.label_smoothing", 0 <= cfg.module.label_smoothing < 1, "must be in [0, 1)")
    _check_range(cfg, "data.batch_size", cfg.data.batch_size >= 1, "must be >= 1")
    _check_range(cfg, "data.eval_batch_size", cfg.data.eval_batch_size >= 1, "must be >= 1")
    _check_range(cfg, "trainer.max_epochs", cfg.trainer.max_epochs >= 1, "must be >= 1")
    _check_range(cfg, "seed", 0 <= cfg.seed < 2**32, "must lie in [0, 2**32), the seeds numpy accepts")
    gpu = cfg.trainer.accelerator in ("gpu", "cuda", "auto")  # auto: checked again by Lightning on a CPU-only machine
    _check_range(cfg, "trainer.sync_batchnorm", gpu or not cfg.trainer.sync_batchnorm, "needs GPUs (NCCL); use false")
    tta = cfg.data.test_time_augmentation
    _check_range(cfg, "data.test_time_augmentation", tta in TTA_VIEWS, f"must be one of {list(TTA_VIEWS)}")
    if len(cfg.data.mean) != cfg.data.channels or len(cfg.data.std) != cfg.data.channels:
        raise ConfigError(f"data.mean and data.std need {cfg.data.channels} values (data.channels), one per channel")
    for key in ("model", "data.source"):
        check_target(OmegaConf.select(cfg, key), key)
    check_partial(cfg.optimizer, "optimizer")
    if cfg.scheduler:  # empty (conf/scheduler/none.yaml): a constant learning rate
        check_partial(cfg.scheduler, "scheduler")
        _check_one_cycle(cfg)
    for group in ("logger", "callbacks"):
        for name, node in (cfg[group] or {}).items():
            check_target(node, f"{group}.{name}")
    _check_image_size(cfg)
    check_run_names(cfg)


def check_run_names(cfg: DictConfig) -> None:
    """The run folder's name and the experiment's name name the run's report folder, which must be one plain
    path component (letters, digits, ``_ - .``: no space): refused before training, not by the report at the end."""
    names = {"experiment_name": cfg.experiment_name}
    if cfg.paths.output_dir is not None:
        names["paths.output_dir"] = Path(cfg.paths.output_dir).name
    for key, name in names.items():
        try:
            safe_name(name, key)
        except UntrustedInputError as error:
            raise ConfigError(f"{error}; the report folder of the run is named after it") from error


def check_known_keys(node: DictConfig, schema: type, prefix: str = "") -> None:
    """Every key of a schema node must be a field of its dataclass. Hydra merges ``+trainer.foo=1``
    even into closed nodes, so keys added that way are caught here, like misspelt ones."""
    fields = typing.get_type_hints(schema)
    for key, value in node.items_ex(resolve=False):
        if key not in fields:
            where = f" of {prefix.rstrip('.')}" if prefix else ""
            raise ConfigError(f"{prefix}{key} is not a config key; valid keys{where}: {', '.join(fields)}")
        if dataclasses.is_dataclass(fields[key]) and isinstance(value, DictConfig):
            check_known_keys(value, fields[key], f"{prefix}{key}.")


def known_part(node: DictConfig, schema: type) -> dict[str, Any]:
    """The keys of ``node`` that the ``schema`` dataclass has (nested nodes likewise), for type-checking a
    config that may hold keys the schema no longer has (a run written by an older version)."""
    fields = typing.get_type_hints(schema)
    return {
        key: known_part(value, fields[key])
        if dataclasses.is_dataclass(fields[key]) and isinstance(value, DictConfig)
        else value
        for key, value in node.items_ex(resolve=False)
        if key in fields
    }


def check_data_fits(cfg: DictConfig, train_size: int) -> None:
    """The training set must fill one batch (training drops the ragged last batch)."""
    if cfg.data.batch_size > train_size:
        raise ConfigError(
            f"data.batch_size={cfg.data.batch_size} is larger than the training set of data '{cfg.data.name}' "
            f"({train_size} images), so not one training batch could be formed; use data.batch_size<={train_size}"
        )
    _check_train_share(cfg, train_size // cfg.data.batch_size)


def _check_train_share(cfg: DictConfig, batches: int) -> None:
    """A fractional ``trainer.limit_train_batches`` must keep a batch of the ``batches`` (Lightning rounds the
    share down and refuses 0, but only once the run directory exists, with a traceback; a DDP process,
    holding fewer batches, may still be refused by Lightning)."""
    share = cfg.trainer.limit_train_batches
    if isinstance(share, float) and 0 < share < 1 and int(share * batches) < 1:
        raise ConfigError(
            f"trainer.limit_train_batches={share} keeps {share} x {batches} < 1 of the training batches of data "
            f"'{cfg.data.name}'; give a batch count (e.g. trainer.limit_train_batches=1) or a share >= 1/{batches}"
        )


def _check_range(cfg: DictConfig, key: str, ok: bool, rule: str) -> None:
    if not ok:
        raise ConfigError(f'{key}={OmegaConf.select(cfg, key)} {rule} (override it, e.g. ARGS="{key}=...")')


def check_target(node: DictConfig, key: str) -> None:
    """Every key of a ``_target_`` node must be a parameter of the target (typos are caught here)."""
    if node is None or "_target_" not in node:
        raise ConfigError(f"{key} needs a _target_ (the class to build)")
    try:
        target = get_object(node._target_)
    except Exception as error:
        raise ConfigError(f"{key}._target_={node._target_} cannot be imported: {error}") from error
    parameters = inspect.signature(target).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    unknown = sorted(k for k in node if not k.startswith("_") and k not in parameters)
    if unknown:
        valid = ", ".join(name for name in parameters if name != "self")
        raise ConfigError(f"{key}: unknown key(s) {unknown} for {node._target_}; valid keys: {valid}")


def check_partial(node: DictConfig, key: str) -> None:
    """An optimizer or scheduler node: a ``_target_`` class built later with what only training knows
    (the parameters, the optimizer), hence ``_partial_: true``."""
    check_target(node, key)
    if node.get("_partial_") is not True:
        raise ConfigError(f"{key} needs '_partial_: true' ({node._target_} gets its first argument at training time)")


def _check_one_cycle(cfg: DictConfig) -> None:
    """OneCycleLR's last phase (the annealing) must last a step whatever the run's length, or torch divides
    by zero at the run's end: ``pct_start`` < 1, or <= 0.5 with ``three_phase`` (warm-up, then as long back)."""
    pct_start = cfg.scheduler.get("pct_start")
    if pct_start is None or not issubclass(get_object(cfg.scheduler._target_), OneCycleLR):
        return
    three_phase = cfg.scheduler.get("three_phase", False)
    rule = "must be a number in [0, 0.5] with three_phase" if three_phase else "must be a number in [0, 1)"
    number = isinstance(pct_start, int | float)
    fits = number and pct_start >= 0 and (pct_start <= 0.5 if three_phase else pct_start < 1)
    _check_range(cfg, "scheduler.pct_start", fits, rule)


def _check_image_size(cfg: DictConfig) -> None:
    minimum = getattr(get_object(cfg.model._target_), "min_input_size", 1)
    if cfg.data.image_size < minimum:
        raise ConfigError(
            f"data.image_size={cfg.data.image_size} is too small for {cfg.model._target_} "
            f"(it downsamples to nothing below {minimum} px); use data.image_size>={minimum}"
        )
