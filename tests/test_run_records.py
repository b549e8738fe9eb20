"""Reliability, round two (docs/reliability.md): a run directory records once and truthfully (a resume is
the same training or refused), training is finite or failed, and staleness is lineage (sha256), not mtime."""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import pytest
import torch
from conftest import TINY, compose_config, train_tiny

from convlens import atomic, provenance
from convlens.compare.runs import stale
from convlens.evaluate import evaluate_run
from convlens.evaluate.schema import register_schema as register_evaluate_schema
from convlens.lineage import MADE_FROM
from convlens.report.build import build_report
from convlens.report.run_data import read_run
from convlens.rundir import EVALUATION_JSON, MANIFEST, load_run
from convlens.training.finite import DivergedError
from convlens.training.module import ClassifierModule
from convlens.training.resume_check import ResumeError
from convlens.training.run import train
from convlens.untrusted import UntrustedInputError, load_checkpoint, read_json
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema as register_visualize_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: What a resume must leave as it was when it is refused or fails.
RECORD = ("config.yaml", "provenance.json", "class_names.json", "metrics.json")
#: One cheap method for the lineage tests, and the evaluation's cheapest settings.
VISUALIZE = ["methods=[saliency]", "selection.max_candidates=96", "workers=1"]
EVALUATE = ["images=16", "costly_images=8",
            "faithfulness.shares=[0.25,0.5,0.75]", "faithfulness.road_percentages=[0.2,0.6]", "randomization.images=2",
            "randomization.stages=[head,stem]", "robustness.images=2", "robustness.samples=2"]  # fmt: skip


def _finished(tmp_path: Path, *overrides: str) -> Path:
    """A finished 1-epoch demo_faces run (one-cycle schedule unless overridden) under tmp_path/outputs."""
    return train_tiny(tmp_path / "outputs" / "demo_faces" / "run", "demo_faces", *overrides)


def _resume(run: Path, *overrides: str):
    """The config of a resume of ``run`` from its last checkpoint, as `make train ARGS=...` composes it."""
    ckpt = run / "checkpoints" / "last.ckpt"
    return compose_config(".", "train", "experiment=demo_faces", *TINY, f"ckpt_path={ckpt}", *overrides)


def _record(run: Path) -> dict[str, bytes]:
    return {name: (run / name).read_bytes() for name in RECORD}


# --- 1. Record once, truthfully ----------------------------------------------------------------------------------


def test_a_resume_that_changes_the_training_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    """The issue's case: a finished 1-epoch run resumed with another lr, batch size and seed."""
    run = _finished(tmp_path)
    before = _record(run)
    log = (run / "train.log").read_bytes()
    with pytest.raises(ResumeError) as refused:
        train(_resume(run, "trainer.max_epochs=2", "optimizer.lr=0.1", "data.batch_size=32", "seed=7"))
    message = str(refused.value)
    for line in ("data.batch_size: recorded 64, now 32", "optimizer.lr: recorded 0.003, now 0.1",
                 "seed: recorded 42, now 7", "Drop these overrides", "Nothing was written"):  # fmt: skip
        assert line in message
    assert "4 setting(s) differ" in message, "data.seed follows seed; trainer.max_epochs may change"
    assert _record(run) == before and (run / "train.log").read_bytes() == log


def test_a_longer_one_cycle_resume_is_refused_instead_of_crashing(tmp_path: Path) -> None:
    """OneCycleLR's total steps are fixed at the start: before, the resume crashed ("Tried to step")
    after it had rewritten config.yaml and provenance.json."""
    run = _finished(tmp_path)
    before = _record(run)
    with pytest.raises(ResumeError, match=r"trainer.max_epochs cannot change .*OneCycleLR.*spans the whole run"):
        train(_resume(run, "trainer.max_epochs=2"))
    assert _record(run) == before


