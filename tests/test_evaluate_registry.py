"""The evaluation-family registry: a family declared once (scoring function, settings dataclass, one
``register_family`` call) is run by the evaluate stage, typed by the config schema, recorded in
``evaluation.json`` and shown as a column of the report's trust table, with no other file touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, is_dataclass
from pathlib import Path

import pytest
import torch
from conftest import compose_config, train_tiny
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig
from torch import Tensor

from convlens import registry
from convlens.evaluate import evaluate_run
from convlens.evaluate.families import Family, Subject
from convlens.evaluate.randomization import RandomizationParams
from convlens.evaluate.robustness import RobustnessParams
from convlens.evaluate.schema import register_schema
from convlens.evaluate.scores import mean_of, score
from convlens.evaluation_registry import (
    FAMILIES,
    FamilySpec,
    Metric,
    register_family,
    scored_metrics,
    unregister_family,
)
from convlens.report.run_data import read_run
from convlens.report.trust_scores import scores_section
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema as register_visualize_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")

FAST = ["images=16", "costly_images=8",
        "faithfulness.shares=[0.5]", "faithfulness.road_percentages=[0.5]", "randomization.images=1",
        "randomization.stages=[head]", "robustness.images=1", "robustness.samples=1"]  # fmt: skip


# --- the toy family: a settings dataclass, a scoring function and one registration ---------------------


@dataclass(frozen=True)
class ConcentrationParams:
    """The ``top`` share of pixels whose mass is counted; ``seed`` draws the random maps."""

    top: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.top <= 1:
            raise ValueError(f"top={self.top} must be in (0, 1]")


def concentration_of(maps: Tensor, top: float) -> Tensor:
    """Per image (B,): the share of the map's mass in its ``top`` share of pixels."""
    flat = maps.flatten(1)
    count = max(1, round(top * flat.shape[1]))
    return flat.topk(count, dim=1).values.sum(dim=1) / flat.sum(dim=1).clamp_min(1e-12)


def concentration(subject: Subject, params: ConcentrationParams) -> Family:
    """How concentrated every map is, next to uniform random maps on the same images."""
    inputs = subject.images.inputs
    generator = torch.Generator(device=inputs.device).manual_seed(params.seed)
    noise = torch.rand((len(inputs), *inputs.shape[-2:]), generator=generator, device=inputs.device)
    baseline = concentration_of(noise, params.top)
    family = Family(baseline={"concentration": mean_of(baseline)})
    for name, maps in subject.methods.items():
        picked = baseline[subject.rows(maps)]
        family.records[name] = {
            layer: {"concentration": score(concentration_of(values, params.top), picked, "higher")}
            for layer, values in maps.layers.items()
        }
    return family


TOY = FamilySpec(
    name="toy_concentration",
    title="Concentration",
    score=f"{__name__}:concentration",
    settings=f"{__name__}:ConcentrationParams",
    metrics=(
        Metric(
            "concentration",
            "concentration",
            "higher",
            "its mass is spread more than a random map's",
            "share of the map in its densest tenth",
        ),
    ),
)


@pytest.fixture(scope="module")
def toy() -> Iterator[FamilySpec]:
    register_family(TOY)
    register_schema()
    yield TOY
    unregister_family(TOY.name)
    register_schema()


