"""The method registry: a method declared once (explain function, settings, figure function, one
``register`` call) is run by the stage, typed by the config schema, listed in the manifest and shown
in its report section, with no other file touched."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from conftest import CONF, TINY
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig
from torch import nn

from convlens import registry
from convlens.explain.method import ExplainBatch, MethodParams
from convlens.figures.grid import Column, image_column, map_column
from convlens.figures.shown import Drawn, Shown
from convlens.report import build_report
from convlens.training.run import train
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the toy method: three definitions and one registration ------------------------------------------


@dataclass(frozen=True)
class BrightnessParams(MethodParams):
    """How strongly the map is sharpened."""

    power: float = 1.0


@dataclass(frozen=True)
class BrightnessMaps:
    maps: np.ndarray

    def localisation_maps(self) -> dict[str | None, np.ndarray]:
        return {None: self.maps}


def explain_brightness(model: nn.Module, batch: ExplainBatch, params: BrightnessParams) -> BrightnessMaps:
    """A model-free 'explanation': the input's mean absolute value per pixel, to a power."""
    return BrightnessMaps(batch.inputs.abs().mean(1).pow(params.power).numpy())


def draw_brightness(result: BrightnessMaps, shown: Shown, params: BrightnessParams) -> list[Drawn]:
    def columns() -> list[Column]:
        return [image_column(shown.display), map_column("brightness", result.maps.__getitem__)]

    return shown.grids(columns)


TOY = registry.MethodSpec(
    name="toy_brightness",
    title="Toy brightness",
    section="saliency",
    compute=f"{__name__}:explain_brightness",
    draw=f"{__name__}:draw_brightness",
    parameters=f"{__name__}:BrightnessParams",
)


@pytest.fixture(scope="module")
def toy() -> Iterator[registry.MethodSpec]:
    registry.register(TOY)
    register_schema()
    yield TOY
    registry.unregister(TOY.name)
    register_schema()


def _visualize_config(*overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=str(CONF / "visualize"), version_base="1.3"):
        return compose(config_name="visualize", overrides=list(overrides))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "outputs" / "demo_faces" / "tiny"
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        train(compose(config_name="train", overrides=["experiment=demo_faces", *TINY, f"paths.output_dir={path}"]))
    return path


def test_a_registered_method_runs_and_is_reported(toy: registry.MethodSpec, run_dir: Path) -> None:
    config = _visualize_config(
        f"run={run_dir}", "methods=[toy_brightness,saliency]", "params.toy_brightness.power=2.0", "workers=1"
    )
    manifest = visualize_run(run_dir, config)
    assert list(manifest["methods"]) == ["toy_brightness", "saliency"]
    assert manifest["methods"]["toy_brightness"]["parameters"] == {"power": 2.0}
    entries = [entry for entry in manifest["entries"] if entry["method"] == "toy_brightness"]
    images = [image for entry in entries for image in entry["images"]]
    # every chosen image but the confused pairs' extra ones (methods without a `confused` setting skip those)
    saliency = [image for entry in manifest["entries"] if entry["method"] == "saliency" for image in entry["images"]
                if not entry["file"].endswith("confused.png")]  # fmt: skip
    distinct = {image["image_index"] for image in saliency}  # saliency explains a class never right twice
    assert {image["image_index"] for image in images} == distinct and len(images) == len(distinct)
    assert len(distinct) <= manifest["images"] and all(0 <= image["mask_energy"] <= 1 for image in images)
    assert all((run_dir / "visualizations" / entry["file"]).is_file() for entry in entries)

    report = (build_report(run_dir, run_dir.parents[2] / "reports") / "report.md").read_text()
    saliency_section = report.split(". Saliency per class\n")[1].split("\n## ")[0]
    assert "### Toy brightness (`toy_brightness`)" in saliency_section and "power=2" in saliency_section
    assert saliency_section.count("figures/visualizations/toy_brightness/") == len(entries)
    assert json.loads((run_dir / "visualizations" / "manifest.json").read_text()) == manifest


def test_its_settings_are_typed_by_its_dataclass(toy: registry.MethodSpec) -> None:
    assert _visualize_config().params.toy_brightness.power == 1.0
    with pytest.raises(ConfigCompositionException, match="power"):
        _visualize_config("params.toy_brightness.power=bright")
    with pytest.raises(ConfigCompositionException):
        _visualize_config("params.toy_brightness.pwr=2")


def test_names_and_sections_are_checked_when_registering() -> None:
    with pytest.raises(ValueError, match="registered already"):
        registry.register(registry.METHODS["saliency"])
    with pytest.raises(ValueError, match="unknown section 'nowhere'"):
        registry.register(registry.MethodSpec("x", "X", "nowhere", "a:b", "a:c", "a:d"))


def test_every_registered_method_resolves_and_the_registry_needs_no_torch() -> None:
    import subprocess
    import sys

    for spec in registry.METHODS.values():
        assert callable(registry.load(spec.compute)) and callable(registry.load(spec.draw)), spec.name
        assert issubclass(registry.load(spec.parameters), MethodParams), spec.name
    probe = "import sys, convlens.registry; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"