def test_a_longer_resume_trains_on_and_is_recorded_as_a_resume_event(tmp_path: Path) -> None:
    run = _finished(tmp_path, "scheduler=step")
    config, started = (run / "config.yaml").read_bytes(), provenance.read(run)
    metrics = train(_resume(run, "scheduler=step", "trainer.max_epochs=2"))
    assert metrics["epochs"] == 2
    assert (run / "config.yaml").read_bytes() == config, "config.yaml keeps the values the run started with"
    now = provenance.read(run)
    (event,) = now.pop("resumes")
    assert event["changed"] == {"trainer.max_epochs": {"recorded": 1, "now": 2}}
    assert event["time"] and event["ckpt_path"].endswith("checkpoints/last.ckpt")
    history = now.pop("stage_history")
    assert history[:-1] == started["stage_history"] and history[-1]["stage"] == "train", "the resume is appended"
    assert {key: value for key, value in now.items() if key != "stages"} == {
        key: value for key, value in started.items() if key not in ("stages", "stage_history")
    }, "the record written at the start stays as it was"


def test_a_failed_resume_leaves_the_record_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _finished(tmp_path, "scheduler=step")
    before = _record(run)

    def fails(self, batch, batch_idx):
        raise RuntimeError("failed during the resumed epoch")

    monkeypatch.setattr(ClassifierModule, "training_step", fails)
    with pytest.raises(RuntimeError, match="failed during the resumed epoch"):
        train(_resume(run, "scheduler=step", "trainer.max_epochs=2"))
    assert _record(run) == before


# --- 2. Finite or failed -----------------------------------------------------------------------------------------


