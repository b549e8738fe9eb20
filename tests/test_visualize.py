"""The visualize stage on a real tiny run: manifest, figures, provenance, config errors, entry point;
plus the deterministic image selection and the figures on 1- and 3-channel arrays."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONF, ROOT, train_tiny
from hydra import compose, initialize_config_dir
from layout import figure_layout_defects
from matplotlib.figure import Figure
from omegaconf import DictConfig

from convlens import atomic
from convlens.evaluate.localisation import relevance_mass
from convlens.explain.attribution import AttributionMaps, SaliencyParams
from convlens.explain.lime import LimeExplanation, LimeExplanations, LimeParams
from convlens.explain.localisation import mask_scores
from convlens.explain.localisation import relevance_mass as mass_inside
from convlens.explain.selection import select_examples
from convlens.figures.attribution import draw_saliency, gradient_images_figure, map_figure
from convlens.figures.cam import cam_figure, guided_grad_cam_figure
from convlens.figures.lime import draw_lime
from convlens.figures.panels import Caption
from convlens.figures.shown import Shown
from convlens.models import FerCNN
from convlens.registry import METHODS
from convlens.rundir import RunDirError
from convlens.untrusted import UntrustedInputError
from convlens.visualize import visualize_run
from convlens.visualize.methods import plan
from convlens.visualize.schema import register_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Cheap settings for every method (SmoothGrad keeps its required 25 samples).
FAST = [
    "selection.max_candidates=96", "params.integrated_gradients.steps=8", "params.lime.num_samples=128",
    "params.lime.batch_size=128", "params.feature_inversion.steps=8", "params.activation_maximization.steps=8",
    "params.class_model.steps=8",
]  # fmt: skip
ENTRY_KEYS = {"method", "file", "layer", "images", "parameters", "seconds"}
IMAGE_KEYS = {"class", "true_label", "predicted_label", "confidence", "image_index", "group"}


def _visualize_config(*overrides: str) -> DictConfig:
    register_schema()
    with initialize_config_dir(config_dir=str(CONF / "visualize"), version_base="1.3"):
        return compose(config_name="visualize", overrides=list(overrides))


def _train_tiny(tmp_path_factory: pytest.TempPathFactory, experiment: str) -> Path:
    """A 1-epoch run of ``experiment`` on a few hundred images under <tmp>/outputs/<experiment>/tiny."""
    return train_tiny(tmp_path_factory.mktemp("visualize") / "outputs" / experiment / "tiny", experiment)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """demo_faces: a 1-channel FerCNN."""
    return _train_tiny(tmp_path_factory, "demo_faces")


@pytest.fixture(scope="module")
def manifest(tiny_run: Path) -> dict:
    return visualize_run(tiny_run, _visualize_config(f"run={tiny_run}", *FAST))


def test_every_method_writes_its_figures_and_manifest_entries(manifest: dict, tiny_run: Path) -> None:
    out = tiny_run / "visualizations"
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert manifest["run"] == "demo_faces/tiny" and manifest["seconds_total"] > 0
    assert list(manifest["methods"]) == list(METHODS)
    files = {path.relative_to(out).as_posix() for path in out.rglob("*.png")}
    assert files == {entry["file"] for entry in manifest["entries"]} | {manifest["comparison"]["file"]}
    for entry in manifest["entries"]:
        assert set(entry) >= ENTRY_KEYS and entry["seconds"] > 0
        assert entry["file"].startswith(f"{entry['method']}/")
        assert entry["parameters"] == manifest["methods"][entry["method"]]["parameters"]


def test_grids_list_the_images_they_show(manifest: dict, tiny_run: Path) -> None:
    """Per method one grid per group of images; the entry lists each image in row order."""
    class_names = json.loads((tiny_run / "class_names.json").read_text())
    saliency = [entry for entry in manifest["entries"] if entry["method"] == "saliency"]
    images = [image for entry in saliency for image in entry["images"]]
    assert {entry["file"] for entry in saliency} <= {"saliency/correct.png", "saliency/mistake.png"}
    assert len({image["image_index"] for image in images}) <= manifest["images"] and images
    for entry in saliency:
        kinds = {image["group"] for image in entry["images"]}
        assert kinds == {entry["file"].split("/")[1][: -len(".png")]}
    for image in images:
        assert set(image) >= IMAGE_KEYS and {image["class"], image["true_label"], image["predicted_label"]} <= set(
            class_names
        )
        # selection.explain: predicted; a class with no correct pick also for itself, beside its mistake
        assert (
            image["class"] == image["predicted_label"]
            or image["class"] == image["true_label"] != image["predicted_label"]
        )
        assert (image["group"] == "correct") == (image["true_label"] == image["predicted_label"])
        assert 0 < image["confidence"] <= 1 and 0 <= image["image_index"] < 96
    explained = {image["class"] for image in images}
    assert {image["true_label"] for image in images} <= explained, "every class shown is explained for itself"
    lime = [image for entry in manifest["entries"] if entry["method"] == "lime" for image in entry["images"]]
    correct = [image for image in lime if image["group"] == "correct"]
    assert len({image["true_label"] for image in correct}) == len(correct)  # one per class
    confused = [image for image in lime if image["group"] == "confused"]
    assert [image["class"] for image in confused[::2]] == [image["predicted_label"] for image in confused[::2]]
    assert [image["class"] for image in confused[1::2]] == [image["true_label"] for image in confused[1::2]]
    cams = [entry for entry in manifest["entries"] if entry["method"] == "grad_cam"]
    # The FER CNN's stages end with a max-pool: each map is taken before it (layer4: 6x6, its output 3x3).
    assert all(entry["layer"] == ["layer2.relu2", "layer3.relu2", "layer4.relu2"] for entry in cams)
    assert all(0 <= image["mask_energy_layer4_relu2"] <= 1 and 0 < image["mask_area"] < 1
               for entry in cams for image in entry["images"])  # fmt: skip


def test_figures_of_the_model_alone_have_no_image(manifest: dict) -> None:
    entries = {entry["file"]: entry for entry in manifest["entries"]}
    assert entries["filters/stem_conv_images.png"]["layer"] == "stem.conv"  # 1-channel net: gray filter images
    for file in (
        "filters/stem_conv_channels.png",
        "class_model/classes.png",
        "activation_maximization/channels.png",
    ):
        assert entries[file]["images"] == []
    assert not any(entry["method"] == "deconvnet_paths" for entry in entries.values())
    assert "no residual block" in manifest["methods"]["deconvnet_paths"]["skipped"], "the reason is recorded"


def test_an_rgb_resnet_run_gets_every_method(
    tmp_path_factory: pytest.TempPathFactory, layout_defects: list[str]
) -> None:
    """demo_shapes: a 3-channel ResNet-18, whose blocks also give the residual-vs-shortcut figures;
    its figures are laid out as the FerCNN's are (see test_no_figure_is_clipped_...)."""
    run_dir = _train_tiny(tmp_path_factory, "demo_shapes")
    overrides = [f"run={run_dir}", *FAST, "selection.wrong_per_class=0", "workers=1"]
    manifest = visualize_run(run_dir, _visualize_config(*overrides))
    assert layout_defects == [], "\n".join(layout_defects)
    needs_generator = {"generator_prior", "generator_training"}  # this run has no `make generate`
    assert {entry["method"] for entry in manifest["entries"]} == set(METHODS) - needs_generator
    assert all("make generate RUN=" in manifest["methods"][name]["skipped"] for name in needs_generator)
    assert all((run_dir / "visualizations" / entry["file"]).is_file() for entry in manifest["entries"])
    paths = [entry for entry in manifest["entries"] if entry["method"] == "deconvnet_paths"]
    assert paths and all(entry["layer"] == "layer4.1" for entry in paths)


