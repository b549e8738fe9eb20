"""The stage kernel (convlens.stage): a new stage is its body, every run's failure is named while the
others still run, and what the visualize stage records (the split) is what the evaluate stage reads."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import compose_config, train_tiny

from convlens import atomic, provenance
from convlens.evaluate import evaluate_run
from convlens.evaluate.schema import register_schema as register_evaluate
from convlens.rundir import MANIFEST, RunDirError, point_latest
from convlens.stage import OpenedRun, Stage, script
from convlens.untrusted import UntrustedInputError
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema as register_visualize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny(tmp_path_factory.mktemp("stage") / "outputs" / "demo_faces" / "tiny", "demo_faces")


# The worked example of docs/architecture.md, "Adding a stage": settings, a body, one Stage(...).
@dataclass
class ToySettings:
    run: str | None = None
    experiment: str | None = None
    outputs_dir: str = "outputs"
    device: str = "cpu"
    threads: int | None = 1


def predict_black(opened: OpenedRun, settings: ToySettings) -> dict:
    """What the model (loaded, adapted and on its device by the kernel) predicts for a black image."""
    logits = opened.model(opened.trained.black_image().to(opened.device))
    record = {"class": opened.trained.class_names[int(logits.argmax())], "run": opened.label}
    with opened.staged() as folder:
        atomic.write_json(folder / "black.json", record)
    return record


TOY = Stage("toy", "toy", predict_black)


def test_a_new_stage_is_its_body(tiny_run: Path) -> None:
    [record] = TOY.run(ToySettings(run=str(tiny_run)))
    assert json.loads((tiny_run / "toy" / "black.json").read_text()) == record
    assert record["class"] in json.loads((tiny_run / "class_names.json").read_text())
    assert record["run"] == "demo_faces/tiny"
    assert provenance.read(tiny_run)["stages"]["toy"] >= 0


def test_a_stage_records_the_code_it_started_with(
    tiny_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit made while a stage runs does not change the code it loaded: the stage records git's state at its
    start (a 16-minute FER2013 training was recorded at the commit made during it)."""
    copy = shutil.copytree(tiny_run, tmp_path / "demo_faces" / "copy")
    state = {"commit": "a" * 40, "dirty": False}
    monkeypatch.setattr(provenance, "git_state", lambda: dict(state))

    def committed_meanwhile(opened: OpenedRun, settings: ToySettings) -> dict:
        state["commit"] = "b" * 40
        return predict_black(opened, settings)

    Stage("toy", "toy", committed_meanwhile).run_one(copy, ToySettings(run=str(copy)))
    assert provenance.read(copy)["stage_code"]["toy"] == {"commit": "a" * 40, "dirty": False}


def test_a_failing_run_is_named_after_the_others_ran(tiny_run: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    good = outputs / "good" / "1"
    shutil.copytree(tiny_run, good)
    broken = outputs / "broken" / "1"
    broken.mkdir(parents=True)
    (broken / "config.yaml").write_text("experiment_name: broken\n")  # no checkpoint
    point_latest(good)
    point_latest(broken)
    with pytest.raises(RunDirError, match=r"1 of 2 runs failed:\nbroken/1: .*no checkpoint"):
        TOY.run(ToySettings(outputs_dir=str(outputs)))
    assert (good / "toy" / "black.json").is_file()


def test_a_damaged_provenance_is_named_before_the_stage_works(tiny_run: Path, tmp_path: Path) -> None:
    """The stage's time goes into provenance.json at the end: a damaged one must stop it before its work."""
    copy = shutil.copytree(tiny_run, tmp_path / "demo_faces" / "copy")
    shutil.rmtree(copy / "toy", ignore_errors=True)
    (copy / "provenance.json").write_text('{"stages": [')
    with pytest.raises(UntrustedInputError, match=r"provenance\.json"):
        TOY.run_one(copy, ToySettings(run=str(copy)))
    assert not (copy / "toy").exists()


def test_entry_points_are_found_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert script("visualize").is_file()
    with pytest.raises(FileNotFoundError, match="no entry point for stage 'nothing'"):
        script("nothing")


def test_maps_drawn_on_val_are_evaluated_on_val(tiny_run: Path) -> None:
    """The manifest records the split; evaluate reads the images from it (not always from test)."""
    register_visualize()
    register_evaluate()
    overrides = ["methods=[saliency,grad_cam]", "selection.split=val", "selection.max_candidates=96", "workers=1"]
    visualize_run(tiny_run, compose_config("visualize", "visualize", f"run={tiny_run}", *overrides))
    assert json.loads((tiny_run / MANIFEST).read_text())["split"] == "val"
    fast = ["images=16", "costly_images=8",
            "faithfulness.shares=[0.25,0.5,0.75]", "faithfulness.road_percentages=[0.5]", "randomization.images=2",
            "randomization.stages=[head]", "robustness.images=2", "robustness.samples=2"]  # fmt: skip
    evaluation = evaluate_run(tiny_run, compose_config("evaluate", "evaluate", f"run={tiny_run}", *fast))
    assert evaluation["masks"] is True
    assert set(evaluation["methods"]) == {"saliency", "grad_cam"}


def test_the_stages_model_is_frozen(tiny_run: Path) -> None:
    """The stages only explain the weights: a backward pass of an input gradient fills no weight's .grad."""
    opened = OpenedRun(tiny_run, None, ToySettings())
    image = opened.trained.black_image().requires_grad_()
    model = opened.model
    model(image)[0, 0].backward()
    assert image.grad is not None
    assert all(not parameter.requires_grad and parameter.grad is None for parameter in model.parameters())


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+unknown=1", r"unknown is not a config key; valid keys: run, "),
        ("+faithfulness.steps=3", r"faithfulness\.steps is not a config key"),
        ("threads=0", r"evaluate\.threads=0 must be >= 1"),
        ("workers=0", r"evaluate\.workers=0 must be >= 1"),
        ("device=tpu", r"device='tpu' is not a device torch knows"),
    ],
)
def test_the_kernel_refuses_bad_shared_settings_before_opening_a_run(
    tmp_path: Path, override: str, message: str
) -> None:
    """Checked by every stage before it opens a run (here on a folder that is no run: the check comes first)."""
    register_evaluate()
    with pytest.raises(ValueError, match=message):
        evaluate_run(tmp_path, compose_config("evaluate", "evaluate", f"run={tmp_path}", override))
