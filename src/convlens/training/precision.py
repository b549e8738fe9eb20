"""``trainer.precision=auto`` on the CPU: fp32 or bf16 mixed precision, chosen by timing the model's own
convolutions in both, because CPU flags do not tell which is faster (AVX512-BF16 without AMX runs bf16
about twice as fast as fp32; AVX2-only CPUs emulate it, 10-15x slower).

The probe times each distinct convolution of one forward pass (shapes from hooks on a dummy input),
largest first, within a time budget, and caches its result per CPU model, thread count, torch version
and convolution shapes in the user's cache folder (written atomically, read as untrusted input).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import platformdirs
import torch
import torch.nn.functional as F
from torch import nn

from convlens import atomic
from convlens.hardware import cpu_model

log = logging.getLogger(__name__)

#: Wall time the probe may spend; it stops after the convolution that crosses it.
PROBE_BUDGET_S = 0.5
#: Work per timed convolution call: small batches run below either precision's speed (dispatch,
#: thread wake-up), which hides the difference; this is a training-like batch that still fits the budget.
TARGET_FLOPS = 2e8
#: One precision this many times faster than the other ends the probe early.
DECISIVE = 1.5
#: bf16 must beat fp32 by this factor: autocast adds casts and leaves other operations in fp32.
BF16_MARGIN = 1.1
CACHE_FILE = "precision_probe.json"
#: Cache entries kept (oldest dropped) and the largest cache file read; a bigger one is ignored.
CACHE_ENTRIES = 64
CACHE_MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class ConvShape:
    """One convolution as called in a forward pass with one image: input (C, H, W), weight, settings,
    and the output's (H, W)."""

    input: tuple[int, ...]
    weight: tuple[int, ...]
    stride: tuple[int, ...]
    padding: Any
    dilation: tuple[int, ...]
    groups: int
    output_hw: tuple[int, ...]

    @property
    def flops(self) -> float:
        """Multiply-adds x 2 of one image."""
        out_c, in_per_group, *kernel = self.weight
        return 2.0 * out_c * in_per_group * kernel[0] * kernel[1] * self.output_hw[0] * self.output_hw[1]

    @property
    def settings(self) -> tuple[Any, ...]:
        return self.stride, self.padding, self.dilation, self.groups


def conv_shapes(net: nn.Module, input_chw: tuple[int, int, int]) -> Counter[ConvShape]:
    """Every ``nn.Conv2d`` call of one forward pass of ``net`` on a zero image, counted by shape."""
    shapes: Counter[ConvShape] = Counter()

    def record(module: nn.Conv2d, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        padding = module.padding if isinstance(module.padding, str) else tuple(module.padding)
        settings = (tuple(module.stride), padding, tuple(module.dilation), module.groups)
        shape = ConvShape(tuple(inputs[0].shape[1:]), tuple(module.weight.shape), *settings, tuple(output.shape[-2:]))
        shapes[shape] += 1

    handles = [m.register_forward_hook(record) for m in net.modules() if isinstance(m, nn.Conv2d)]
    was_training = net.training
    try:
        net.eval()  # BatchNorm in training mode refuses a batch of one 1x1 map
        with torch.no_grad():
            net(torch.zeros(1, *input_chw))
    finally:
        net.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


def choose(fp32_seconds: float, bf16_seconds: float) -> str:
    """The Lightning precision for the measured times: bf16-mixed only when clearly faster."""
    return "bf16-mixed" if bf16_seconds * BF16_MARGIN < fp32_seconds else "32-true"


def _time_shape(shape: ConvShape) -> tuple[float, float]:
    """Seconds per image of ``shape`` in fp32 and in bf16 (channels-last, as training runs): two calls
    each, interleaved, the faster kept (the first builds oneDNN's kernels)."""
    batch = max(1, min(256, round(TARGET_FLOPS / max(shape.flops, 1.0))))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, *shape.input, generator=generator).contiguous(memory_format=torch.channels_last)
    w = torch.randn(shape.weight, generator=generator).contiguous(memory_format=torch.channels_last)
    inputs = {dtype: (x.to(dtype), w.to(dtype)) for dtype in (torch.float32, torch.bfloat16)}
    best = dict.fromkeys(inputs, float("inf"))
    with torch.no_grad():
        for _ in range(2):
            for dtype, (xd, wd) in inputs.items():
                start = time.perf_counter()
                F.conv2d(xd, wd, None, *shape.settings)
                best[dtype] = min(best[dtype], time.perf_counter() - start)
    return best[torch.float32] / batch, best[torch.bfloat16] / batch