@dataclass(frozen=True)
class OneProcess:
    """The tiny run visualized again in one process, on a copy: its manifest, the copy, and the layout
    defects of every figure it saved (checked as each is saved)."""

    manifest: dict
    run: Path
    layout_defects: list[str]


@pytest.fixture(scope="module")
def one_process(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> OneProcess:
    """One run serves two tests (a full visualize is the suite's costliest step): the figures' layout
    and the equality with the default two workers' output."""
    copy = shutil.copytree(tiny_run, tmp_path_factory.mktemp("one_process") / "run",
                           ignore=shutil.ignore_patterns("visualizations"))  # fmt: skip
    with pytest.MonkeyPatch.context() as monkeypatch:
        defects = _check_layout_when_saved(monkeypatch)
        manifest = visualize_run(copy, _visualize_config(f"run={copy}", *FAST, "workers=1"))
    return OneProcess(manifest, copy, defects)


def test_one_process_gives_what_the_workers_gave(manifest: dict, tiny_run: Path, one_process: OneProcess) -> None:
    """The manifest fixture ran with the default two worker processes; in one process (on a copy of
    the run) the figures and every manifest field but the seconds are the same."""

    def without_seconds(entries: list[dict]) -> list[dict]:
        return [{key: value for key, value in entry.items() if key != "seconds"} for entry in entries]

    assert _visualize_config().workers == 2
    assert without_seconds(one_process.manifest["entries"]) == without_seconds(manifest["entries"])
    for entry in one_process.manifest["entries"]:
        file = Path("visualizations") / entry["file"]
        assert (one_process.run / file).read_bytes() == (tiny_run / file).read_bytes(), file


def test_a_run_of_some_methods_keeps_the_other_figures(manifest: dict, tiny_run: Path, tmp_path: Path) -> None:
    """``methods=[saliency]`` on a run drawn from the same checkpoint and images redraws saliency and
    keeps every other method's figures, maps and manifest records, in the registry's order."""
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    partial = visualize_run(copy, _visualize_config(f"run={copy}", *FAST, "methods=[saliency]", "workers=1"))
    assert list(partial["methods"]) == list(manifest["methods"])
    others = [entry for entry in manifest["entries"] if entry["method"] != "saliency"]
    assert [entry for entry in partial["entries"] if entry["method"] != "saliency"] == others
    for entry in others:
        file = Path("visualizations") / entry["file"]
        assert (copy / file).read_bytes() == (tiny_run / file).read_bytes(), file
    assert (copy / "visualizations" / manifest["methods"]["grad_cam"]["maps"]).is_file()


def test_figures_of_other_images_are_dropped_not_kept(
    manifest: dict, tiny_run: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    other = visualize_run(copy, _visualize_config(f"run={copy}", *FAST, "selection.max_candidates=64",
                                                  "methods=[saliency]", "workers=1"))  # fmt: skip
    assert list(other["methods"]) == ["saliency"]
    assert not (copy / "visualizations" / "grad_cam").exists()
    assert "dropping the figures of filters" in caplog.text


def test_a_kept_figure_that_links_outside_the_run_is_refused(manifest: dict, tiny_run: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(tiny_run, tmp_path / "run")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"not yours")
    figure = copy / "visualizations" / next(e["file"] for e in manifest["entries"] if e["method"] == "grad_cam")
    figure.unlink()
    figure.symlink_to(secret)
    with pytest.raises(UntrustedInputError, match=r"grad_cam/.*is a symbolic link; refusing to copy it"):
        visualize_run(copy, _visualize_config(f"run={copy}", *FAST, "methods=[saliency]", "workers=1"))
    assert figure.is_symlink()  # the previous folder is left as it was


def test_stage_time_is_recorded_in_provenance(manifest: dict, tiny_run: Path) -> None:
    stages = json.loads((tiny_run / "provenance.json").read_text())["stages"]
    assert stages["visualize"] == pytest.approx(manifest["seconds_total"], abs=0.01)
    assert stages["train"] > 0


def test_unknown_method_lists_the_valid_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown visualization method 'salency'; valid methods: filters, .*, saliency, .*, lime"
    ):
        plan(["saliency", "salency"], {}, FerCNN(7, 1, widths=(8, 16, 32, 64)))


def test_unknown_layer_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown layer 'layer5'; valid layers: stem, stem\.conv, .*layer4\.pool"):
        plan(["grad_cam"], {"grad_cam": {"layers": ["layer3", "layer5"]}}, FerCNN(7, 1, widths=(8, 16, 32, 64)))


def test_unknown_parameter_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"params\.lime: unknown parameter\(s\) samples; valid: num_samples, "):
        plan(["lime"], {"lime": {"samples": 10}}, FerCNN(7, 1, widths=(8, 16, 32, 64)))


