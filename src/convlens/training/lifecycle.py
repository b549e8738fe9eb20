"""What surrounds a training run: its directory (new, named, or the resumed run's), removed again when
the set-up fails before any training; the run's ``train.log``; and the process-wide torch flags that
Lightning changes, restored afterwards."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig

from convlens.config import ConfigError
from convlens.rundir import create_run_dir, resumed_run_dir
from convlens.untrusted import safe_name


def make_run_dir(cfg: DictConfig) -> tuple[Path, bool]:
    """The run directory, recorded in ``cfg.paths.output_dir``, and whether this run created it:

    - ``paths.output_dir`` when given (it must not exist yet);
    - resuming from ``<run>/checkpoints/*.ckpt``: ``<run>``, where the run continues (Lightning then
      restores its best checkpoint's state too, and the TensorBoard curves stay in one place);
    - else a new ``<outputs_dir>/<experiment>/<time>``.

    New directories are created atomically, so no two runs share one.
    """
    resumed = resumed_run_dir(cfg.ckpt_path)
    if cfg.paths.output_dir is not None:
        run_dir = _new_dir(Path(cfg.paths.output_dir))
    elif resumed is not None:
        run_dir = resumed
    else:
        run_dir = create_run_dir(Path(cfg.paths.outputs_dir) / safe_name(cfg.experiment_name, "experiment_name"))
    cfg.paths.output_dir = str(run_dir)
    return run_dir, run_dir != resumed


def _new_dir(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        raise ConfigError(
            f"paths.output_dir={path} exists already: every run gets a new directory. Remove it, name another "
            "one, or leave paths.output_dir unset for a new outputs/<experiment>/<time>"
        ) from None
    return path


@contextmanager
def removed_on_error(run_dir: Path, created: bool) -> Iterator[None]:
    """Remove a run directory this run ``created`` when the block fails: it holds no training yet."""
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


@contextmanager
def torch_flags_kept() -> Iterator[None]:
    """Restore the process-wide flags ``Trainer(deterministic=...)`` sets, so that code running after
    training in the same process (a notebook, the tests) is not refused ops without a deterministic
    kernel, such as the deconvnet's max-unpooling."""
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn = (torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn


@contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Copy the root logger's records into ``path`` (the run's train.log, in the console's format)."""
    root = logging.getLogger()
    handler = logging.FileHandler(path)
    handler.setFormatter(next((h.formatter for h in root.handlers if h.formatter), None))
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