def _evaluate_config(*overrides: str) -> DictConfig:
    return compose_config("evaluate", "evaluate", *FAST, *overrides)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch demo_faces run (FerCNN, masks) with the maps of one single-map and one per-layer method."""
    run_dir = train_tiny(tmp_path_factory.mktemp("families") / "outputs" / "demo_faces" / "tiny", "demo_faces")
    register_visualize_schema()
    overrides = ["methods=[saliency,grad_cam]", "selection.max_candidates=96", "workers=1"]
    visualize_run(run_dir, compose_config("visualize", "visualize", f"run={run_dir}", *overrides))
    return run_dir


def test_a_registered_family_is_evaluated_and_reported(toy: FamilySpec, tiny_run: Path) -> None:
    evaluation = evaluate_run(tiny_run, _evaluate_config(f"run={tiny_run}", "toy_concentration.top=0.2"))
    assert list(evaluation["seconds"]) == ["localisation", "faithfulness", "randomization", "robustness", TOY.name]
    assert evaluation["settings"][TOY.name] == {"top": 0.2, "seed": 0}
    assert 0 < evaluation["baselines"][TOY.name]["concentration"] < 1
    records = [record for method in evaluation["methods"].values() for record in method["layers"].values()]
    # saliency, and Grad-CAM at layer2..layer4, each before its max-pool (layer4: 6x6)
    assert len(records) == 4 and all(record[TOY.name]["concentration"]["verdict"] for record in records)
    layer3 = read_run(tiny_run).evaluation["methods"]["grad_cam"]["layers"]["layer3.relu2"]
    assert layer3[TOY.name] == records[2][TOY.name]
    for family, metric in scored_metrics():  # the registry's direction is the one the records hold
        assert all(record[family][metric.key]["better"] == metric.better for record in records), metric.key

    table = next(block for block in scores_section(evaluation).body.split("\n\n") if block.startswith("| method |"))
    header, _, *rows = table.splitlines()
    columns = header.split(" | ")
    assert columns[columns.index("Spearman head → all") - 1] == "concentration", "its metric's column"
    assert header.endswith("| Concentration |"), "its family's verdict column"
    value = records[0][TOY.name]["concentration"]
    assert any(f"| {value['value']:.2f} ({value['baseline']:.2f})" in row for row in rows if "Saliency" in row)


def test_its_settings_are_typed_by_its_dataclass(toy: FamilySpec) -> None:
    assert _evaluate_config().toy_concentration.top == 0.1
    with pytest.raises(ConfigCompositionException, match="top"):
        _evaluate_config("toy_concentration.top=most")
    with pytest.raises(ConfigCompositionException, match="tpo"):
        _evaluate_config("toy_concentration.tpo=0.2")


def test_names_are_checked_when_registering() -> None:
    with pytest.raises(ValueError, match="registered already"):
        register_family(FAMILIES["localisation"])


def test_costly_methods_are_left_out_of_recomputing_families_by_default() -> None:
    assert registry.costly_methods() == ["lime"]
    assert RandomizationParams().skip == RobustnessParams().skip == ["lime"]
    assert [name for name, spec in FAMILIES.items() if spec.recomputes] == ["randomization", "robustness"]


def test_every_registered_family_resolves_and_the_registry_needs_no_torch() -> None:
    for spec in FAMILIES.values():
        assert callable(registry.load(spec.score)), spec.name
        assert is_dataclass(registry.load(spec.settings)), spec.name
    probe = "import sys, convlens.evaluation_registry; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_the_cascade_figure_names_its_image_and_the_class_explained() -> None:
    from types import SimpleNamespace

    from convlens.evaluate.families import Subject, image_title

    names = ("circle", "square", "star")
    images = SimpleNamespace(keys=[(7, 0), (120, 1)], labels=[0, 2])
    subject = Subject(None, images, {}, None, 3, class_names=names)  # type: ignore[arg-type]
    assert image_title(subject, 1) == "star #120, explained for square"
    unnamed = Subject(None, SimpleNamespace(keys=[(7, 0)], labels=None), {}, None, 3)  # type: ignore[arg-type]
    assert image_title(unnamed, 0) == "#7, explained for 0"


def test_the_cascade_figure_chooses_among_the_images_the_model_gets_right() -> None:
    """FER2013's cascade showed a Sad face answered Neutral, the sample's first image: the figure chooses among the
    images the model classifies right, among all where predictions or labels are unknown or none is right."""
    from types import SimpleNamespace

    from convlens.evaluate.families import Subject, _right

    keys = [(7, 1), (120, 2), (33, 0)]
    images = SimpleNamespace(keys=keys, labels=[0, 2, 0], predicted=[1, 2, 0])
    subject = Subject(None, images, {}, None, 3)  # type: ignore[arg-type]
    assert _right(subject, keys) == [1, 2]
    assert _right(subject, [keys[2], keys[1]]) == [0, 1]
    assert _right(subject, [keys[0]]) == [0], "none right: every image"
    unknown = Subject(None, SimpleNamespace(keys=keys, labels=[0, 2, 0], predicted=None), {}, None, 3)  # type: ignore[arg-type]
    assert _right(unknown, keys) == [0, 1, 2]


def test_the_cascade_figure_shows_the_image_whose_maps_go_flat_least() -> None:
    """FER2013's figure showed the trusted map blank after the head was re-initialised, on an image where it went
    flat (a grader): of the candidates, the one with the fewest flat maps over every method, layer and step is
    shown (the first among equals), and the methods of a family's parts are joined before the choice."""
    import numpy as np

    from convlens.evaluate.families import CascadeMaps, Family, merged

    structured = np.random.default_rng(0).random((4, 4))
    flat_on_first = np.stack([np.zeros((4, 4)), structured, structured])  # (K=3, H, W)
    flat_on_second = np.stack([structured, np.zeros((4, 4)), structured])
    images = [np.full((4, 4, 1), value) for value in (0.0, 0.5, 1.0)]
    titles = ["a #1, explained for a", "b #2, explained for b", "c #3, explained for c"]
    parts = [Family(figure=CascadeMaps(images, {"grad_cam": {"layer3": [structured[None].repeat(3, 0), flat_on_first]}},
                                       titles, 16)),
             Family(figure=CascadeMaps(images, {"saliency": {"": [structured[None].repeat(3, 0), flat_on_second]}},
                                       titles, 16))]  # fmt: skip
    shown = merged(parts).figure
    assert shown.title == "c #3, explained for c" and shown.image is images[2] and shown.images == 16
    assert [step.shape for step in shown.maps["grad_cam"]["layer3"]] == [(1, 4, 4), (1, 4, 4)]
    assert list(shown.maps) == ["grad_cam", "saliency"]
    assert merged(parts[:1]).figure.title == "b #2, explained for b", "one part alone: its own flat maps decide"
    assert merged([Family(figure=CascadeMaps(images, {"saliency": {"": [structured[None].repeat(3, 0)]}}, titles))
                   ]).figure.title == titles[0], "no flat map: the first"  # fmt: skip
