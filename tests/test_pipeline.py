"""`make demo`'s runner: each stage its own process running its script as ``__main__`` (forked after
``preload``, else a fresh interpreter); a failure stops it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convlens import pipeline, stage
from convlens.pipeline import planned_run, run_pipeline, run_stage, summary_table

SCRIPTS = {
    # writes what it was called with, as `python scripts/ok.py experiment=...` would see it
    "ok": "import json, sys\nif __name__ == '__main__':\n    open('argv.json', 'w').write(json.dumps(sys.argv))\n",
    "exits": "import sys\nsys.exit('the stage names its error')\n",
    "raises": "raise RuntimeError('an uncaught error')\n",
}


@pytest.fixture(params=[True, False], ids=["forked", "fresh interpreter"])
def scripts(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The scripts above in ``tmp_path/scripts``, run forked (as after ``preload``; they run no tensor
    operation, so forking from pytest is safe) or each in a fresh interpreter."""
    monkeypatch.setattr(pipeline, "_preloaded", request.param)
    monkeypatch.setattr(stage, "SCRIPTS", tmp_path / "scripts")
    (tmp_path / "scripts").mkdir()
    for name, source in SCRIPTS.items():
        (tmp_path / "scripts" / f"{name}.py").write_text(source)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_stage_runs_its_script_as_main_with_the_experiment(scripts: Path) -> None:
    seconds = run_stage("ok", "demo_faces", ["trainer.max_epochs=1"])
    assert seconds > 0
    assert json.loads((scripts / "argv.json").read_text()) == [
        str(scripts / "scripts" / "ok.py"),
        "experiment=demo_faces",
        "trainer.max_epochs=1",
    ]


@pytest.mark.parametrize(("stage", "message"), [("exits", "the stage names its error"), ("raises", "RuntimeError")])
def test_a_failing_stage_stops_the_pipeline_with_its_message(
    scripts: Path, stage: str, message: str, capfd: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit, match=rf"\[demo_faces\] {stage} failed \(exit 1\)"):
        run_stage(stage, "demo_faces", [])
    assert message in capfd.readouterr().err


def test_summary_table_counts_the_one_time_start_in_the_total(tmp_path: Path) -> None:
    times = {("demo_faces", "train"): 10.0, ("demo_faces", "report"): 2.0}
    lines = summary_table(times, {"demo_faces": tmp_path / "no_run"}, start_seconds=5.0).splitlines()
    assert lines[0] == "on an unrecorded CPU, wall clock of each stage's process, the imports they share counted once:"
    assert lines[-2].startswith("| start (imports, once) |") and lines[-2].endswith("| 5 |")
    assert lines[-1].startswith("| all |") and lines[-1].endswith("| 17 |")
    assert "| `demo_faces` | - | 10 | - | - | 2 | 12 |" in lines


def test_the_stages_after_training_are_given_the_run_it_wrote(scripts: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``paths.latest=false`` (or another ``experiment_name`` or ``paths.outputs_dir``) ``<experiment>/latest``
    names the user's previous run: visualize and evaluate ran on it and replaced its maps and evaluation."""
    for name in pipeline.PIPELINE_STAGES:  # each stage script appends the arguments it was called with
        (scripts / "scripts" / f"{name}.py").write_text(
            "import json, sys\nif __name__ == '__main__':\n"
            "    open('calls.jsonl', 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        )
    times, runs = run_pipeline(["demo_faces"], ["paths.latest=false", f"paths.outputs_dir={scripts / 'elsewhere'}"])
    run = runs["demo_faces"]
    assert run.parent == scripts / "elsewhere" / "demo_faces" and not run.exists(), "named, left to train to create"
    calls = [json.loads(line) for line in (scripts / "calls.jsonl").read_text().splitlines()]
    assert calls[0] == ["experiment=demo_faces", "paths.latest=false", f"paths.outputs_dir={scripts / 'elsewhere'}",
                        f"paths.output_dir={run}"]  # fmt: skip
    assert calls[1:] == [["experiment=demo_faces", f"run={run}"]] * 3
    assert set(times) == {("demo_faces", stage) for stage in pipeline.PIPELINE_STAGES}


def test_the_planned_run_follows_the_overrides_that_name_it(tmp_path: Path) -> None:
    """A new ``<outputs_dir>/<experiment_name>/<time>``; a given ``paths.output_dir`` as it is; a resumed run's own
    directory (no ``paths.output_dir`` added: that would make it a new run); a config error stops with Hydra's
    message."""
    run, overrides = planned_run("demo_faces", [f"paths.outputs_dir={tmp_path}", "experiment_name=smoke"])
    assert run.parent == tmp_path / "smoke" and overrides[-1] == f"paths.output_dir={run}"
    assert planned_run("demo_faces", [f"paths.output_dir={tmp_path / 'mine'}"]) == (
        tmp_path / "mine",
        [f"paths.output_dir={tmp_path / 'mine'}"],
    )
    resumed = tmp_path / "old_run"
    (resumed / "checkpoints").mkdir(parents=True)
    (resumed / "config.yaml").write_text("{}")
    given = [f"ckpt_path={resumed / 'checkpoints' / 'last.ckpt'}"]
    assert planned_run("demo_faces", given) == (resumed, given)
    with pytest.raises(SystemExit, match=r"\[demo_faces\] train: .*trainer\.max_epoch"):
        planned_run("demo_faces", ["trainer.max_epoch=1"])
