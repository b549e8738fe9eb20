"""Issue 25, point 5, the readers that parsed run-directory files themselves: the generator folder, the
sweep report, the pipeline's timing table, the evaluate stage's manifest, loading and resuming a run and
`make compare`'s reuse. Each damaged file is refused naming it and the command that writes it again (or,
where a damaged run can be passed over, warned about), never a raw traceback. No training: the run files
are written by hand, as the stages leave them."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
from conftest import CONF
from omegaconf import OmegaConf

from convlens import sweep
from convlens.compare import runs
from convlens.evaluate.inputs import read_manifest
from convlens.generator import store
from convlens.lineage import MADE_FROM
from convlens.pipeline import summary_table
from convlens.provenance import portable_path
from convlens.run_files import RunFileError, read_evaluation
from convlens.rundir import MANIFEST, load_run
from convlens.training.resume_check import check_resume
from convlens.untrusted import UntrustedInputError

TRAIN = re.escape("`make train` (a new run) writes it again")
GENERATOR_CONFIG = {"code_dim": 4, "channels": 1, "size": 8, "hidden": 4, "image_size": 8, "widths": [4, 4],
                    "code_shape": [], "code_layer": "features", "feature_layer": "pool",
                    "mean": [0.5], "std": [0.25]}  # fmt: skip


def _run(root: Path, experiment: str = "demo_faces", model: str = "fer_cnn") -> Path:
    """A finished run's config.yaml and metrics.json, with the keys their readers require."""
    root.mkdir(parents=True)
    config = {
        "experiment_name": experiment,
        "data": {"num_classes": 2},
        "model": OmegaConf.load(CONF / "model" / f"{model}.yaml"),
    }
    OmegaConf.save(OmegaConf.create(config), root / "config.yaml")
    scores = {"acc": 0.5, "loss": 1.0}
    metrics = {"model": "FerCNN", "parameters": 10, "epochs": 1, "data": {"sizes": {}}, "val": scores, "test": scores}
    (root / "metrics.json").write_text(json.dumps(metrics))
    return root


# --- <run>/generator/ ------------------------------------------------------------------------------------------


def test_a_generator_config_with_nan_is_refused_naming_it(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "generator"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(GENERATOR_CONFIG).replace("0.5", "NaN"))
    with pytest.raises(UntrustedInputError, match=r"config.json holds the non-finite number NaN") as refused:
        store.load_prior(tmp_path / "run")
    assert f"`make generate RUN={portable_path(tmp_path / 'run')}` writes it again" in str(refused.value)


@pytest.mark.parametrize("content", ['{"reconstruction": [1.0, Infinity]}', '{"reconstruction": [1.0,'])
def test_a_damaged_generator_json_is_refused_naming_it(tmp_path: Path, content: str) -> None:
    path = tmp_path / "run" / "generator" / "losses.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    with pytest.raises(UntrustedInputError, match=rf"{re.escape(str(path))} .*`make generate RUN=.*run` writes it"):
        store.read_json(path)


# --- the sweep report ------------------------------------------------------------------------------------------


def test_a_sweep_with_a_damaged_run_reports_the_others_and_exits_non_zero(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweeps" / "demo_faces" / "2026-01-01_00-00-00"
    _run(sweep_dir / "demo_faces" / "good")
    bad = _run(sweep_dir / "demo_faces" / "bad")
    (bad / "config.yaml").write_text("[1, 2]")
    with pytest.raises(SystemExit, match=r"without 1 of 2 runs") as exited:
        sweep.main(["demo_faces", "--report", str(sweep_dir), "--reports-dir", str(tmp_path / "reports")])
    assert re.search(rf"bad/config.yaml is not what its stage writes .*; {TRAIN}", str(exited.value.code))
    report = (tmp_path / "reports" / "sweep" / "demo_faces" / sweep_dir.name / "report.md").read_text()
    assert "2 runs, 1 finished" in report and "| optimizer" not in report and "damaged: " in report


# --- the pipeline's timing table -------------------------------------------------------------------------------


def test_the_timing_table_names_a_damaged_file_instead_of_printing_nan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _run(tmp_path / "demo_faces" / "run")
    (run / "metrics.json").write_text((run / "metrics.json").read_text().replace("0.5", "NaN"))
    (run / "provenance.json").write_text('{"hardware": {"cpu": "x"')
    table = summary_table({("demo_faces", "train"): 1.0}, {"demo_faces": run})
    assert "nan" not in table.lower() and "| `demo_faces` | - |" in table and "unrecorded CPU" in table
    warned = capsys.readouterr().err
    for name in ("metrics.json holds the non-finite number NaN", "provenance.json is not valid JSON"):
        assert re.search(rf"{re.escape(str(run))}/{name}.*; {TRAIN}", warned), warned


# --- the evaluate stage's manifest, lineage records ------------------------------------------------------------


def test_a_truncated_manifest_is_refused_by_the_evaluate_stage_naming_it(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text('{"methods": {')
    with pytest.raises(UntrustedInputError, match=rf"{MANIFEST} is not valid JSON.*`make visualize RUN={tmp_path}`"):
        read_manifest(tmp_path)


def test_a_lineage_record_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    (tmp_path / "evaluation").mkdir()
    record = {"methods": {}, "settings": {}, "baselines": {}, "images": [], MADE_FROM: ["config.yaml"]}
    (tmp_path / "evaluation" / "evaluation.json").write_text(json.dumps(record))
    with pytest.raises(RunFileError, match=rf"'{MADE_FROM}' must map run files.*`make evaluate RUN={tmp_path}`"):
        read_evaluation(tmp_path)


# --- loading and resuming a run --------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["data: [1,", "- a list", "data: {num_classes: two}"])
def test_a_damaged_config_is_refused_when_a_run_is_loaded_or_resumed(tmp_path: Path, content: str) -> None:
    (tmp_path / "config.yaml").write_text(content)
    expected = rf"{re.escape(str(tmp_path / 'config.yaml'))} is not what its stage writes .*; {TRAIN}"
    with pytest.raises(RunFileError, match=expected):
        load_run(tmp_path)
    resume = OmegaConf.create({"ckpt_path": str(tmp_path / "checkpoints" / "last.ckpt"), "paths": {"output_dir": None}})
    with pytest.raises(RunFileError, match=expected):
        check_resume(resume)


# --- `make compare ... reuse=true` -----------------------------------------------------------------------------


def test_compare_passes_over_a_damaged_run_to_reuse_an_older_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    older = _run(tmp_path / "2026-01-01_00-00-00")
    newer = _run(tmp_path / "2026-01-02_00-00-00")
    (newer / "config.yaml").write_text("experiment_name: [")
    with caplog.at_level(logging.WARNING):
        assert runs.newest_run(tmp_path, "demo_faces", "fer_cnn") == older
    assert re.search(rf"not reusing {re.escape(str(newer))}: .*config.yaml .*; {TRAIN}", caplog.text), caplog.text


@pytest.mark.parametrize("content", ['{"made_from": {', '{"made_from": ["config.yaml"]}', "[]"])
def test_compare_makes_a_damaged_artefact_again(tmp_path: Path, content: str) -> None:
    (tmp_path / MANIFEST).parent.mkdir(parents=True)
    (tmp_path / MANIFEST).write_text(content)
    assert runs.stale(tmp_path, Path(MANIFEST))
