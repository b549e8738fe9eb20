"""trainer.precision=auto on the CPU: the decision from measured times, the real probe, its cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from convlens.hardware import cpu_flags, cpu_model
from convlens.models import FerCNN
from convlens.training.precision import CACHE_FILE, choose, conv_shapes, cpu_precision

#: Times per image measured with the probe: this 2-core AMD EPYC (AVX2 only, bf16 emulated) on the demo's
#: FerCNN, and the issue's AVX512-BF16 EPYC (3x3 conv at 28x28x128: fp32 66, bf16 123 GFLOP/s).
AVX2_EPYC = (0.001376, 0.003576)
AVX512_BF16_EPYC = (0.1156e9 / 66e9, 0.1156e9 / 123e9)
BF16_CPU = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def small_net() -> nn.Module:
    return FerCNN(7, 1, widths=(8, 16, 32, 64), hidden=64)


def test_choice_is_the_clearly_faster_precision() -> None:
    assert choose(*AVX2_EPYC) == "32-true"
    assert choose(*AVX512_BF16_EPYC) == "bf16-mixed"
    assert choose(0.010, 0.0095) == "32-true", "bf16 within 10% of fp32 does not pay for autocast's casts"
    assert choose(0.010, 0.008) == "bf16-mixed"


def test_conv_shapes_are_the_models_own() -> None:
    net = small_net()
    shapes = conv_shapes(net, (1, 48, 48))
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert sum(shapes.values()) == len(convs), "every convolution of one forward pass, counted once per call"
    assert {s.weight for s in shapes} == {tuple(m.weight.shape) for m in convs}
    assert next(s for s in shapes if s.weight[1] == 1).input == (1, 48, 48), "the first one sees the image"
    assert net.training, "the network's mode is restored"


def test_real_probe_is_short_records_both_timings_and_is_cached(tmp_path: Path) -> None:
    record = cpu_precision(small_net(), (1, 48, 48), tmp_path)
    assert not record["cached"] and record["probe_seconds"] < 1.0
    assert record["fp32_seconds_per_image"] > 0 and record["bf16_seconds_per_image"] > 0
    assert record["choice"] == choose(record["fp32_seconds_per_image"], record["bf16_seconds_per_image"])
    assert record["cpu"] == cpu_model() and 1 <= record["convolutions_timed"] <= record["convolutions"]
    again = cpu_precision(small_net(), (1, 48, 48), tmp_path)
    assert again["cached"] and again["choice"] == record["choice"]
    assert again["fp32_seconds_per_image"] == record["fp32_seconds_per_image"]
    other = cpu_precision(small_net(), (1, 32, 32), tmp_path)
    assert not other["cached"], "another input size has other convolution shapes: measured anew"
    assert len(json.loads((tmp_path / CACHE_FILE).read_text())) == 2


@pytest.mark.parametrize(
    "content",
    [
        '{"x": 1',
        "[1, 2]",
        '{"KEY": {"choice": "bf16-mixed", "fp32_seconds_per_image": 1.0, "bf16_seconds_per_image": 9.5}}',
    ],
)
def test_a_bad_cache_is_measured_again(tmp_path: Path, content: str) -> None:
    """A broken file, a wrong shape, or an entry whose choice contradicts its own times is not believed."""
    cpu_precision(small_net(), (1, 48, 48), tmp_path)
    key = next(iter(json.loads((tmp_path / CACHE_FILE).read_text())))
    (tmp_path / CACHE_FILE).write_text(content.replace("KEY", key))
    record = cpu_precision(small_net(), (1, 48, 48), tmp_path)
    assert not record["cached"] and record["choice"] in ("32-true", "bf16-mixed")
    assert key in json.loads((tmp_path / CACHE_FILE).read_text()), "rewritten whole"


@pytest.mark.skipif(BF16_CPU, reason="this CPU has bf16 instructions (AVX512-BF16 or AMX)")
def test_auto_is_fp32_on_a_cpu_without_bf16_instructions(tmp_path: Path) -> None:
    """bf16 is emulated on AVX2-only CPUs (2-10x slower here): the probe must see it."""
    record = cpu_precision(small_net(), (1, 48, 48), tmp_path)
    assert record["choice"] == "32-true", record
