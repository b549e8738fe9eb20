"""The evaluate stage against the floor of its own model passes: the real stage
(:func:`convlens.evaluate.evaluate_run`) on a copy of a trained, visualized demo run, while every call of
its model is recorded (input shape, dtype, whether grad was enabled and the input needed a gradient);
then the same passes replayed alone on the same model, on random inputs of those shapes, with a
backward where the call had one. Stage time over replay time is what the stage spends beyond its
model passes (loading, ranking, imputation, statistics, the figure). The passes are recorded on one
run in this process (``workers=1``); the timed stage runs as ``make evaluate`` does, its families
shared out among forked workers, so on a 2-core CPU it can come in under the serial replay of its passes.

How the model is watched: :class:`Watch` replaces ``convlens.stage.OpenedRun.model`` (a cached
property) in this process only, with one that registers a forward pre-hook on the root module the stage
loads. A hook, not a wrapping module, because the stage looks up layers by name (Grad-CAM, the
randomization cascade) and a wrapper would rename them; the root module's hook, not a global
``nn.Module.__call__`` patch, because only the model's own calls are passes (its submodules' are
parts of them). ``copy.deepcopy`` keeps the hook, so the cascade's randomized copies are counted too.
"""

from __future__ import annotations

import contextlib
import shutil
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from paths import ROOT
from timing import sync
from torch import nn

from convlens import stage as convlens_stage
from convlens.evaluate import evaluate_run
from convlens.evaluate.schema import register_schema

DEFAULT_RUN = ROOT / "outputs" / "demo_faces" / "latest"
MAKE_ONE = "make one with `make demo` (trains and visualizes outputs/demo_faces/latest), or pass --run"
#: --quick: a tiny run made on the spot (1 epoch on a few hundred images, two cheap methods) and the
#: evaluate settings of tests/test_evaluate.py, so the smoke test takes seconds.
TINY_TRAIN = ["data.source.train_size=256", "data.source.val_size=96", "data.source.test_size=96",
              "data.batch_size=64", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
              "trainer.enable_model_summary=false"]  # fmt: skip
TINY_VISUALIZE = ["methods=[saliency,grad_cam]", "selection.max_candidates=32", "workers=1"]
TINY_EVALUATE = ["faithfulness.shares=[0.25,0.5,0.75]", "faithfulness.road_percentages=[0.2,0.6]",
                 "randomization.images=2", "randomization.stages=[head,layer4,stem]", "robustness.images=2",
                 "robustness.samples=2"]  # fmt: skip


@dataclass(frozen=True)
class Pass:
    """One call of the model: input shape and dtype, grad mode, and whether the input needed a gradient."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    grad: bool
    input_grad: bool

    @property
    def kind(self) -> str:
        return "forward+backward" if self.grad else "forward"


class Watch:
    """While active, every model the stage loads records its calls into ``passes``; ``model`` is the
    last one loaded (the replay runs on it)."""

    def __init__(self) -> None:
        self.passes: list[Pass] = []
        self.model: nn.Module | None = None

    def watch(self, model: nn.Module) -> nn.Module:
        """Record every call of ``model`` (and of its deep copies) from now on."""
        model.register_forward_pre_hook(self._record)
        self.model = model
        return model

    def _record(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        self.passes.append(Pass(tuple(x.shape), x.dtype, torch.is_grad_enabled(), x.requires_grad))

    @contextlib.contextmanager
    def active(self) -> Iterator[Watch]:
        original = convlens_stage.OpenedRun.__dict__["model"]

        def watched(opened: convlens_stage.OpenedRun) -> nn.Module:
            return self.watch(original.func(opened))

        prop = cached_property(watched)
        prop.__set_name__(convlens_stage.OpenedRun, "model")
        convlens_stage.OpenedRun.model = prop
        try:
            yield self
        finally:
            convlens_stage.OpenedRun.model = original


def replay(model: nn.Module, passes: list[Pass], device: torch.device) -> float:
    """Seconds to run ``passes`` alone on ``model``: random inputs of each shape, forward, and where the
    call had grad a backward of the output sum (to the input when it needed a gradient, as the
    gradient methods ask for; else to the parameters). Hooks are off: they are the benchmark's."""
    hooks = dict(model._forward_pre_hooks)
    model._forward_pre_hooks.clear()
    try:
        sync(device)
        started = time.perf_counter()
        for one in passes:
            _one_pass(model, one, device)
        sync(device)
        return time.perf_counter() - started
    finally:
        model._forward_pre_hooks.update(hooks)
        model.zero_grad(set_to_none=True)


