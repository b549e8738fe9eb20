"""Reading what users hand us (checkpoints, run directories, names) without trusting it.

A checkpoint is loaded with ``weights_only=True`` (tensors and plain containers, never pickled
code); a config found in a run directory may only instantiate convlens classes; a name taken from
such a file may only pick a path inside the folder it is meant for. Every refusal names the file
or key and says what to do instead.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, ListConfig

#: Packages whose classes a run directory's config may name as ``_target_``: models and data only, and
#: classes only (:func:`check_targets`), since any function, a convlens one too, runs with the file's
#: arguments when built (``convlens.atomic.write_text`` would write any file it is given).
CONVLENS_TARGETS = ("convlens.models.", "convlens.data.")
#: A name that is safe as one path component: letters, digits, ``_ - .``, not starting with a dot.
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class UntrustedInputError(ValueError):
    """Input that was refused; the message names the file or key and the fix."""


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A Lightning/torch checkpoint as plain data, loaded with ``weights_only=True`` on the CPU.

    Missing, empty, truncated and corrupted files, and files that hold pickled code, are refused
    with a message naming the file.
    """
    checkpoint = _load_plain(
        Path(path),
        "checkpoint",
        missing="pass <run>/checkpoints/last.ckpt of a run",
        empty="it was not written completely; train again",
        code="Use a checkpoint written by `make train`.",
        corrupt="use another checkpoint of the run or train again",
    )
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise UntrustedInputError(f"checkpoint {path} has no 'state_dict': it is not a Lightning checkpoint")
    check_finite(checkpoint["state_dict"], Path(path))
    return checkpoint


def check_finite(state: dict[str, Any], path: Path) -> None:
    """Refuse weights holding NaN or infinity: a model loaded from them computes NaN everywhere, and every
    map and score drawn from it would blame something else."""
    diverged = non_finite(state)
    if diverged:
        shown = ", ".join(diverged[:3]) + (", ..." if len(diverged) > 3 else "")
        raise UntrustedInputError(
            f"checkpoint {path} holds non-finite weights (NaN or infinity) in {len(diverged)} tensors ({shown}): "
            "the training that wrote it diverged. Train again with a lower optimizer.lr."
        )


def non_finite(state: dict[str, Any]) -> list[str]:
    """The names of the floating-point tensors in ``state`` that hold NaN or infinity."""
    return [
        key
        for key, value in state.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())
    ]


def load_torchvision_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A torchvision weights file (a plain ``state_dict`` such as ``resnet18-f37072fd.pth``), loaded
    like :func:`load_checkpoint`: ``weights_only=True``, on the CPU, every bad file refused by name."""
    fix = "save it with torch.save(torchvision.models.<arch>(weights=...).state_dict(), path)"
    state = _load_plain(Path(path), "weights file", missing=fix, empty=fix, code=fix.capitalize() + ".", corrupt=fix)
    if not isinstance(state, dict) or not all(isinstance(value, torch.Tensor) for value in state.values()):
        raise UntrustedInputError(f"weights file {path} is not a state_dict (a mapping of names to tensors); {fix}")
    return state


def _load_plain(path: Path, kind: str, *, missing: str, empty: str, code: str, corrupt: str) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; each failure refused with its own fix."""
    if not path.is_file():
        raise UntrustedInputError(f"{kind} {path} does not exist; {missing}")
    if path.stat().st_size == 0:
        raise UntrustedInputError(f"{kind} {path} is empty (0 bytes): {empty}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = unpickling_reason(error)
        if reason.startswith("Unsupported operand"):  # not a pickle at all: damaged or some other file
            raise UntrustedInputError(f"{kind} {path} is corrupted or not a {kind} ({reason}); {corrupt}") from error
        raise UntrustedInputError(
            f"{kind} {path} holds objects other than tensors and plain containers (it may carry code), so it "
            f"was not loaded ({reason}). {code}"
        ) from error
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, LookupError) as error:
        raise UntrustedInputError(
            f"{kind} {path} is truncated or corrupted and cannot be read ({str(error).splitlines()[0]}); {corrupt}"
        ) from error


