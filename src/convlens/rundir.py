"""The run directory, the only hand-off between stages: its files, `latest` pointers, and the
trained model loaded back from it. A run directory is input, not code: its checkpoints load as plain
data and its config may only build convlens classes (:mod:`convlens.untrusted`)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from hydra.errors import InstantiationException
from omegaconf import DictConfig
from torch import nn

from convlens import atomic
from convlens.lineage import part_key
from convlens.untrusted import inside, instantiate_allowed, load_checkpoint

if TYPE_CHECKING:  # importing the data module pulls in Lightning: 3 s that report/visualize rarely need
    from convlens.data import ImageDataModule

# Every name in a run directory (docs/architecture.md, "Run directory"); no other module spells one.
# Written by the train stage:
CONFIG = "config.yaml"
CLASS_NAMES = "class_names.json"
METRICS = "metrics.json"
BEST_CHECKPOINT = Path("checkpoints") / "best.ckpt"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
TRAIN_LOG = "train.log"
TENSORBOARD = "tensorboard"
CONFUSION_CSV = "confusion_matrix.csv"
CONFUSION_PNG = "confusion_matrix.png"
#: ``<experiments dir>/latest`` (and ``<reports dir>/<experiment>/latest``): the newest finished run (report).
LATEST = "latest"
# The visualize stage's folder: figures per method, the manifest, and maps/<method>.npz for the evaluation.
VISUALIZATIONS = "visualizations"
MANIFEST_NAME = "manifest.json"
MAPS_NAME = "maps"
MANIFEST = Path(VISUALIZATIONS) / MANIFEST_NAME
#: What the evaluate stage reads of the manifest, and records in its lineage: each method's settings.
MANIFEST_SETTINGS = part_key(MANIFEST, "method-settings")
# The evaluate stage's folder.
EVALUATION = "evaluation"
EVALUATION_NAME = "evaluation.json"
CASCADE_NAME = "cascade.png"
COMPARISON_NAME = "comparison.png"
PARTS_NAME = "parts.png"
EVALUATION_JSON = Path(EVALUATION) / EVALUATION_NAME
# The generate stage's folder (its files: convlens.generator.store).
GENERATOR = "generator"
#: The split the visualize stage draws its images from unless the manifest records another (older manifests).
DEFAULT_SPLIT = "test"
#: The experiments the project defines (the package runs from its source tree: `pip install -e .`).
#: The project's Hydra configs, and the experiments among them.
CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENT_CONFIGS = CONF / "experiment"
#: strftime format of a run directory's name; a second run started in the same second gets ``-2``, ...
RUN_NAME_FORMAT = "%Y-%m-%d_%H-%M-%S"


class RunDirError(ValueError):
    """A path that is not (or not yet) what a stage needs; the message says how to get there."""


def run_name(root: str | Path) -> str:
    """``<experiment>/<time>``: the run without any machine-specific prefix."""
    resolved = Path(root).resolve()
    return f"{resolved.parent.name}/{resolved.name}"


def check_run_dir(path: str | Path) -> Path:
    root = Path(path)
    if not (root / CONFIG).is_file():
        raise RunDirError(
            f"{root} is not a run directory (no {CONFIG}). Pass RUN=outputs/<experiment>/<time> "
            "of a run made by `make train` or `make demo`."
        )
    if root.resolve().name == LATEST:
        raise RunDirError(
            f"{root} is a run folder named '{LATEST}', the name of the link to an experiment's newest run "
            f"(its report would replace that link's); rename the folder, e.g. to the run's start time"
        )
    return root


def create_run_dir(experiment_dir: Path, moment: datetime | None = None) -> Path:
    """A new, empty ``<experiment_dir>/<YYYY-mm-dd_HH-MM-SS>`` for a run started at ``moment`` (default: now).
    ``mkdir`` succeeds for one process only, so when another run took the name (started in the same
    second), the next free of ``<name>-2``, ``<name>-3``, ... is taken instead: no two runs share one."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    return next(path for path in _run_names(experiment_dir, moment) if _created(path))


def unused_run_dir(experiment_dir: Path, moment: datetime | None = None) -> Path:
    """The name :func:`create_run_dir` would take now, not created: for a caller that hands it to the train stage
    as ``paths.output_dir`` (which refuses a folder that exists, should another run take it first)."""
    return next(path for path in _run_names(experiment_dir, moment) if not path.exists())


def _created(path: Path) -> bool:
    """Whether ``mkdir`` made ``path`` here (False: another run holds the name)."""
    try:
        path.mkdir()
    except FileExistsError:
        return False
    return True


def _run_names(experiment_dir: Path, moment: datetime | None) -> Iterator[Path]:
    """``<time>``, then ``<time>-2``, ``<time>-3``, ... under ``experiment_dir``."""
    stem = (moment or datetime.now()).strftime(RUN_NAME_FORMAT)
    yield experiment_dir / stem
    for number in itertools.count(2):
        yield experiment_dir / f"{stem}-{number}"