def _decided(fp32: float, bf16: float) -> bool:
    return max(fp32, bf16) > DECISIVE * min(fp32, bf16)


def probe(shapes: Counter[ConvShape], budget_s: float = PROBE_BUDGET_S) -> dict[str, Any]:
    """Time the convolutions, those with the most work first, until one precision is clearly faster
    or the budget is spent; the sums are seconds per image over the convolutions timed. The clock starts
    after one tiny convolution in each precision: loading oneDNN (~0.5 s, once per process) is paid by
    training anyway and is not the probe's."""
    tiny = torch.ones(1, 1, 3, 3)
    for dtype in (torch.float32, torch.bfloat16):
        F.conv2d(tiny.to(dtype), tiny.to(dtype))
    started = time.perf_counter()
    fp32 = bf16 = 0.0
    measured = 0
    for shape, count in sorted(shapes.items(), key=lambda item: -item[0].flops * item[1]):
        t32, t16 = _time_shape(shape)
        fp32, bf16, measured = fp32 + count * t32, bf16 + count * t16, measured + 1
        if _decided(fp32, bf16) or time.perf_counter() - started > budget_s:
            break
    total_flops = sum(shape.flops * count for shape, count in shapes.items())
    return {
        "fp32_seconds_per_image": fp32,
        "bf16_seconds_per_image": bf16,
        "bf16_speedup": round(fp32 / bf16, 3),
        "choice": choose(fp32, bf16),
        "convolutions_timed": measured,
        "convolutions": len(shapes),
        "gflops_per_image": round(total_flops / 1e9, 4),
        "probe_seconds": round(time.perf_counter() - started, 4),
        "cpu": cpu_model(),
        "threads": torch.get_num_threads(),
    }


def cache_dir() -> Path:
    """The user's cache folder for convlens (``~/.cache/convlens`` on Linux)."""
    return Path(platformdirs.user_cache_dir("convlens"))


def cache_key(shapes: Counter[ConvShape]) -> str:
    """What the result depends on: the CPU model, the thread count, torch, the convolutions."""
    described = sorted((json.dumps(asdict(shape)), count) for shape, count in shapes.items())
    key = [cpu_model(), torch.get_num_threads(), torch.__version__, described]
    return hashlib.sha256(json.dumps(key).encode()).hexdigest()[:20]


def _read_cache(path: Path) -> dict[str, Any]:
    """The cache's entries, or none when the file is absent, too large or not what this module writes."""
    try:
        if path.stat().st_size > CACHE_MAX_BYTES:
            return {}
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _valid(entry: Any) -> bool:
    if not isinstance(entry, dict) or entry.get("choice") not in ("32-true", "bf16-mixed"):
        return False
    times = [entry.get(key) for key in ("fp32_seconds_per_image", "bf16_seconds_per_image")]
    return all(isinstance(t, float) and t > 0 for t in times) and choose(*times) == entry["choice"]


def cpu_precision(net: nn.Module, input_chw: tuple[int, int, int], cache: Path | None = None) -> dict[str, Any]:
    """The probe's record for ``net`` on this CPU (``choice``: the precision), from the cache when it holds one."""
    shapes = conv_shapes(net, input_chw)
    if not shapes:
        return {"choice": "32-true", "reason": "the model has no 2-d convolution to time", "cached": False}
    path = (cache or cache_dir()) / CACHE_FILE
    key = cache_key(shapes)
    entries = _read_cache(path)
    if _valid(entries.get(key)):
        return entries[key] | {"cached": True}
    record = probe(shapes)
    kept = {k: v for k, v in entries.items() if k != key and _valid(v)}
    kept = dict(list(kept.items())[-(CACHE_ENTRIES - 1) :]) | {key: record}
    try:
        atomic.write_json(path, kept)
    except OSError as error:  # e.g. a read-only home: the choice stands, it is measured again next time
        log.warning("precision probe not cached in %s: %s", path, error)
    return record | {"cached": False}