def test_run_dir_without_checkpoint_is_refused(tiny_run: Path, tmp_path: Path) -> None:
    untrained = tmp_path / "untrained"
    untrained.mkdir()
    for name in ("config.yaml", "class_names.json"):
        shutil.copy(tiny_run / name, untrained / name)
    with pytest.raises(RunDirError, match=r"has no checkpoint at checkpoints/best\.ckpt; train it first"):
        visualize_run(untrained, _visualize_config(f"run={untrained}"))
    assert not (untrained / "visualizations").exists()


def test_entry_point_writes_only_into_the_run(manifest: dict, tiny_run: Path, tmp_path: Path) -> None:
    """`make visualize EXPERIMENT=...` from another directory: Hydra leaves no folder or log behind."""
    outputs = tiny_run.parents[1]
    (outputs / "demo_faces" / "latest").unlink(missing_ok=True)
    (outputs / "demo_faces" / "latest").symlink_to("tiny")
    command = [sys.executable, str(ROOT / "scripts" / "visualize.py"), "experiment=demo_faces",
               f"outputs_dir={outputs}", "methods=[saliency]"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.iterdir()) == []
    written = json.loads((tiny_run / "visualizations" / "manifest.json").read_text())
    assert list(written["methods"]) == ["saliency"]
    bad = subprocess.run([*command[:-1], "methods=[nope]"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "valid methods: filters, feature_maps" in bad.stderr


def test_selection_takes_the_most_confident_hit_and_mistake_per_class() -> None:
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    probabilities = torch.tensor(
        [[0.6, 0.4, 0.0], [0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8]]
    )
    chosen = select_examples(labels, probabilities, correct_per_class=1, wrong_per_class=1)
    assert chosen.indices.tolist() == [1, 2, 3, 5]  # class 1 and 2 have no mistakes
    assert chosen.correct.tolist() == [True, False, True, True]
    torch.testing.assert_close(chosen.confidences, torch.tensor([0.9, 0.7, 0.8, 0.8]))
    assert select_examples(labels, probabilities, 2, 0).indices.tolist() == [1, 0, 3, 4, 5]


def test_confused_pairs_follow_the_given_confusion_matrix_where_the_candidates_hold_them() -> None:
    """FER2013: the candidates' one-view predictions ranked Sad -> Neutral first where the test confusion matrix,
    which the report prints, ranks Neutral -> Sad (155). Given the matrix, its pairs come first, a pair with no
    example among the candidates is passed over, and each example is the pair's most confident one."""
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    probabilities = torch.tensor(
        [[0.2, 0.7, 0.1], [0.1, 0.6, 0.3], [0.9, 0.1, 0.0], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.2, 0.1, 0.7]]
    )  # 0 -> 1 twice, 1 -> 0 once: the candidates' own first pair is (0, 1)
    own = select_examples(labels, probabilities, 0, 0, confused_pairs=1)
    assert own.indices[own.pairs].tolist() == [0]
    matrix = torch.tensor([[50, 20, 0], [30, 50, 0], [0, 40, 50]])  # (2, 1) first, but no candidate shows it
    ranked = select_examples(labels, probabilities, 0, 0, confused_pairs=2, confusion=matrix)
    assert [(int(ranked.labels[p]), int(ranked.predictions[p])) for p in ranked.pairs] == [(1, 0), (0, 1)]
    assert ranked.indices[ranked.pairs].tolist() == [2, 0], "each pair's most confident example"


def test_mask_scores_compare_the_map_with_chance() -> None:
    masks = np.zeros((3, 4, 4))
    masks[:, :2, :2] = 1
    inside, uniform, outside = masks[0] * 5, np.ones((4, 4)), 1 - masks[0]
    scores = mask_scores(np.stack([inside, uniform, outside]), masks)
    assert [s["mask_energy"] for s in scores] == [1.0, 0.25, 0.0]
    assert all(s["mask_area"] == 0.25 for s in scores)


def test_a_zero_map_scores_the_mask_area_as_the_evaluation_does() -> None:
    masks = np.zeros((2, 4, 4), dtype=bool)
    masks[:, :2, :] = True
    scores = mask_scores(np.zeros((2, 4, 4), dtype=np.float32), masks)
    assert [s["mask_energy"] for s in scores] == [0.5, 0.5]
    maps = torch.rand(2, 4, 4)
    assert torch.equal(relevance_mass(maps, torch.from_numpy(masks)), mass_inside(maps, torch.from_numpy(masks)))


def test_the_default_config_runs_every_registered_method_with_its_dataclass_defaults() -> None:
    config = _visualize_config()
    assert config.methods is None and list(config.params) == list(METHODS)
    assert config.params.integrated_gradients.steps == 32 and config.params.grad_cam.layers is None  # per model


@pytest.mark.parametrize("channels", [1, 3])
def test_figures_draw_1_and_3_channel_images(channels: int, tmp_path: Path) -> None:
    """Single-image figures (the notebook's) and the stage's grids, for gray and RGB models."""
    rng = np.random.default_rng(0)
    image, heat = rng.random((32, 32, channels)), rng.random((32, 32))
    caption = Caption("Grad-CAM", "cat", "cat", "dog", 0.5, "layer3")
    singles = [
        map_figure(image, {"saliency": heat}, caption),
        map_figure(image, {"integrated gradients": heat - 0.5}, caption, signed=True),
        gradient_images_figure(image, {"colour": rng.standard_normal((32, 32, channels)), "gray": heat}, caption),
        cam_figure(image, {"layer2": heat, "layer3": heat}, caption),
        guided_grad_cam_figure(image, {"layer2": rng.standard_normal((32, 32, channels))}, caption),
    ]
    for figure in singles:
        assert "true: cat, predicted: dog (0.50, wrong)" in figure.texts[0].get_text()
    shown = Shown("LIME", np.stack([image, image]), (caption, caption), ("cat_001", "cat_002"), ("correct", "mistake"),
                  ("cat", "dog"))  # fmt: skip
    segments = np.arange(16).repeat(64).reshape(32, 32)
    explanation = LimeExplanation(0, segments, {s: s / 16 - 0.5 for s in range(16)}, [(3, 0.4), (7, -0.2)],
                                  heat > 0.7, heat < 0.2, 0.5, 0.3)  # fmt: skip
    grids = [
        *draw_saliency(AttributionMaps(np.stack([heat, heat])), shown, SaliencyParams()),
        *draw_lime(LimeExplanations([explanation, explanation]), shown, LimeParams()),
    ]
    assert [grid.key for grid in grids] == ["correct", "mistake", "correct", "mistake"]
    for index, figure in enumerate([*singles, *(grid.figure() for grid in grids)]):
        figure.savefig(tmp_path / f"{index}.png")
        assert (tmp_path / f"{index}.png").stat().st_size > 1000


#: Methods whose figures are grids of maps or gradient images: each needs a colour bar (the key to its scale).
MAP_GRIDS = {
    "saliency", "guided_backprop", "smoothgrad", "gradient_x_input", "integrated_gradients", "grad_cam",
    "guided_grad_cam", "layer_cam", "lime", "deconvnet", "deconvnet_paths", "backprop_reconstruction",
    "guided_reconstruction",
}  # fmt: skip


def _check_layout_when_saved(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The layout defects of every figure saved while ``monkeypatch`` holds (one process), checked just
    after it is saved: checking first would lay the figure out before ``savefig`` does, and change its bytes."""
    defects, save = [], atomic.save_figure

    def checked(figure: Figure, path: Path, **kwargs: object) -> Path:
        saved = save(figure, path, **kwargs)
        name = "/".join(Path(path).parts[-2:])
        defects.extend(figure_layout_defects(figure, name, map_grid=name.split("/")[0] in MAP_GRIDS))
        return saved

    monkeypatch.setattr(atomic, "save_figure", checked)
    return defects


@pytest.fixture
def layout_defects(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    return _check_layout_when_saved(monkeypatch)


def test_the_layout_check_after_saving_still_finds_a_clipped_label(tmp_path: Path) -> None:
    figure = Figure(figsize=(2, 2))
    figure.add_subplot().set_ylabel("a label pushed off the canvas", labelpad=200)
    with pytest.MonkeyPatch.context() as monkeypatch:
        defects = _check_layout_when_saved(monkeypatch)
        atomic.save_figure(figure, tmp_path / "grad_cam" / "clipped.png")
    assert (tmp_path / "grad_cam" / "clipped.png").is_file()
    assert any("clipped" in defect for defect in defects) and any("colour bar" in defect for defect in defects)


def test_no_figure_is_clipped_and_every_map_grid_has_a_colour_bar(one_process: OneProcess) -> None:
    """Every figure the stage saves for a gray FerCNN: titles, labels and tick labels lie inside the
    canvas (matplotlib's tight bounding box within the figure) and off other panels, and grids of maps
    carry a colour bar (the RGB ResNet's figures are checked in the test above)."""
    assert len(one_process.manifest["entries"]) > 20
    assert one_process.layout_defects == [], "\n".join(one_process.layout_defects)


def test_explain_true_as_written_on_the_command_line_explains_the_true_class(tiny_run: Path, tmp_path: Path) -> None:
    """Hydra reads `selection.explain=true` as a boolean, which the str field kept as 'True' and the stage refused;
    the config's help writes it so, and the evaluate stage's `explain=true` takes it the same way."""
    run = shutil.copytree(tiny_run, tmp_path / "run")
    cfg = _visualize_config(f"run={run}", "selection.explain=true", "methods=[saliency]", *FAST)
    images = [image for entry in visualize_run(run, cfg)["entries"] for image in entry["images"]]
    assert all(image["class"] == image["true_label"] for image in images)
    mistakes = [image for image in images if image["group"] == "mistake"]
    assert mistakes and all(image["predicted_label"] != image["class"] for image in mistakes), "explained for the label"
    with pytest.raises(ValueError, match=r"visualize\.selection\.explain='guessed'; choose one of predicted, true"):
        visualize_run(run, _visualize_config(f"run={run}", "selection.explain=guessed", "methods=[saliency]"))


def test_a_class_the_model_never_gets_right_is_explained_for_itself_too() -> None:
    """FER2013's Disgust is never predicted: its one pick is a mistake, explained for the class the model
    answered; without a second row for Disgust itself no figure shows the evidence for it."""
    from convlens.explain.method import MethodParams
    from convlens.explain.selection import Selection
    from convlens.visualize.context import Chosen

    labels, predictions = torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0])
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.97, 0.03]])
    selection = Selection(torch.arange(3), labels, predictions, probabilities)
    inputs = torch.zeros(3, 1, 4, 4)
    for targets, expected in [
        (predictions, ([0, 1, 2, 2], [0, 1, 0, 1], ["correct", "mistake", "mistake", "mistake"])),
        (labels, ([0, 1, 2], [0, 0, 1], ["correct", "mistake", "mistake"])),  # explained for the true class
    ]:
        chosen = Chosen(inputs, np.zeros((3, 4, 4, 1)), selection, targets, ["a", "b"], None)
        explained = chosen.explained(MethodParams(), explains_class=True)
        assert (explained.positions, explained.targets, explained.groups) == expected
        alone = chosen.explained(MethodParams())  # a method that describes the image: no second, identical row
        assert alone.positions == [0, 1, 2]
    chosen = Chosen(inputs, np.zeros((3, 4, 4, 1)), selection, predictions, ["a", "b"], None)
    shown = chosen.shown("Saliency", chosen.explained(MethodParams(), explains_class=True))
    assert shown.label(3).endswith("explains 'b'\n(P(b) = 0.03)"), "how little the model gives the class it explains"
    assert shown.captions[3].title().endswith(" - explains 'b' (P(b) = 0.03)\ntrue: b, predicted: a (0.97, wrong)")
    assert "explains" not in shown.label(2) and chosen.record(2, 1)["class_probability"] == 0.03
