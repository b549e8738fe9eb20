"""Record once, truthfully: a resume continues the training its run directory records, or is refused.

A run's ``config.yaml`` and the environment in its ``provenance.json`` are written once, when the run
starts. Resuming from ``<run>/checkpoints/last.ckpt`` continues that run in its directory, so the new
configuration is checked key by key against the recorded one before anything is built or written:
a key outside :data:`RESUMABLE` that differs refuses the resume, naming each such key with its recorded
and new value; an allowed change is kept as a resume event in ``provenance.json["resumes"]`` (written
once the resumed training has finished; a failed resume leaves both files as they were).
``config.yaml`` keeps the values the run started with; the last resume event holds the newer ones.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch.optim.lr_scheduler import OneCycleLR

from convlens import provenance
from convlens.config import ConfigError
from convlens.run_files import read_config
from convlens.rundir import CONFIG, resumed_run_dir

#: The keys a resume may change, each with why it cannot change what the model learns: the training
#: before the checkpoint is done, and the training after it follows the same data, model, optimizer,
#: schedule and random numbers whatever these say.
RESUMABLE: dict[str, str] = {
    "trainer.max_epochs": "how long training goes on; the epochs already trained stay as they were "
    "(refused for a schedule that spans the whole run, see resume_check)",
    "trainer.enable_progress_bar": "console output only",
    "trainer.enable_model_summary": "console output only",
    "trainer.log_every_n_steps": "how often scalars are logged, not what is trained",
    "paths.outputs_dir": "where new runs go; a resume continues in its own directory",
}
#: Keys that name the resume itself (the checkpoint), not how the model trains.
RESUME_KEYS = frozenset({"ckpt_path"})
#: A schedule whose length is fixed at the start of a run: Lightning restores its total steps from the
#: checkpoint, so a longer run fails in its first extra step ("Tried to step ... times").
WHOLE_RUN_SCHEDULES = (f"{OneCycleLR.__module__}.{OneCycleLR.__qualname__}",)
_ABSENT = "(absent)"


class ResumeError(ConfigError):
    """A resume whose configuration differs from the run's in a key a resume may not change."""


@dataclass(frozen=True)
class Resume:
    """An allowed resume of ``run_dir``: when it started, from which checkpoint, what it changed."""

    run_dir: Path
    ckpt_path: str
    changed: dict[str, tuple[Any, Any]]
    started: str

    def event(self) -> dict[str, Any]:
        """The record of this resume in ``provenance.json["resumes"]``."""
        return {
            "time": self.started,
            "command": provenance.command_line(),
            "ckpt_path": provenance.portable_path(self.ckpt_path),
            "changed": {key: {"recorded": old, "now": new} for key, (old, new) in self.changed.items()},
        }

    def record(self) -> None:
        provenance.record_resume(self.run_dir, self.event())


def check_resume(cfg: DictConfig) -> Resume | None:
    """The resume ``cfg`` asks for, checked against the run's ``config.yaml``; None when ``cfg`` starts a
    new run (no ``ckpt_path`` into a run directory, or an explicit ``paths.output_dir``)."""
    run_dir = resumed_run_dir(cfg.ckpt_path)
    if run_dir is None or cfg.paths.output_dir is not None:
        return None
    recorded = read_config(run_dir)
    changed = differences(_flat(recorded), _flat(_in_run_dir(cfg, recorded)))
    refused = {key: values for key, values in changed.items() if key not in RESUMABLE}
    if refused:
        raise ResumeError(_refusal(cfg.ckpt_path, run_dir, refused))
    target = str((cfg.get("scheduler") or {}).get("_target_"))
    if "trainer.max_epochs" in changed and target in WHOLE_RUN_SCHEDULES:
        raise ResumeError(
            f"ckpt_path={cfg.ckpt_path}: trainer.max_epochs cannot change on a resume of {run_dir} (recorded "
            f"{changed['trainer.max_epochs'][0]}, now {changed['trainer.max_epochs'][1]}): its schedule "
            f"({target}) spans the whole run, fixed when it started. Resume with the recorded trainer.max_epochs, "
            "or train a new run with the longer one. Nothing was written."
        )
    return Resume(run_dir, str(cfg.ckpt_path), changed, datetime.now(UTC).isoformat(timespec="seconds"))


def differences(recorded: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``{key: (recorded value, new value)}`` for every dotted key whose value differs (or exists in one
    only), the keys naming the resume itself left out."""
    keys = sorted((recorded.keys() | now.keys()) - RESUME_KEYS)
    pairs = {key: (recorded.get(key, _ABSENT), now.get(key, _ABSENT)) for key in keys}
    return {key: (old, new) for key, (old, new) in pairs.items() if old != new}


def _in_run_dir(cfg: DictConfig, recorded: DictConfig) -> DictConfig:
    """A copy of ``cfg`` with the run directory the run recorded, so that the values derived from it
    (``${paths.output_dir}/checkpoints``, the logger's folder) compare equal."""
    copied = copy.deepcopy(cfg)
    copied.paths.output_dir = OmegaConf.select(recorded, "paths.output_dir")
    return copied


def _flat(node: DictConfig) -> dict[str, Any]:
    """Every leaf of the resolved config under its dotted key (lists are leaves)."""
    return _flatten(OmegaConf.to_container(node, resolve=True))


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {key: leaf for name, item in value.items() for key, leaf in _flatten(item, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): value}


def _refusal(ckpt_path: str, run_dir: Path, refused: dict[str, tuple[Any, Any]]) -> str:
    lines = "\n".join(f"  {key}: recorded {old!r}, now {new!r}" for key, (old, new) in refused.items())
    return (
        f"ckpt_path={ckpt_path} resumes {run_dir}, but {len(refused)} setting(s) differ from its {CONFIG}, "
        f"which a resume may not change:\n{lines}\n"
        f"A resume continues the same training; it may change only {', '.join(RESUMABLE)}. Drop these overrides "
        "to resume, or train a new run with them (without ckpt_path, or with paths.output_dir=<a new folder> "
        "to start it from this checkpoint). Nothing was written."
    )
