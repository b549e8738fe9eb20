"""`make bench` end to end in --quick mode on synthetic data: every script runs and writes the JSON
fields that docs/benchmarks.md is rendered from; the committed document matches the committed JSON."""

from __future__ import annotations

import ast
import graphlib
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT
from torch import nn

from convlens import stage as convlens_stage

sys.path.insert(0, str(ROOT / "benchmarks"))
import border_share  # noqa: E402
import ig_steps  # noqa: E402
import stage_passes  # noqa: E402
import summarize  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)

#: The fields of each benchmark's latest run that the docs and the issue's goals rely on.
EXPECTED = {
    "throughput": ("speedup", "goal_met", "convlens", "plain", "ceiling", "train_gflop_per_image",
                   "convlens_fraction_of_ceiling"),
    "lightning_overhead": ("lightning", "hand", "overhead", "goal_met"),
    "profile_step": ("regions", "outside_model_share", "top_ops", "step_seconds"),
    "precision_layout": ("variants",),
    "conv_weight_grad": ("convolutions", "training_step"),
    "imputation_chunks": ("variants",),
    "border_share": ("runs", "goal", "goal_met"),
    "ig_steps": ("runs", "goal", "enough"),
    "lime_benchmark": ("variants", "lime_share_of_our_total", "speedup_end_to_end", "goal", "goal_met"),
    "evaluation_speed": ("metrics", "speedup_total", "stage", "goal", "goal_met"),
    "time_to_accuracy": ("experiments",),
}  # fmt: skip
COMMON = ("date", "command", "quick", "environment", "load", "config")


@pytest.fixture(scope="module")
def quick_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bench")
    command = [sys.executable, "benchmarks/run_all.py", "--quick", "--data-dir", str(folder / "no-data"),
               "--out", str(folder / "results"), "--device", "cpu"]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert "synthetic" in result.stdout, "absent data is replaced by synthetic data, and the output says so"
    return folder / "results"


def test_quick_run_writes_every_benchmark(quick_results: Path) -> None:
    for name, fields in EXPECTED.items():
        record = json.loads((quick_results / f"{name}.json").read_text())
        assert record["benchmark"] == name and len(record["runs"]) == 1
        run = record["runs"][0]
        for field in (*fields, *COMMON):
            assert field in run, f"{name}.json lacks {field}"
        assert run["quick"] is True and run["environment"]["cpu_count"] >= 1
    throughput = json.loads((quick_results / "throughput.json").read_text())["runs"][0]
    assert throughput["convlens"]["images_per_s_median"] > 0 and throughput["plain"]["images_per_s_median"] > 0
    assert throughput["ceiling"]["gflops_median"] > 0 and 0 < throughput["convlens_fraction_of_ceiling"] < 1
    assert throughput["plain"]["memory"]["peak_tree_pss_mb"] > 0
    stage = json.loads((quick_results / "evaluation_speed.json").read_text())["runs"][0]["stage"]
    assert stage["passes"]["forward"] > 0 and stage["passes"]["forward+backward"] > 0, "the tiny run's passes"
    assert stage["stage_s"]["median"] > 0 and stage["replay_s"]["median"] > 0 and len(stage["ratio"]["rounds"]) == 1
    profile = json.loads((quick_results / "profile_step.json").read_text())["runs"][0]
    assert abs(sum(region["share"] for region in profile["regions"].values()) - 1) < 1e-6
    training = json.loads((quick_results / "time_to_accuracy.json").read_text())["runs"][0]["experiments"][0]
    assert training["experiment"] == "fer2013_cnn" and training["data"].startswith("synthetic")
    assert training["epochs_trained"] == 1 and len(training["curve"]) == 1
    assert 0 <= training["curve"][0]["val_acc"] <= 1 and training["curve"][0]["train_images_per_s"] > 0


@pytest.mark.parametrize("folder", ["quick", "committed"])
def test_results_name_data_files_without_machine_paths(quick_results: Path, folder: str) -> None:
    """The data a run used is recorded relative to the project root, never as an absolute path."""
    results = quick_results if folder == "quick" else ROOT / "benchmarks" / "results"
    for path in results.glob("*.json"):
        text = path.read_text()
        assert not re.search(r'"(real|synthetic): /', text), f"{path.name} records an absolute data path"


def test_recorded_commands_hold_no_absolute_paths(quick_results: Path) -> None:
    """The quick run was given absolute --data-dir and --out paths; the record names them relative."""
    for path in quick_results.glob("*.json"):
        command = json.loads(path.read_text())["runs"][0]["command"]
        values = [token.partition("=")[2] or token for token in shlex.split(command)]
        assert "--data-dir" in values and not [value for value in values if value.startswith("/")], command


def test_quick_runs_render_into_tables(quick_results: Path) -> None:
    text = summarize.render(quick_results, include_quick=True)
    for title, _, _ in summarize.SECTIONS.values():
        section = text.split(f"### {title}", 1)[1].split("###", 1)[0]
        assert "| 1 |" in section, f"no table row for {title}"
    assert "No run recorded yet" in summarize.render(quick_results), "quick runs stay out of the document"


