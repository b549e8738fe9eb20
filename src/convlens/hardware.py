"""The machine a stage runs on: which device to use, and what the CPU and GPU are called.

Shared by the stages (device choice), provenance (hardware records) and the benchmarks, so every
place that names or picks hardware does it the same way.
"""

from __future__ import annotations

import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")


def resolve_device(name: str) -> torch.device:
    """``auto``: the first CUDA GPU when there is one, else the CPU; anything else as torch parses it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"device={name!r} is not a device torch knows; use auto, cpu, cuda or cuda:<index>") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={name!r}: no CUDA GPU is available here; use device=cpu or device=auto")
    return device


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC 7B13``, ``Intel(R) Xeon(R) Platinum 8481C``), not just the
    architecture: speed numbers are only comparable on the same model."""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ``amx_tile``, ...); empty where unknown."""
    if CPUINFO.is_file():
        for line in CPUINFO.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def gpu_models() -> list[str]:
    """The names of the visible CUDA GPUs, in device order (empty without one)."""
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
