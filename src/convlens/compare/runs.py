"""One run per model for `make compare`: trained afresh (or, with ``reuse``, the newest finished run of
the experiment with that model), then visualized and evaluated. Each stage runs as its own process
through the entry point a user calls (:func:`convlens.pipeline.run_script`, forked after the shared
imports when `make compare` preloaded them), so a comparison is made of
ordinary run directories that `make report RUN=...` can report on one by one."""

from __future__ import annotations

import logging
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from convlens.compare.schema import CompareConfig
from convlens.lineage import MADE_FROM, FileHashes, changed_inputs
from convlens.pipeline import run_script
from convlens.run_files import read_config
from convlens.rundir import CONF, CONFIG, EVALUATION_JSON, MANIFEST, METRICS
from convlens.stage import script
from convlens.untrusted import UntrustedInputError, inside, read_json, safe_name

log = logging.getLogger(__name__)

#: What the compare's visualize stage always sets: per class the first correctly and the first wrongly
#: classified test image (in split order), each explained for its true class. The first image of every
#: class is one of the two for any model, so every architecture explains it, for the same class.
SELECTION = ("selection.rank=index", "selection.correct_per_class=1", "selection.wrong_per_class=1",
             "selection.confused_pairs=0", "selection.explain=true")  # fmt: skip


class CompareError(RuntimeError):
    """A stage of one model failed, or runs cannot be compared; the message says which and why."""


@dataclass
class ModelRun:
    """The run directory of one model, whether it was reused, and each stage's wall time here (with
    process start), in seconds."""

    model: str
    root: Path
    reused: bool
    seconds: dict[str, float] = field(default_factory=dict)


def prepare_runs(cfg: CompareConfig, stamp: str) -> list[ModelRun]:
    """A trained, visualized and evaluated run of ``cfg.experiment`` for each model, in ``cfg.models`` order."""
    experiment_dir = inside(cfg.outputs_dir, safe_name(cfg.experiment, "experiment"))
    runs = []
    for model in cfg.models:
        found = newest_run(experiment_dir, cfg.experiment, model) if cfg.reuse else None
        run = ModelRun(model, found or experiment_dir / f"{stamp}_{model}", found is not None)
        if found is None:
            run.seconds["train"] = stage(run, "train", train_arguments(cfg, model, run.root))
        else:
            log.info("%s: reusing %s", model, found)
        if not cfg.reuse or stale(run.root, MANIFEST):
            run.seconds["visualize"] = stage(run, "visualize", visualize_arguments(cfg, run.root))
        if not cfg.reuse or stale(run.root, EVALUATION_JSON):
            run.seconds["evaluate"] = stage(run, "evaluate", [f"run={run.root}", *cfg.evaluate])
        runs.append(run)
    return runs


def train_arguments(cfg: CompareConfig, model: str, root: Path) -> list[str]:
    # paths.latest=false: the comparison's runs sit beside the user's own without becoming their `latest`.
    return [f"experiment={cfg.experiment}", f"model={model}", f"paths.outputs_dir={cfg.outputs_dir}",
            f"paths.output_dir={root}", "paths.latest=false",
            *cfg.train, *cfg.train_per_model.get(model, [])]  # fmt: skip


def visualize_arguments(cfg: CompareConfig, root: Path) -> list[str]:
    methods = [f"methods=[{','.join(cfg.methods)}]"] if cfg.methods is not None else []
    return [f"run={root}", *SELECTION, *methods, *cfg.visualize]


def stage(run: ModelRun, name: str, arguments: list[str]) -> float:
    """Run ``scripts/<name>.py`` with ``arguments``; its wall time, or CompareError when it fails."""
    print(f"[{run.model}] {name} ...", flush=True)
    started, cpu = time.perf_counter(), _children_cpu()
    returncode = run_script(script(name), arguments)
    if returncode != 0:
        raise CompareError(f"[{run.model}] {name} failed (exit {returncode}); see the messages above")
    seconds = time.perf_counter() - started
    # CPU seconds next to wall seconds: on a shared machine they show how much of the wall time was waiting.
    print(f"[{run.model}] {name} done in {seconds:.1f} s (CPU {_children_cpu() - cpu:.1f} s)", flush=True)
    return seconds


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def newest_run(experiment_dir: Path, experiment: str, model: str) -> Path | None:
    """The newest finished run (with metrics.json) of ``experiment`` whose model has the class and depth
    of ``conf/model/<model>.yaml``, or None."""
    wanted = model_identity(OmegaConf.load(CONF / "model" / f"{model}.yaml"))
    candidates = sorted(
        (path for path in experiment_dir.glob("*") if path.is_dir() and not path.is_symlink()),
        key=lambda path: path.name,
        reverse=True,
    )
    for path in candidates:
        config = _reusable_config(path) if (path / METRICS).is_file() and (path / CONFIG).is_file() else None
        if config is None or config.get("experiment_name") != experiment:
            continue
        if isinstance(config.get("model"), DictConfig) and model_identity(config.model) == wanted:
            return path
    return None


def _reusable_config(path: Path) -> DictConfig | None:
    """A candidate run's ``config.yaml``; None, with a warning naming the file and the fix, when it is
    damaged (an older run may be reused instead)."""
    try:
        return read_config(path)
    except UntrustedInputError as error:
        log.warning("not reusing %s: %s", path, error)
        return None


def model_identity(node: Any) -> tuple[str, str]:
    """What makes two model configs the same architecture: the class built and its depth (if any)."""
    return str(node.get("_target_")), str(node.get("depth"))


def stale(root: Path, artefact: Path) -> bool:
    """Whether a reused run must redo the stage that writes ``artefact`` (the manifest, the evaluation): it
    is missing, has no lineage record (older versions), or was made from files that changed since
    (:mod:`convlens.lineage`)."""
    if not (root / artefact).is_file():
        return True
    try:
        record = read_json(root / artefact)
    except UntrustedInputError as error:
        log.warning("%s is made again: %s", artefact, error)
        return True
    if not isinstance(record, dict) or not isinstance(record.get(MADE_FROM), dict):
        return True
    return bool(changed_inputs(record, FileHashes(root)))