def test_diverged_training_fails_and_latest_stays(tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    base = ["experiment=demo_faces", *TINY, f"paths.outputs_dir={outputs}"]
    train(compose_config(".", "train", *base))
    latest = outputs / "demo_faces" / "latest"
    finished = latest.readlink()
    with pytest.raises(DivergedError, match=r"training diverged: .*lower optimizer.lr \(now 1e\+09"):
        train(compose_config(".", "train", *base, "optimizer.lr=1e9"))
    assert latest.readlink() == finished
    (diverged,) = [path for path in latest.parent.iterdir() if path.name not in ("latest", finished.name)]
    assert not (diverged / "metrics.json").exists()


def test_a_checkpoint_with_non_finite_weights_is_refused_naming_it(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    best = run / "checkpoints" / "best.ckpt"
    checkpoint = load_checkpoint(best)
    weight = next(key for key, value in checkpoint["state_dict"].items() if value.is_floating_point())
    checkpoint["state_dict"][weight] = torch.full_like(checkpoint["state_dict"][weight], math.nan)
    torch.save(checkpoint, best)
    with pytest.raises(UntrustedInputError, match=rf"checkpoint .*best.ckpt holds non-finite weights .*{weight}"):
        load_run(run)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_is_written_strictly(tmp_path: Path, value: float) -> None:
    path = tmp_path / "x.json"
    with pytest.raises(ValueError, match=r"x.json: not written, it would hold a non-finite number"):
        atomic.write_json(path, {"x": value})
    assert not path.exists()


def test_a_json_file_with_nan_is_refused_naming_it(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    (run / "metrics.json").write_text('{"x": NaN}')
    with pytest.raises(UntrustedInputError, match=r"metrics.json holds the non-finite number NaN"):
        read_run(run)
    (run / "provenance.json").write_text('{"stages": {"train": Infinity}}')
    with pytest.raises(UntrustedInputError, match=r"provenance.json holds the non-finite number Infinity"):
        read_json(run / "provenance.json")


# --- 4. Lineage instead of modification times --------------------------------------------------------------------


def _visualize(run: Path, *overrides: str) -> dict:
    register_visualize_schema()
    return visualize_run(run, compose_config("visualize", "visualize", f"run={run}", *VISUALIZE, *overrides))


def _evaluate(run: Path) -> dict:
    register_evaluate_schema()
    return evaluate_run(run, compose_config("evaluate", "evaluate", f"run={run}", *EVALUATE))


#: A model, rate and training set whose second tiny epoch improves clearly on the first (val acc 0.15 -> 0.30
#: when written; on 256 images both epochs sat near chance and the best could stay put), so the resume
#: writes a new best.ckpt.
LEARNS_ON = ("scheduler=step", "model.widths=[16,32,64,128]", "model.hidden=128", "optimizer.lr=0.001",
             "data.source.train_size=1024")  # fmt: skip


def test_a_resume_that_changes_the_best_checkpoint_makes_the_maps_stale(tmp_path: Path) -> None:
    run = _finished(tmp_path, *LEARNS_ON)
    manifest = _visualize(run)
    assert set(manifest[MADE_FROM]) == {"checkpoints/best.ckpt", "config.yaml", "confusion_matrix.csv"}
    assert not read_run(run).maps_stale
    best = (run / "checkpoints" / "best.ckpt").read_bytes()
    train(_resume(run, *LEARNS_ON, "trainer.max_epochs=2"))
    assert (run / "checkpoints" / "best.ckpt").read_bytes() != best, "the resumed epoch gave a new best checkpoint"
    assert read_run(run).maps_stale == ["checkpoints/best.ckpt", "confusion_matrix.csv"], "both rewritten by training"
    report = (build_report(run, tmp_path / "reports") / "report.md").read_text()
    assert "> **Stale:** the maps were drawn from an earlier `checkpoints/best.ckpt`" in report
    assert stale(run, MANIFEST)


def test_evaluation_staleness_follows_hashes_not_times(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    _visualize(run)
    evaluation = _evaluate(run)
    assert "visualizations/manifest.json#method-settings" in evaluation[MADE_FROM], "the part of it read, not the file"
    assert not [name for name in evaluation[MADE_FROM] if name.endswith(".npz")], "the maps are computed afresh"
    assert not read_run(run).evaluation_stale and not stale(run, EVALUATION_JSON)
    copy = tmp_path / "copied" / "demo_faces" / "run"
    shutil.copytree(run, copy)  # new modification times, same content: nothing is stale
    evaluated = (run / EVALUATION_JSON).stat().st_mtime
    os.utime(copy / MANIFEST, (evaluated + 60, evaluated + 60))
    assert not read_run(copy).evaluation_stale and not read_run(copy).maps_stale and not stale(copy, EVALUATION_JSON)
    before = (run / MANIFEST).read_bytes()
    _visualize(run)  # figures drawn again with the same settings: another manifest (its timings), the same maps
    assert (run / MANIFEST).read_bytes() != before and not read_run(run).evaluation_stale
    _visualize(run, "methods=[saliency,guided_backprop]")  # another method's maps after it: stale, though older
    os.utime(run / EVALUATION_JSON, (evaluated + 3600, evaluated + 3600))
    assert read_run(run).evaluation_stale == ["visualizations/manifest.json#method-settings"]
    assert stale(run, EVALUATION_JSON)
    report = (build_report(run, tmp_path / "reports") / "report.md").read_text()
    assert "> **Stale:** the methods' settings in `visualizations/manifest.json` changed since the evaluation" in report
    assert f"| `metrics.json` | `{provenance.sha256(run / 'metrics.json')}` |" in report, "the report's own lineage"
    _evaluate(run)
    assert not read_run(run).evaluation_stale


def test_a_made_from_record_may_not_point_outside_the_run(tmp_path: Path) -> None:
    run = _finished(tmp_path)
    (run / "visualizations").mkdir()
    (run / MANIFEST).write_text(json.dumps({"methods": {}, MADE_FROM: {"../../../etc/passwd": "0" * 64}}))
    with pytest.raises(UntrustedInputError, match=r"points outside"):
        assert read_run(run).maps_stale
