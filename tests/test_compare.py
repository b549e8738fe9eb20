"""`make compare` on two tiny architectures: one report with a row per model, the side-by-side figures,
the trust scores, the feature figures; reuse of finished runs; refused names; the stage processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import CONF, ROOT, TINY
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from convlens.compare import CompareError, compare, features, runs
from convlens.compare.schema import CompareConfig, check_names
from convlens.compare.schema import register_schema as register_compare
from convlens.config import validate
from convlens.evaluate import evaluate
from convlens.evaluate.schema import family_settings
from convlens.evaluate.schema import register_schema as register_evaluate
from convlens.explain.selection import select_examples
from convlens.registry import method_settings as settings_of
from convlens.report.render import to_html
from convlens.training.run import train
from convlens.visualize import visualize
from convlens.visualize.schema import register_schema as register_visualize

#: Two tiny trainings, visualizations and evaluations (~2 min on 2 cores): under `make test-slow`.
pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.slow]

MODELS = ["alexnet", "resnet18"]
#: Two epochs of the tiny data: enough for some correct images, seconds per model.
TRAIN = [*TINY, "trainer.max_epochs=2"]
METHODS = ["saliency", "grad_cam", "feature_inversion", "activation_maximization"]
VISUALIZE = ["params.feature_inversion.steps=4", "params.activation_maximization.steps=4", "workers=1"]
EVALUATE = ["images=16", "costly_images=8",
            "faithfulness.shares=[0.25,0.5,0.75]", "faithfulness.road_percentages=[0.2,0.6]", "randomization.images=2",
            "randomization.stages=[head,layer4,stem]", "robustness.images=2", "robustness.samples=2"]  # fmt: skip
ENTRY = {"train": (".", "train", train), "visualize": ("visualize", "visualize", visualize),
         "evaluate": ("evaluate", "evaluate", evaluate)}  # fmt: skip


def in_process(run: runs.ModelRun, name: str, arguments: list[str]) -> float:
    """The stage with the arguments `make compare` passes its process, run in this process (saves a
    process start per stage; :func:`test_a_failing_stage_process_names_the_model` runs a real one)."""
    folder, config, function = ENTRY[name]
    register_visualize()
    register_evaluate()
    with initialize_config_dir(config_dir=str(CONF / folder), version_base="1.3"):
        function(compose(config_name=config, overrides=arguments))
    return 1.0


def settings(tmp: Path, **changes: object) -> CompareConfig:
    values = {"models": MODELS, "methods": METHODS, "images": 2, "train": TRAIN, "visualize": VISUALIZE,
              "evaluate": EVALUATE, "outputs_dir": str(tmp / "outputs"),
              "reports_dir": str(tmp / "reports")}  # fmt: skip
    return CompareConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[CompareConfig, Path]:
    tmp = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runs, "stage", in_process)
        cfg = settings(tmp)
        return cfg, compare(cfg)


def test_the_report_has_a_row_per_model(compared: tuple[CompareConfig, Path]) -> None:
    cfg, folder = compared
    assert folder.parent == (Path(cfg.reports_dir) / "compare" / "demo_shapes").resolve()
    text = (folder / "report.md").read_text()
    table = text.split("## 1. Architectures")[1].split("## 2.")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [row.split("|")[1].strip() for row in rows] == ["`alexnet`", "`resnet18`"]
    for row in rows:  # accuracy (flagged under trained_accuracy), parameters, FLOPs, epochs and times are numbers
        found = re.search(r"\| (\d+\.\d)%( \*\*under-trained\*\*)? \| [\d,]+ \| [\d,.]+ M \| 2 \| \d+\.\d s \|", row)
        assert found and (found[2] is not None) == (float(found[1]) / 100 < cfg.trained_accuracy), row
    weak = [row.split("|")[1].strip() for row in rows if "**under-trained**" in row]
    assert not weak or f"> **Under-trained:** {', '.join(weak)} (test accuracy under 85%" in table
    assert "57,044,810" in rows[0] and "11,181,642" in rows[1]  # torchvision's counts at 10 classes
    assert "<html" in (folder / "report.html").read_text()


def test_the_side_by_side_figures_show_every_architecture(compared: tuple[CompareConfig, Path]) -> None:
    _, folder = compared
    figures = sorted((folder / "figures").glob("side_by_side_*.png"))
    assert 1 <= len(figures) <= 2 and all(path.stat().st_size > 10_000 for path in figures)
    text = (folder / "report.md").read_text()
    assert all(f"(figures/{path.name})" in text for path in figures)


def test_trust_scores_and_feature_figures_per_architecture(compared: tuple[CompareConfig, Path]) -> None:
    _, folder = compared
    text = (folder / "report.md").read_text()
    trust = text.split("## 3.")[1].split("## 4.")[0]
    for label in ("Pointing game", "Deletion AUC", "Insertion AUC", "Randomization cascade"):
        section = trust.split(f"### {label}")[1].split("###")[0]
        saliency = next(line for line in section.splitlines() if line.startswith("| Saliency"))
        assert len(re.findall(r"-?\d\.\d\d \(-?\d\.\d\d\)", saliency)) == 2, saliency  # value (baseline) per model
    features = text.split("## 4.")[1].split("## 5.")[0]
    for model in MODELS:
        for method in ("feature_inversion", "activation_maximization"):
            link = next(iter(re.findall(rf"\(figures/{model}/{method}/[\w.-]+\.png\)", features)), "")
            assert link and (folder / link[1:-1]).is_file(), (model, method)
    assert features.count("`stem.relu`") >= 4  # both methods at both depths, named


def test_reuse_takes_the_finished_runs_without_training(compared: tuple[CompareConfig, Path], monkeypatch) -> None:
    cfg, first = compared
    called: list[str] = []
    monkeypatch.setattr(runs, "stage", lambda run, name, arguments: called.append(name) or 0.0)
    reused = runs.prepare_runs(settings(Path(cfg.outputs_dir).parent, reuse=True), "later")
    assert called == [] and all(run.reused for run in reused)
    assert [run.root.name.rsplit("_", 1)[1] for run in reused] == MODELS
    assert runs.newest_run(Path(cfg.outputs_dir) / "demo_shapes", "demo_shapes", "vgg11") is None


def test_unknown_models_and_experiments_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"MODELS: vgg12 not known; the models are: alexnet, .*resnet18"):
        check_names(CompareConfig(models=["alexnet", "vgg12"]), CONF)
    with pytest.raises(ValueError, match=r"experiment='nope' is not one of conf/experiment: .*demo_shapes"):
        check_names(CompareConfig(experiment="nope"), CONF)
    with pytest.raises(ValueError, match="at least two different models"):
        check_names(CompareConfig(models=["resnet18", "resnet18"]), CONF)
    with pytest.raises(ValueError, match=r"train_per_model: alexnt not known; the models are: alexnet"):
        check_names(CompareConfig(train_per_model={"alexnt": ["optimizer.lr=0.001"]}), CONF)
    with pytest.raises(ValueError, match=r"trained_accuracy=85.0: a test accuracy between 0 and 1"):
        check_names(CompareConfig(trained_accuracy=85.0), CONF)


def test_the_entry_point_refuses_a_bad_model_before_training(tmp_path: Path) -> None:
    command = [sys.executable, str(ROOT / "scripts" / "compare.py"), "models=[alexnet,lenet]",
               f"outputs_dir={tmp_path / 'outputs'}"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "lenet not known; the models are: alexnet" in result.stderr
    assert not (tmp_path / "outputs").exists()


def test_a_failing_stage_process_names_the_model(tmp_path: Path) -> None:
    run = runs.ModelRun("alexnet", tmp_path / "run", reused=False)
    with pytest.raises(CompareError, match=r"\[alexnet\] train failed"):
        runs.stage(run, "train", ["experiment=nope"])


def test_index_ranking_picks_the_first_hit_and_miss_of_each_class() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    probabilities = torch.tensor(
        [[0.6, 0.4, 0.0], [0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]]
    )
    assert select_examples(labels, probabilities, 1, 1, rank="index").indices.tolist() == [0, 2, 3, 5]
    assert select_examples(labels, probabilities, 1, 1).indices.tolist() == [1, 2, 3, 5]
    with pytest.raises(ValueError, match="rank='first'"):
        select_examples(labels, probabilities, rank="first")


def test_the_config_file_matches_the_schema() -> None:
    register_compare()
    with initialize_config_dir(config_dir=str(CONF / "compare"), version_base="1.3"):
        cfg = compose(config_name="compare", overrides=["models=[alexnet,googlenet]"])
    assert OmegaConf.to_object(cfg).models == ["alexnet", "googlenet"]
    with (
        initialize_config_dir(config_dir=str(CONF / "compare"), version_base="1.3"),
        pytest.raises(ConfigCompositionException, match="model"),
    ):
        compose(config_name="compare", overrides=["model=alexnet"])


def test_strings_from_a_run_are_escaped() -> None:
    shown = features._image({"images": [{"image_index": "<b>1</b>", "true_label": "<script>alert(1)</script>"}]})
    assert "<" not in shown and "&lt;script&gt;" in shown
    assert "<img" not in to_html(features._layers(["<img src=x>"]), "layers")  # a code span: shown as text


def test_the_default_stage_overrides_pass_each_stage_checks() -> None:
    """compare.yaml's demo settings compose under each stage's schema and pass its value checks (a
    SmoothGrad sample count below its minimum once failed only after AlexNet had trained)."""
    register_compare()
    with initialize_config_dir(config_dir=str(CONF / "compare"), version_base="1.3"):
        cfg = OmegaConf.to_object(compose(config_name="compare"))
    register_visualize()
    with initialize_config_dir(config_dir=str(CONF / "visualize"), version_base="1.3"):
        shown = compose(config_name="visualize", overrides=runs.visualize_arguments(cfg, Path("run")))
    for name in shown.methods:
        settings_of(name, shown.params.get(name))
    register_evaluate()
    with initialize_config_dir(config_dir=str(CONF / "evaluate"), version_base="1.3"):
        family_settings(compose(config_name="evaluate", overrides=cfg.evaluate))
    for model in cfg.models:  # each model's train overrides, train_per_model's too, name keys it has
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            validate(compose(config_name="train", overrides=runs.train_arguments(cfg, model, Path("run"))))
    with pytest.raises(ValueError, match="samples=10 must be >= 25"):
        settings_of("smoothgrad", {"samples": 10})
