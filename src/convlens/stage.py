"""The stage kernel: the one start-up and the one ending that every stage shares.

A stage (``make generate / visualize / evaluate / report``) acts on run directories; its module holds
only its body and its schema, and this kernel does the rest, once and the same way for every stage:

- **which runs**: ``run`` (a run directory) or the latest run of ``experiment`` (None: of every
  experiment); a run that fails does not stop the others, and the stage fails at the end naming each;
- **the start-up** of a run: torch CPU threads, the device, and, when the body asks for it, the
  trained model loaded as untrusted input (:func:`convlens.rundir.load_run`), adapted to the model
  conventions (:func:`convlens.models.conventions.adapt`, a no-op for convlens models), in eval mode
  on the device (channels-last if asked);
- **the ending**: the stage's folder in the run directory built under a temporary name and swapped in
  when complete (:meth:`OpenedRun.staged`), and the stage's time recorded in ``provenance.json``;
- **lineage**: the sha256 of the run files a stage read (:attr:`OpenedRun.made_from`: the checkpoint and
  ``config.yaml`` when it loads the model, what it declares with :meth:`OpenedRun.reading`), for the
  ``made_from`` record of what it writes (:mod:`convlens.lineage`).

The train stage creates the run directory rather than opening one, so it shares only the ending
(:func:`record_time`). Adding a stage is a settings dataclass with the fields of
:class:`StageSettings` and a body ``(opened, settings) -> record``; ``docs/architecture.md`` walks
through it and ``tests/test_stage.py`` proves it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from convlens import atomic, provenance
from convlens.config import ConfigError, check_known_keys
from convlens.hardware import resolve_device
from convlens.lineage import FileHashes
from convlens.models.conventions import adapt
from convlens.rundir import (
    CONFIG,
    RunDirError,
    TrainedRun,
    best_checkpoint,
    check_run_dir,
    load_run,
    resolve_runs,
    run_name,
)
from convlens.untrusted import UntrustedInputError

log = logging.getLogger(__name__)

#: The project's entry points, one ``<stage>.py`` per stage (the Makefile's targets call them too).
SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


class StageSettings(Protocol):
    """The fields every stage's settings share; ``device``, ``channels_last`` and ``threads`` are
    read only by stages that load the model (a missing one keeps the default: auto, no, torch's)."""

    run: str | None
    experiment: str | None
    outputs_dir: str


@dataclass
class OpenedRun:
    """One run directory opened for a stage. ``trained`` (the run with its data) and ``model`` (adapted,
    eval mode, on ``device``) load on first use, so a stage that only reads files never loads them."""

    root: Path
    folder: str | None
    settings: Any
    started: float = field(default_factory=time.perf_counter)
    stamped: float | None = None
    #: The run's files this stage read, with their sha256 taken before reading: the stage's
    #: ``made_from`` record (:mod:`convlens.lineage`).
    made_from: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return run_name(self.root)

    @cached_property
    def device(self) -> torch.device:
        return resolve_device(getattr(self.settings, "device", "auto"))

    @cached_property
    def trained(self) -> TrainedRun:
        self.reading(best_checkpoint(check_run_dir(self.root)).relative_to(self.root), CONFIG)
        return load_run(self.root)

    def reading(self, *relatives: str | Path) -> None:
        """Record the sha256 of run files the stage is about to read (before it reads them)."""
        self.made_from.update(FileHashes(self.root).record(list(relatives)))

    @cached_property
    def model(self) -> nn.Module:
        layout = torch.channels_last if getattr(self.settings, "channels_last", False) else torch.contiguous_format
        model = adapt(self.trained.model.eval()).to(device=self.device, memory_format=layout).eval()
        # The stages explain the weights and never train them: with the weights frozen, a backward pass
        # computes only the gradients a method asks for (of the input, of an activation), not every weight's.
        return model.requires_grad_(False)

    def seconds(self) -> float:
        """Time since the stage opened this run. The last value a body asks for (to write into its own
        record) is what provenance records, so the two files never state different times."""
        self.stamped = round(time.perf_counter() - self.started, 2)
        return self.stamped

    @contextmanager
    def staged(self) -> Iterator[Path]:
        """The stage's folder, built aside and swapped in when the block completes (kept as it was on error)."""
        if self.folder is None:
            raise ValueError("this stage declares no folder of the run directory")
        with atomic.staged_folder(self.root / self.folder) as staging:
            yield staging


Body = Callable[[OpenedRun, Any], dict[str, Any]]


@dataclass(frozen=True)
class Stage:
    """A stage: ``name`` (its key in provenance), the ``folder`` of the run directory it writes (a
    :mod:`convlens.rundir` name; None: it writes elsewhere) and its ``body``."""

    name: str
    folder: str | None
    body: Body

    def run(self, settings: StageSettings) -> list[dict[str, Any]]:
        """The body on every run the settings name; a run that fails is reported after the others ran."""
        self.check(settings)
        runs = resolve_runs(settings.run, settings.experiment, Path(settings.outputs_dir))
        records, failures = [], []
        for run_dir in runs:
            try:
                records.append(self.run_one(run_dir, settings))
            except (RunDirError, UntrustedInputError, ValueError) as error:
                if len(runs) == 1:
                    raise
                log.error("%s: %s failed: %s", run_name(run_dir), self.name, error)
                failures.append(f"{run_name(run_dir)}: {error}")
        if failures:
            raise RunDirError(f"{len(failures)} of {len(runs)} runs failed:\n" + "\n".join(failures))
        return records

    def check(self, settings: Any) -> None:
        """What every stage's settings share, checked before a run opens: no key the stage's schema lacks
        (Hydra merges ``+key=value`` even into a closed config), ``threads`` and ``workers`` >= 1, a
        ``device`` torch knows."""
        schema = OmegaConf.get_type(settings) if isinstance(settings, DictConfig) else None
        if schema is not None and dataclasses.is_dataclass(schema):
            check_known_keys(settings, schema)
        threads, workers = getattr(settings, "threads", None), getattr(settings, "workers", 1)
        if threads is not None and threads < 1:
            raise ConfigError(f"{self.name}.threads={threads} must be >= 1 (or null: torch's default)")
        if workers < 1:
            raise ConfigError(f"{self.name}.workers={workers} must be >= 1 (1: the work in turn, in this process)")
        resolve_device(getattr(settings, "device", "auto"))

    def run_one(self, run_dir: str | Path, settings: Any) -> dict[str, Any]:
        """The body on one run directory, with the stage's threads; its time goes into provenance (read
        first, so that a damaged one is named before the stage's work rather than after it)."""
        self.check(settings)
        opened = OpenedRun(Path(run_dir), self.folder, settings)
        provenance.read(opened.root)
        code = provenance.git_state()
        with torch_threads(getattr(settings, "threads", None)):
            record = self.body(opened, settings)
        seconds = opened.stamped if opened.stamped is not None else opened.seconds()
        record_time(opened.root, self.name, seconds, code)
        return record


def record_time(root: str | Path, stage: str, seconds: float, code: dict[str, Any]) -> None:
    """The ending every stage shares: its wall time and the code it started with (``code``,
    :func:`convlens.provenance.git_state` at its start) in the run's ``provenance.json``."""
    provenance.record_stage(root, stage, seconds, code)


def script(stage: str) -> Path:
    """The entry point ``scripts/<stage>.py`` (``make demo``, ``make compare`` and ``make sweep`` run it)."""
    path = SCRIPTS / f"{stage}.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no entry point for stage '{stage}'")
    return path


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run with ``count`` torch CPU threads (None: leave as is), restoring the previous count."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