def unpickling_reason(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler refused (e.g. ``Unsupported global: GLOBAL x.Y ...``), without
    torch's advice around it: that advice invites turning the weights-only guard off, which would run the code."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]*?)(?:\.\s|\.?$)", str(error), re.MULTILINE)
    return found.group(1) if found else "it is not a plain pickle of tensors"


def check_targets(node: Any, key: str, allowed: tuple[str, ...] = CONVLENS_TARGETS) -> None:
    """Every ``_target_`` in ``node`` (nested ones included) must name a class in one of ``allowed``."""
    if isinstance(node, DictConfig | dict):
        target = node.get("_target_")
        if target is not None and not (str(target).startswith(allowed) and _names_a_class(str(target))):
            raise UntrustedInputError(
                f"{key}._target_={target!r} is not allowed here: only {', '.join(allowed)}* classes may be built "
                "from this file. Restore the file from the run that wrote it."
            )
        for name, value in node.items():
            if name != "_target_":
                check_targets(value, f"{key}.{name}", allowed)
    elif isinstance(node, ListConfig | list | tuple):
        for index, value in enumerate(node):
            check_targets(value, f"{key}[{index}]", allowed)


def _names_a_class(target: str) -> bool:
    """``target`` (its package already checked to be convlens's) is a class, resolved as Hydra does: the
    longest importable module, then attributes (``convlens.data.sources`` is an alias of a module)."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            found = getattr(found, name, None)
        return inspect.isclass(found)
    return False


def instantiate_allowed(node: DictConfig, key: str, allowed: tuple[str, ...] = CONVLENS_TARGETS, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after :func:`check_targets`."""
    check_targets(node, key, allowed)
    return instantiate(node, **kwargs)


def safe_name(value: Any, key: str) -> str:
    """``value`` as a single path component (no separators, no ``..``, no leading dot)."""
    text = str(value)
    if not SAFE_NAME.match(text) or ".." in text:
        raise UntrustedInputError(
            f"{key}={text!r} cannot name a folder: use letters, digits, '_', '-' and '.', without '/' or '..'"
        )
    return text


def inside(root: str | Path, *parts: str) -> Path:
    """``root / parts``, refused when the resolved path leaves ``root`` (through ``..`` or a symlink)."""
    base = Path(root).resolve()
    path = base.joinpath(*parts).resolve()
    if path != base and base not in path.parents:
        raise UntrustedInputError(f"{Path(*parts)} points outside {root}; refusing to read or write there")
    return path


class NonFiniteNumberError(ValueError):
    """A JSON number that is not finite (``NaN``, ``Infinity``, ``1e999``): no score or metric can be one."""


def read_json(path: str | Path, what_rewrites_it: str = "rerun the stage that writes it") -> Any:
    """A JSON file as strict JSON (``NaN``, ``Infinity`` and overflowing numbers refused), every failure refused
    naming the file and ``what_rewrites_it`` (the command that writes it again), never a bare ``JSONDecodeError``."""
    try:
        return json.loads(Path(path).read_bytes(), parse_constant=_non_finite, parse_float=_finite)
    except FileNotFoundError as error:
        raise UntrustedInputError(f"{path} does not exist; {what_rewrites_it} writes it") from error
    except NonFiniteNumberError as error:
        raise UntrustedInputError(f"{path} holds {error}; {what_rewrites_it} writes it again") from error
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise UntrustedInputError(
            f"{path} is not valid JSON ({error}): it is truncated or damaged; {what_rewrites_it} writes it again"
        ) from error


def _non_finite(constant: str) -> float:
    raise NonFiniteNumberError(f"the non-finite number {constant}, which strict JSON does not allow")


def _finite(literal: str) -> float:
    value = float(literal)
    return value if math.isfinite(value) else _non_finite(literal)
