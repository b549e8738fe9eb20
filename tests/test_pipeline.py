"""`make demo`'s runner: each stage its own process running its script as ``__main__`` (forked after
``preload``, else a fresh interpreter); a failure stops it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from convlens import pipeline, stage
from convlens.pipeline import run_stage, summary_table

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
    lines = summary_table(times, start_seconds=5.0, outputs=tmp_path).splitlines()
    assert lines[0] == "on an unrecorded CPU, wall clock of each stage's process, the imports they share counted once:"
    assert lines[-2].startswith("| start (imports, once) |") and lines[-2].endswith("| 5 |")
    assert lines[-1].startswith("| all |") and lines[-1].endswith("| 17 |")
    assert "| `demo_faces` | - | 10 | - | - | 2 | 12 |" in lines