def test_document_matches_the_committed_results() -> None:
    """Run alone, in a fresh interpreter (as after a single script): summarize.py needs nothing else."""
    result = subprocess.run([sys.executable, "benchmarks/summarize.py", "--check"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, f"run python benchmarks/summarize.py\n{result.stdout}{result.stderr[-3000:]}"


def test_border_share_tells_maps_on_the_objects_from_maps_on_the_edge() -> None:
    """Planted maps: one equal to the masks has the objects' border share (ratio 1), and over a flat floor no
    edge excess; a flat map has the border's area share; one lit only in the corners has its mass there."""
    masks = torch.zeros(2, 20, 20)
    masks[0, 1:8, 1:8] = 1  # reaches the 2-px border
    masks[1, 6:14, 6:14] = 1  # does not
    band = border_share.border(20, 20)
    objects = border_share.border_share(masks, band)
    assert objects == pytest.approx((13 / 49) / 2)
    on_objects = border_share.method_row({"localised": masks, "absolute": masks + 0.01}, masks, objects)
    assert on_objects["ratio"] == pytest.approx(1) and on_objects["border_density"] == pytest.approx(1)
    assert on_objects["corner_density"] == pytest.approx(1)
    flat = torch.ones(2, 20, 20)
    assert border_share.border_share(flat, band) == pytest.approx(band.float().mean().item())
    lit = border_share.corners(20, 20).float().expand(2, -1, -1) * 5 + 0.01
    row = border_share.method_row({"localised": lit, "absolute": lit}, masks, objects)
    assert row["corner_density"] > 100 and row["share"] > 0.9 and row["ratio"] > 5
    assert border_share.ratio(0.1, 0.0) is None, "no objects in the border: no ratio"


def test_model_passes_are_recorded_by_kind_and_replayed_alone() -> None:
    """stage_passes: a call without grad is a forward, one with grad a forward+backward; the replay runs
    each again (a backward where it had grad) without recording itself; the stage's model is restored."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    calls, backwards = [], []
    model[1].register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    model[1].register_full_backward_hook(lambda *_: backwards.append(1))
    watch, original = stage_passes.Watch(), convlens_stage.OpenedRun.__dict__["model"]
    with watch.active():
        assert convlens_stage.OpenedRun.__dict__["model"] is not original
    assert convlens_stage.OpenedRun.__dict__["model"] is original
    watch.watch(model)
    with torch.inference_mode():
        model(torch.rand(4, 1, 4, 4))
    model(torch.rand(2, 1, 4, 4, requires_grad=True)).sum()
    assert [(p.shape, p.kind, p.input_grad) for p in watch.passes] == [
        ((4, 1, 4, 4), "forward", False), ((2, 1, 4, 4), "forward+backward", True)]  # fmt: skip
    calls.clear()
    assert stage_passes.replay(model, watch.passes, torch.device("cpu")) > 0
    assert calls == [False, True] and backwards == [1] and len(watch.passes) == 2


def test_benchmark_modules_import_without_a_cycle() -> None:
    """records only writes results and summarize only renders them; no module of benchmarks/ imports one
    that imports it back, at the top or inside a function."""
    folder = ROOT / "benchmarks"
    names = {path.stem for path in folder.glob("*.py")}
    graph = {name: _imported(folder / f"{name}.py") & names for name in names}
    try:
        list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle in benchmarks/: {' -> '.join(error.args[1])}")
    assert "summarize" not in graph["records"], "write_result only writes; run_all.py renders the document"


def _imported(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    return modules


def test_ig_completeness_error_falls_with_the_step_count(tmp_path: Path) -> None:
    """On a tiny trained run the relative completeness error at 64 steps is below that at 4."""
    run = ig_steps.stage_passes.tiny_run(tmp_path)
    few, many = ig_steps.errors(run, 8, 4), ig_steps.errors(run, 8, 64)
    assert few.shape == (8,) and many.median() < few.median()


def test_pool_routing_counts_where_the_max_pool_passes_the_gradient() -> None:
    """A window at the edge of a padded max-pool holds fewer real values, so its values are routed more often
    than those inside; a model without a max-pool has no routing to report."""
    torch.manual_seed(0)
    stem = nn.Sequential(nn.Conv2d(3, 8, 7, 2, 3), nn.ReLU(), nn.MaxPool2d(3, 2, 1))
    model = nn.Sequential(stem, nn.Flatten(), nn.Linear(8 * 9 * 9, 4)).eval()
    images, targets = torch.randn(32, 3, 33, 33), torch.arange(32) % 4
    routing = border_share.pool_routing(model, images, targets)
    assert routing is not None and routing["pool"] == "0.2"
    assert routing["corners"] > routing["edges"] > routing["inside"] > 0
    stem[2] = nn.AvgPool2d(3, 2, 1)
    assert border_share.pool_routing(model, images, targets) is None
