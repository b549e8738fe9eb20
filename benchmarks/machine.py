"""Probes of the machine a benchmark runs on: its hardware and software, how busy other processes kept
it, the peak memory of a block, and its dense-arithmetic ceiling. Every run records these next to its
numbers, because on a shared machine a speed means little without them."""

from __future__ import annotations

import contextlib
import os
import platform
import threading
import time
from typing import Any

import psutil
import torch
from timing import sync

from convlens import hardware, provenance

#: The CPU extensions that decide fp32 vs bf16 speed, recorded with every run.
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


def environment(device: torch.device) -> dict[str, Any]:
    """Hardware and software of this run (what docs/benchmarks.md shows next to every number)."""
    flags = hardware.cpu_flags()
    return {
        "cpu": hardware.cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_flags": [flag for flag in SPEED_FLAGS if flag in flags],
        "torch_threads": torch.get_num_threads(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "git": provenance.git_state(),
    }


class LoadMonitor:
    """How busy the machine was with other work while a benchmark ran: the load average and the share
    of all CPU time that processes outside this one (and its children) used."""

    def __init__(self) -> None:
        self.start_load = os.getloadavg()
        self.start_wall = time.perf_counter()
        self.start_busy = _busy_cpu_seconds()
        self.start_own = _own_cpu_seconds()

    def stop(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.start_wall
        capacity = wall * (os.cpu_count() or 1)
        busy = _busy_cpu_seconds() - self.start_busy
        own = _own_cpu_seconds() - self.start_own
        return {
            "load_average_start": [round(v, 2) for v in self.start_load],
            "load_average_end": [round(v, 2) for v in os.getloadavg()],
            "other_processes_cpu_share": round(max(0.0, busy - own) / capacity, 3) if capacity else None,
            "own_cpu_share": round(own / capacity, 3) if capacity else None,
            "wall_seconds": round(wall, 1),
        }


def _busy_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _own_cpu_seconds() -> float:
    """CPU time of this process and its children, including finished ones (e.g. DataLoader workers)."""
    me = psutil.Process()
    total = sum(me.cpu_times()[:4])  # user, system, children_user, children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


class MemorySampler:
    """Peak memory while a block runs, sampled: RSS of this process, and RSS and PSS summed over this
    process and its children (PSS counts the pages that forked DataLoader workers share with their parent
    only once). Sampled rather than ``ru_maxrss``, which Linux carries over from the parent across exec."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks = {"rss": 0, "tree_rss": 0, "tree_pss": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        rss = tree_rss = tree_pss = 0
        for process in (me, *me.children(recursive=True)):
            try:
                info = process.memory_full_info()
            except psutil.Error:
                continue
            rss = rss or info.rss
            tree_rss += info.rss
            tree_pss += getattr(info, "pss", info.rss)
        for key, value in (("rss", rss), ("tree_rss", tree_rss), ("tree_pss", tree_pss)):
            self.peaks[key] = max(self.peaks[key], value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> MemorySampler:
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    def result(self) -> dict[str, float | None]:
        mib = 2**20
        gpu = torch.cuda.max_memory_allocated() / mib if torch.cuda.is_available() else None
        return {
            "peak_rss_mb": round(self.peaks["rss"] / mib, 1),
            "peak_tree_rss_mb": round(self.peaks["tree_rss"] / mib, 1),
            "peak_tree_pss_mb": round(self.peaks["tree_pss"] / mib, 1),
            "gpu_peak_allocated_mb": None if gpu is None else round(gpu, 1),
        }


def matmul_gflops(device: torch.device, dtype: torch.dtype, size: int, repeats: int = 3) -> float:
    """Best-of-``repeats`` GFLOP/s of one ``size`` x ``size`` matrix product: the dense-arithmetic
    ceiling that any training pipeline on this device is capped by."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.mm(a, b)
    best = 0.0
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        torch.mm(a, b)
        sync(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - started) / 1e9)
    return best