def resumed_run_dir(ckpt_path: str | Path | None) -> Path | None:
    """The run directory a checkpoint ``<run>/checkpoints/<name>.ckpt`` belongs to, or None."""
    if ckpt_path is None:
        return None
    run = Path(ckpt_path).parent.parent
    return run if Path(ckpt_path).parent.name == "checkpoints" and (run / CONFIG).is_file() else None


def point_latest(run_dir: Path) -> None:
    """Make ``<experiment dir>/latest`` a relative symlink to ``run_dir`` (atomically). The train stage
    calls it once the run has finished, so ``latest`` always names a complete run."""
    atomic.point(run_dir.parent / LATEST, run_dir.name)


def resolve_runs(run: str | Path | None, experiment: str | None, outputs_dir: str | Path) -> list[Path]:
    """RUN given: that run. Otherwise the latest run of ``experiment``, or of every experiment."""
    if run:
        return [check_run_dir(run)]
    outputs = Path(outputs_dir)
    trained = sorted(path.name for path in outputs.glob("*") if path.is_dir())
    if experiment and experiment not in trained:
        known = sorted({path.stem for path in EXPERIMENT_CONFIGS.glob("*.yaml")})
        if experiment not in known:
            raise RunDirError(
                f"unknown experiment '{experiment}': no conf/experiment/{experiment}.yaml and no "
                f"{outputs}/{experiment}/; experiments: {', '.join(sorted(set(known) | set(trained)))}"
            )
    experiments = [outputs / experiment] if experiment else [outputs / name for name in trained]
    runs = [path / LATEST for path in experiments if (path / LATEST).exists()]
    if not runs:
        scope = f"experiment '{experiment}'" if experiment else "any experiment"
        train = f"make train EXPERIMENT={experiment}" if experiment else "make train` or `make demo"
        raise RunDirError(f"no trained run of {scope} under {outputs}/; run `{train}` first")
    return [check_run_dir(path) for path in runs]


@dataclass
class TrainedRun:
    """A run directory with its model (best checkpoint, eval mode, CPU) and its data, ready to inspect."""

    root: Path
    config: DictConfig
    class_names: list[str]
    model: nn.Module
    datamodule: ImageDataModule

    def black_image(self) -> torch.Tensor:
        """The model input (1, C, H, W, on the CPU) of an all-black image of the dataset: the
        reference that occlusion, deletion and the activation-maximization start share."""
        shape = self.datamodule.split(DEFAULT_SPLIT).images.shape[1:]
        return self.datamodule.preprocess(torch.zeros((1, *shape), dtype=torch.uint8)).cpu()


def best_checkpoint(root: Path) -> Path:
    from convlens.run_files import read_metrics  # run_files reads the names this module defines

    relative = read_metrics(root).get("best_checkpoint") if (root / METRICS).exists() else None
    relative = str(relative or BEST_CHECKPOINT)
    if not inside(root, relative).is_file():  # inside(): metrics.json may not point out of the run
        raise RunDirError(f"{root} has no checkpoint at {relative}; train it first (`make train`)")
    return root / relative


def load_state(model: nn.Module, checkpoint: Path, prefix: str = "net.") -> None:
    """Load the ``net.`` weights of a Lightning checkpoint (as plain data), with a clear error when shapes differ."""
    state = load_checkpoint(checkpoint)["state_dict"]
    weights = {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    check_shapes(model.state_dict(), weights, checkpoint)
    model.load_state_dict(weights)


def check_shapes(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], checkpoint: Path) -> None:
    for key, tensor in expected.items():
        if key not in found:
            raise RunDirError(f"checkpoint {checkpoint} lacks weight '{key}': it was made for another model")
        if found[key].shape != tensor.shape:
            raise RunDirError(
                f"checkpoint {checkpoint} does not fit the model: '{key}' has shape {tuple(found[key].shape)} "
                f"there but {tuple(tensor.shape)} here (different number of classes or channels?). "
                "Use a checkpoint of the same experiment, or train from scratch (ckpt_path=null)."
            )


def load_run(path: str | Path) -> TrainedRun:
    from convlens.run_files import read_class_names, read_config  # run_files reads the names defined here

    root = check_run_dir(path)
    config = read_config(root)
    checkpoint = best_checkpoint(root)
    # The checkpoint holds the weights: a weights file named in the config (model.weights) is not read again.
    model = _build(root, config, "model", **({"weights": None} if "weights" in config.model else {}))
    load_state(model, checkpoint)
    model.eval()
    datamodule = _build(root, config, "data", on_device=False)
    datamodule.prepare(())  # class names now; each split when a stage first asks for it
    class_names = read_class_names(root, int(config.data.num_classes))
    return TrainedRun(root, config, class_names, model, datamodule)


def _build(root: Path, config: DictConfig, key: str, **kwargs: Any) -> Any:
    """The run's ``key`` object; a config this version cannot build (an older run, a hand edit) is refused
    with the file and the fix."""
    try:
        return instantiate_allowed(config[key], key, **kwargs)
    except InstantiationException as error:
        raise RunDirError(
            f"{root / CONFIG}: its '{key}' cannot be built by this version of convlens ({error.__cause__ or error}); "
            f"was the run made by an older version, or the file edited? Train it again: "
            f"make train EXPERIMENT={config.get('experiment_name', '<name>')}"
        ) from error