def _one_pass(model: nn.Module, one: Pass, device: torch.device) -> None:
    x = torch.randn(one.shape, dtype=one.dtype, device=device, requires_grad=one.input_grad)
    if not one.grad:
        with torch.inference_mode():
            model(x)
        return
    output = model(x)
    if one.input_grad:
        torch.autograd.grad(output.sum(), x)
    elif output.requires_grad:
        output.sum().backward()


def evaluate_config(run: Path, device: torch.device, threads: int, quick: bool) -> Any:
    """conf/evaluate/evaluate.yaml as `make evaluate RUN=...` composes it (tiny settings with --quick)."""
    register_schema()
    overrides = [f"run={run}", f"device={device.type}", f"threads={threads}", *(TINY_EVALUATE if quick else [])]
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "evaluate"), version_base="1.3"):
        return compose(config_name="evaluate", overrides=overrides)


def copy_run(source: Path, into: Path) -> Path:
    """The run copied under ``into/outputs/<experiment>/run``: the stage writes evaluation/ into its run,
    and a benchmark must not replace the user's."""
    experiment = OmegaConf.load(source / "config.yaml").experiment_name
    target = into / "outputs" / experiment / source.resolve().name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("evaluation", "tensorboard"))
    return target


def tiny_run(into: Path) -> Path:
    """--quick without --run: a 1-epoch demo_faces run, visualized with two cheap methods."""
    from convlens.config import register_configs
    from convlens.training.run import train
    from convlens.visualize import visualize_run
    from convlens.visualize.schema import register_schema as register_visualize

    run = into / "outputs" / "demo_faces" / "tiny"
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        train(compose(config_name="train", overrides=["experiment=demo_faces", *TINY_TRAIN, f"paths.output_dir={run}"]))
    register_visualize()
    with initialize_config_dir(config_dir=str(ROOT / "conf" / "visualize"), version_base="1.3"):
        visualize_run(run, compose(config_name="visualize", overrides=[f"run={run}", *TINY_VISUALIZE]))
    return run


def check_run(source: Path | None, quick: bool) -> None:
    """Refuse at once (not after the Quantus part) when there is no run to evaluate, saying how to make one."""
    if source is None and not quick and not DEFAULT_RUN.exists():
        raise SystemExit(f"no {DEFAULT_RUN.relative_to(ROOT)}; {MAKE_ONE}")
    if source is not None and not (source / "visualizations" / "manifest.json").is_file():
        raise SystemExit(f"{source}: not a visualized run directory; {MAKE_ONE}")


def measure(source: Path | None, rounds: int, device: torch.device, quick: bool) -> dict[str, Any]:
    """Stage and replay alternating over ``rounds`` (after one untimed stage run that records the passes
    and warms the kernels); medians, ranges and the per-round ratios."""
    check_run(source, quick)
    with tempfile.TemporaryDirectory(prefix="convlens-stage-passes-") as folder:
        run = tiny_run(Path(folder)) if source is None and quick else copy_run(source or DEFAULT_RUN, Path(folder))
        cfg = evaluate_config(run, device, torch.get_num_threads(), quick)
        overrides = {"evaluate_overrides": TINY_EVALUATE if quick else [], "threads": torch.get_num_threads()}
        return _rounds(run, cfg, rounds, device) | overrides


def _rounds(run: Path, cfg: Any, rounds: int, device: torch.device) -> dict[str, Any]:
    watch = Watch()
    with watch.active():  # in this process (workers=1): forked workers' calls would not be recorded here
        evaluate_run(run, OmegaConf.merge(cfg, {"workers": 1}))
    passes, model = list(watch.passes), watch.model
    assert model is not None, "the stage never loaded its model"
    stage_s, replay_s = [], []
    for index in range(rounds):
        for side in ("stage", "replay") if index % 2 == 0 else ("replay", "stage"):
            if side == "stage":
                stage_s.append(_stage_seconds(run, cfg, device))
            else:
                replay_s.append(replay(model, passes, device))
        print(f"round {index + 1}/{rounds}: stage {stage_s[-1]:.1f} s, its passes {replay_s[-1]:.1f} s", flush=True)
    ratios = [a / b for a, b in zip(stage_s, replay_s, strict=True)]
    return {"run": f"{run.parent.name}/{run.name}", "passes": _count(passes),
            "images_passed": sum(one.shape[0] for one in passes), "stage_s": _spread(stage_s),
            "replay_s": _spread(replay_s), "ratio": _spread(ratios)}  # fmt: skip


def _stage_seconds(run: Path, cfg: Any, device: torch.device) -> float:
    sync(device)
    started = time.perf_counter()
    evaluate_run(run, cfg)
    sync(device)
    return time.perf_counter() - started


def _count(passes: list[Pass]) -> dict[str, int]:
    return dict(Counter(one.kind for one in passes))


def _spread(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "rounds": [round(v, 3) for v in values]}  # fmt: skip
