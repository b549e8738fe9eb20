"""Running the planned methods, in forked worker processes on the CPU (:mod:`convlens.forked`).

The methods are independent and each runs on small batches, where a second torch thread gains
little; a second process computing another method gains nearly 2x (``docs/benchmarks.md``). A GPU
(which a forked process cannot use) runs the methods in turn.
"""

from __future__ import annotations

from pathlib import Path

import torch

from convlens.forked import forked_map
from convlens.visualize.context import Context
from convlens.visualize.methods import MethodResult, Planned, run_method


def run_methods(ctx: Context, planned: dict[str, Planned], out_dir: Path, workers: int) -> dict[str, MethodResult]:
    """Every planned method, in ``workers`` processes (each with this process's torch threads) where
    that helps; results in plan order. Long-running methods are handed out first, so that the workers
    finish together."""
    order = sorted(planned, key=lambda name: not planned[name].spec.long_running)
    processes = workers if ctx.device.type == "cpu" else 1
    results = forked_map(lambda name: run_method(ctx, planned[name], out_dir), order, processes,
                         torch.get_num_threads())  # fmt: skip
    found = dict(zip(order, results, strict=True))
    return {name: found[name] for name in planned}
