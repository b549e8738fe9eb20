"""The generator prior on a real tiny run: `make generate` writes <run>/generator/ (reconstructions beat
the mean image, seeded runs repeat), the visualize methods compare pixel space, DGN-AM and PPGN-h with
confidence and realism in the manifest, and damaged or missing files are refused with the fix."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import ROOT, compose_config, train_tiny
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig

from convlens.explain.generator import (
    OBJECTIVES,
    GeneratorPriorParams,
    dgn_am,
    start_codes,
    synthesized_logits,
)
from convlens.explain.realism import REALISM_LAYER
from convlens.explain.synthesis import GeneratorComparison, Synthesis
from convlens.generate.schema import register_schema
from convlens.generate.stage import generate, generate_run
from convlens.generator import store
from convlens.generator.encoding import CodeStatistics, ImageSpace
from convlens.generator.networks import CodeDenoiser, UpConvGenerator, seeded_init_
from convlens.generator.settings import GeneratorSettings
from convlens.generator.store import GeneratorPrior
from convlens.generator.training import RIDGE_PENALTIES, Encoded, fit_coarse_path_, train_generator
from convlens.provenance import portable_path
from convlens.untrusted import UntrustedInputError
from convlens.visualize import visualize_run
from convlens.visualize.schema import register_schema as register_visualize_schema

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: A short generator training on the tiny run's 256 training images.
FAST = ["generator.steps=80", "prior.steps=100", "train_images=256", "heldout_images=96"]
#: Five steps of each: enough to compare two runs, or to exercise the entry point.
SHORT = ["generator.steps=5", "prior.steps=5", "train_images=256", "heldout_images=96"]
#: Equal steps for pixel-space ascent and DGN-AM; a short PPGN-h chain.
STEPS = 32
VISUALIZE = ["methods=[generator_prior,generator_training]", "selection.max_candidates=96", "workers=1",
             f"params.generator_prior.steps={STEPS}", "params.generator_prior.chain_steps=8",
             "params.generator_prior.samples=2"]  # fmt: skip


def _generate_config(*overrides: str, base: list[str] = FAST) -> DictConfig:
    register_schema()
    return compose_config("generate", "generate", *base, *overrides)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch demo_shapes run (ResNet-18), without a generator."""
    return train_tiny(tmp_path_factory.mktemp("generator") / "outputs" / "demo_shapes" / "tiny", "demo_shapes")


@pytest.fixture(scope="module")
def generated(tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A copy of the tiny run with its generator; the stage's metrics."""
    run_dir = tmp_path_factory.mktemp("generated") / "demo_shapes" / "tiny"
    shutil.copytree(tiny_run, run_dir)
    return run_dir, generate_run(run_dir, _generate_config(f"run={run_dir}"))


@pytest.fixture(scope="module")
def manifest(generated: tuple[Path, dict]) -> dict:
    run_dir, _ = generated
    register_visualize_schema()
    return visualize_run(run_dir, compose_config("visualize", "visualize", f"run={run_dir}", *VISUALIZE))


def test_generator_reconstructs_heldout_images_better_than_the_mean_image(generated: tuple[Path, dict]) -> None:
    run_dir, metrics = generated
    folder = run_dir / store.FOLDER
    assert metrics["heldout_reconstruction_mse"] < 0.9 * metrics["mean_image_mse"], metrics
    assert json.loads((folder / store.METRICS).read_text()) == metrics
    losses = json.loads((folder / store.LOSSES).read_text())
    assert {"image", "feature", "adversarial", "discriminator", "denoiser"} <= set(losses)
    assert len(losses["image"]) == 80 and sum(losses["image"][-20:]) < sum(losses["image"][:20])
    assert (folder / store.LOSS_CURVE).stat().st_size > 5_000
    stages = json.loads((run_dir / "provenance.json").read_text())["stages"]
    assert stages["generate"] == metrics["seconds"]
    config = json.loads((folder / store.CONFIG).read_text())
    assert config["code_layer"] == "layer3", "a spatial code"
    assert len(config["code_shape"]) == 3 and torch.Size(config["code_shape"]).numel() == config["code_dim"]
    assert config["feature_layer"] == REALISM_LAYER


def test_dgn_am_reaches_a_higher_logit_than_pixel_space_at_equal_steps(
    generated: tuple[Path, dict], manifest: dict
) -> None:
    """On the 1-epoch tiny model logits are small (0.07 vs 0.03 when measured); docs/generator.md has the demos'."""
    run_dir, _ = generated
    assert manifest["methods"]["generator_prior"]["parameters"]["steps"] == STEPS
    (entry,) = [entry for entry in manifest["entries"] if entry["method"] == "generator_prior"]
    assert entry["dgn_am_logit"] > entry["pixel_logit"], entry
    assert entry["pixel_kid"] > entry["real_kid_yardstick"] > 0, "pixel-space textures are no real images"
    for name in ("pixel", "dgn_am", "ppgn"):
        assert 0 <= entry[f"{name}_confidence"] <= 1 and math.isfinite(entry[f"{name}_kid"])
        assert 0 <= entry[f"{name}_failed_samples"] <= 2 * 10
    assert [record["class"] for record in entry["per_class"]] == json.loads((run_dir / "class_names.json").read_text())
    assert all(len(record["dgn_am"]["failed"]) == 2 for record in entry["per_class"]), "samples=2 images per class"
    notes = manifest["methods"]["generator_prior"]["notes"]
    assert any(note.startswith("Realism, the Kernel Inception Distance") for note in notes)


def test_reconstruction_figures_score_each_image(manifest: dict) -> None:
    entries = {entry["file"]: entry for entry in manifest["entries"] if entry["method"] == "generator_training"}
    assert set(entries) == {"generator_training/losses.png", "generator_training/reconstructions.png"}
    assert entries["generator_training/losses.png"]["heldout_reconstruction_mse"] > 0
    assert all(
        image["reconstruction_mse"] >= 0 for image in entries["generator_training/reconstructions.png"]["images"]
    )


def test_seeded_runs_repeat_exactly(tiny_run: Path, tmp_path: Path) -> None:
    folders = []
    for name in ("first", "second"):
        copy = tmp_path / "demo_shapes" / name
        shutil.copytree(tiny_run, copy)
        generate_run(copy, _generate_config(f"run={copy}", base=SHORT))
        folders.append(copy / store.FOLDER)
    first, second = folders
    assert (first / store.LOSSES).read_text() == (second / store.LOSSES).read_text()
    for name in (store.GENERATOR, store.DENOISER, store.STATISTICS):
        one, other = (torch.load(folder / name, weights_only=True) for folder in folders)
        assert one.keys() == other.keys() and all(torch.equal(one[k], other[k]) for k in one), name


def test_a_run_without_generator_is_skipped_with_the_command(tiny_run: Path) -> None:
    register_visualize_schema()
    manifest = visualize_run(tiny_run, compose_config("visualize", "visualize", f"run={tiny_run}", *VISUALIZE))
    for name in ("generator_prior", "generator_training"):
        assert "make generate RUN=" in manifest["methods"][name]["skipped"]
    assert not [entry for entry in manifest["entries"] if entry["method"].startswith("generator")]


@pytest.mark.parametrize("damage", ["missing", "garbage", "pickle", "shape", "labels", "code_shape"])
def test_damaged_generator_files_are_refused_naming_the_file_and_the_fix(
    generated: tuple[Path, dict], tmp_path: Path, damage: str
) -> None:
    run_dir, _ = generated
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    names = {"missing": store.DENOISER, "labels": store.STATISTICS, "code_shape": store.CONFIG}
    path = copy / store.FOLDER / names.get(damage, store.GENERATOR)
    if damage == "code_shape":  # a map that does not hold the code's values
        config = json.loads(path.read_text())
        path.write_text(json.dumps(config | {"code_shape": [config["code_dim"], 2, 1]}))
    elif damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"not a tensor file")
    elif damage == "labels":  # the realism measure's classes of the held-out images, one short
        state = torch.load(path, weights_only=True)
        torch.save(state | {"heldout_labels": state["heldout_labels"][1:]}, path)
    elif damage == "pickle":
        torch.save({"weights": UntrustedInputError("an arbitrary object")}, path)
    else:
        state = torch.load(path, weights_only=True)
        state["coarse.weight"] = state["coarse.weight"][:, :3]
        torch.save(state, path)
    with pytest.raises(UntrustedInputError) as refused:
        store.load_prior(copy)
    assert str(path) in str(refused.value) and f"make generate RUN={portable_path(copy)}" in str(refused.value)


def _images_from(codes: torch.Tensor, mixing: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 images (N, 1, size, size) whose pixels are a smooth function of ``codes`` (N, D)."""
    pixels = (torch.tanh(codes @ mixing) + 1) / 2
    smooth = torch.nn.functional.interpolate(pixels.view(-1, 1, size // 2, size // 2), size=size, mode="bilinear")
    return (255 * smooth).round().byte()


def test_ridge_start_draws_images_that_depend_on_the_code_and_does_not_overfit_noise() -> None:
    seeds = torch.Generator().manual_seed(0)
    mixing = torch.randn(6, 64, generator=seeds) * 0.5
    codes = torch.randn(300, 6, generator=seeds)
    images = _images_from(codes, mixing, 16)
    generator = seeded_init_(UpConvGenerator(6, 1, 16, widths=[8, 4]), seeds)
    fit_coarse_path_(generator, codes[:200], images[:200])
    with torch.no_grad():
        rebuilt = generator(codes[200:])
    real = images[200:].float() / 255
    mean_error = (real - images[:200].float().mean(0) / 255).pow(2).mean()
    assert (rebuilt - real).pow(2).mean() < 0.2 * mean_error
    colour = seeded_init_(UpConvGenerator(6, 3, 96, widths=[8, 4]), seeds)  # 3 x 48 x 48 targets: two blocks
    images = torch.randint(0, 256, (300, 3, 96, 96), generator=seeds, dtype=torch.uint8)
    penalty = fit_coarse_path_(colour, codes, images)
    targets = torch.atanh(
        (2 * torch.nn.functional.interpolate(images / 255, size=48, mode="area") - 1).clamp(-0.96, 0.96)
    )
    centred, targets = codes - codes.mean(0), targets.flatten(1) - targets.flatten(1).mean(0)
    direct = torch.linalg.solve(centred.T @ centred + penalty * 300 * torch.eye(6), centred.T @ targets)
    torch.testing.assert_close(colour.coarse.weight.data, direct.T, atol=1e-4, rtol=1e-3)
    noise = torch.randint(0, 256, (40, 1, 16, 16), generator=seeds, dtype=torch.uint8)  # unrelated to the codes
    wide = seeded_init_(UpConvGenerator(100, 1, 16, widths=[8, 4]), seeds)
    penalty = fit_coarse_path_(wide, torch.randn(40, 100, generator=seeds), noise)
    assert penalty == max(RIDGE_PENALTIES), "with more code dimensions than images, only noise can be fitted"


def test_the_linear_path_keeps_its_ridge_fit_while_the_up_convolutions_train() -> None:
    """With ``linear_lr=0`` (the default) training leaves the ridge fit alone: Adam's per-weight steps on
    that matrix drew the demo faces' checkerboard. A positive ``linear_lr`` moves it, so the test sees training."""
    seeds = torch.Generator().manual_seed(0)
    codes = torch.randn(120, 6, generator=seeds)
    images = _images_from(codes, torch.randn(6, 64, generator=seeds) * 0.5, 16)
    data = Encoded(images, codes, "unused", CodeStatistics.of(codes))
    fitted = seeded_init_(UpConvGenerator(6, 1, 16, widths=[8, 4]), torch.Generator().manual_seed(0))
    fit_coarse_path_(fitted, data.statistics.standardize(codes), images)
    space, classifier = ImageSpace((0.5,), (0.5,), 16), torch.nn.Linear(1, 1)
    plain = GeneratorSettings(steps=5, batch_size=8, feature_weight=0, adversarial_weight=0, widths=[8, 4])
    kept, _ = train_generator(classifier, data, space, plain, seed=0)
    torch.testing.assert_close(kept.coarse.weight, fitted.coarse.weight, rtol=0, atol=0)
    assert not torch.equal(kept.to_image.weight, fitted.to_image.weight), "the up-convolutions must train"
    moved, _ = train_generator(classifier, data, space, dataclasses.replace(plain, linear_lr=1e-3), seed=0)
    assert (moved.coarse.weight - fitted.coarse.weight).abs().max() > 1e-4


def test_a_spatial_code_draws_each_region_from_its_own_positions() -> None:
    """A (C, h, w) code enters as its map: changing its top-left position redraws the top-left of the image
    and leaves the far corner alone (a fully connected first layer would redraw everything)."""
    seeds = torch.Generator().manual_seed(0)
    generator = seeded_init_(UpConvGenerator(4 * 6 * 6, 1, 48, widths=[8, 8, 8, 4], code_shape=(4, 6, 6)), seeds)
    torch.nn.init.normal_(generator.to_image.weight, std=0.1, generator=seeds)  # the up-convolutions' output only
    code = torch.randn(1, 4, 6, 6, generator=seeds)
    moved = code.clone()
    moved[:, :, 0, 0] += 3
    with torch.no_grad():
        change = (generator(moved.flatten(1)) - generator(code.flatten(1))).abs()[0, 0]
    assert change[:8, :8].max() > 1e-3 and change[40:, 40:].max() == 0
    with pytest.raises(ValueError, match="code_shape"):
        UpConvGenerator(10, 1, 48, code_shape=(4, 6, 6))


def test_dgn_am_on_the_log_probability_stops_pushing_once_the_class_is_certain() -> None:
    """The default objective reaches the class and stays nearer the mean code than the logit's ascent, which
    goes on pushing towards the corner of the code's range."""
    seeds = torch.Generator().manual_seed(0)
    generator = seeded_init_(UpConvGenerator(4, 1, 8, widths=[4, 4]), seeds).eval()
    torch.nn.init.normal_(generator.coarse.weight, std=0.5, generator=seeds)  # images that depend on the code
    model = seeded_init_(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), seeds)
    statistics = CodeStatistics.of(torch.randn(500, 4, generator=seeds))
    prior = GeneratorPrior(generator, CodeDenoiser(4, 8), statistics, ImageSpace((0.5,), (0.25,), 8), "", "",
                           torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))  # fmt: skip
    classes, found = torch.arange(3), {}
    for objective in OBJECTIVES:
        params = GeneratorPriorParams(objective=objective, samples=2, stop_confidence=1.0)  # never stopped early
        z = dgn_am(model, prior, classes, params).flatten(0, 1)
        with torch.no_grad():
            logits = synthesized_logits(model, prior, z)
        found[objective] = (z.norm(dim=1), logits.softmax(1)[torch.arange(6), classes.repeat_interleave(2)])
    (near, certain), (far, _) = found["log_probability"], found["logit"]
    assert certain.min() > 0.9 and (near < far).all(), (near, far, certain)
    with pytest.raises(ValueError, match="objective"):
        GeneratorPriorParams(objective="probability")


def test_dgn_am_stops_each_start_at_its_confidence_bar() -> None:
    """Past the bar the search only drives the code away from the training codes: each start freezes once its
    image reaches ``stop_confidence`` and ends nearer its start than a search that never stops."""
    seeds = torch.Generator().manual_seed(0)
    generator = seeded_init_(UpConvGenerator(4, 1, 8, widths=[4, 4]), seeds).eval()
    torch.nn.init.normal_(generator.coarse.weight, std=0.5, generator=seeds)
    model = seeded_init_(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), seeds)
    statistics = CodeStatistics.of(torch.randn(500, 4, generator=seeds))
    prior = GeneratorPrior(generator, CodeDenoiser(4, 8), statistics, ImageSpace((0.5,), (0.25,), 8), "", "",
                           torch.zeros(1, 1), torch.zeros(1, dtype=torch.long))  # fmt: skip
    classes, moved, confidence = torch.arange(3), {}, {}
    for stop in (0.6, 1.0):
        params = GeneratorPriorParams(samples=2, stop_confidence=stop)
        start = start_codes(prior, 3, params).flatten(0, 1)
        z = dgn_am(model, prior, classes, params).flatten(0, 1)
        with torch.no_grad():
            logits = synthesized_logits(model, prior, z)
        moved[stop] = (z - start).norm(dim=1)
        confidence[stop] = logits.softmax(1)[torch.arange(6), classes.repeat_interleave(2)]
    assert (confidence[0.6] >= 0.6).all() and (confidence[0.6] < confidence[1.0]).all(), confidence
    assert (moved[0.6] < moved[1.0]).all(), moved
    with pytest.raises(ValueError, match="stop_confidence"):
        GeneratorPriorParams(stop_confidence=0)


def _synthesis(
    confidence: list[float], logit: float, kid: list[float], failed: tuple[str | None, ...] | None = None
) -> Synthesis:
    """One image per class with these confidences, KIDs and failure reasons."""
    scores = torch.tensor(confidence)[:, None]
    reasons = tuple((reason,) for reason in failed or [None] * len(confidence))
    return Synthesis(torch.zeros(len(confidence), 1, 1, 4, 4), scores, torch.full_like(scores, logit),
                     torch.tensor(kid), reasons, False)  # fmt: skip


def _comparison(methods: dict[str, Synthesis]) -> GeneratorComparison:
    return GeneratorComparison(torch.arange(2), ("Angry", "Happy"), methods, torch.tensor([0.3, 0.3]))


def test_failed_methods_are_stated_plainly() -> None:
    methods = {"pixel": _synthesis([0.9, 0.8], 5.0, [1, 1]), "dgn_am": _synthesis([0.9, 0.7], 4.0, [1, 1]),
               "ppgn": _synthesis([0.1, 0.9], 1.0, [1, 1])}  # fmt: skip
    notes = _comparison(methods).notes()
    assert "PPGN-h failed for 1 of 2 classes" in " ".join(notes)
    assert not any(note.startswith(("class model", "DGN-AM failed")) for note in notes)
    assert any(note.startswith("DGN-AM reached a lower mean class logit than pixel space") for note in notes)
    ascended = GeneratorComparison(torch.arange(2), ("Angry", "Happy"), methods, torch.ones(2), "log_probability")
    assert not any("lower mean class logit" in note for note in ascended.notes()), "not what DGN-AM ascended"
    methods["dgn_am"] = _synthesis([0.9, 0.7], 6.0, [1, 1])
    assert not any("lower mean class logit" in note for note in _comparison(methods).notes())


def test_verdicts_count_the_classes_where_the_numbers_say_so() -> None:
    methods = {"pixel": _synthesis([0.9, 0.8], 5.0, [1.0, 1.0]),
               "dgn_am": _synthesis([0.95, 0.92], 6.0, [0.5, 2.0]),
               "ppgn": _synthesis([0.1, 0.9], 1.0, [3.0, 3.0], ("constant", None))}  # fmt: skip
    comparison = _comparison(methods)
    notes = " ".join(comparison.notes())
    verdict = (
        "is as confident as pixel space and more realistic (a mean confidence at least 0.9 or at most 0.01 below it, "
        "and a lower KID) for "
    )
    beats = f"DGN-AM {verdict}"
    assert f"{beats}1 of 2 classes (Angry); it reaches confidence >= 0.9 with a KID within 2x of the real yardstick " \
           "for 1 of 2 (Angry)." in notes  # fmt: skip
    assert "PPGN-h: 1 of 2 samples failed (1 constant)" in notes
    assert "Angry: class model (pixel space) 1, DGN-AM 0.5, PPGN-h 3 (real <= 0.3)" in notes
    record = comparison.scores(None)
    assert record["ppgn_failed_samples"] == 1 and record["per_class"][0]["ppgn"]["failed"] == ["constant"]
    assert record["per_class"][1] == {
        "class": "Happy", "real_kid_yardstick": 0.3,
        "pixel": {"confidence": 0.8, "kid": 1.0, "confidences": [0.8], "failed": [None]},
        "dgn_am": {"confidence": 0.92, "kid": 2.0, "confidences": [0.92], "failed": [None]},
        "ppgn": {"confidence": 0.9, "kid": 3.0, "confidences": [0.9], "failed": [None]},
    }  # fmt: skip
    methods["dgn_am"] = _synthesis([0.95, 0.92], 6.0, [0.5, 0.55])  # Happy: KID now under pixel space's and 2 x 0.3
    notes = " ".join(_comparison(methods).notes())
    assert f"{beats}2 of 2 classes (Angry, Happy); it reaches confidence >= 0.9 with a KID within 2x of the real " \
           "yardstick for 2 of 2 (Angry, Happy)." in notes  # fmt: skip
    assert f"PPGN-h {verdict}0 of 2 classes; it reaches" in notes
    methods["pixel"] = _synthesis([0.955, 0.8], 5.0, [1.0, 1.0])  # Angry: DGN-AM 0.005 less confident, a tie
    assert f"{beats}2 of 2 classes (Angry, Happy)" in " ".join(_comparison(methods).notes())
    methods["pixel"] = _synthesis([0.97, 0.8], 5.0, [1.0, 1.0])  # Angry: 0.02 less confident, but above the bar
    assert f"{beats}2 of 2 classes (Angry, Happy)" in " ".join(_comparison(methods).notes())
    methods["dgn_am"] = _synthesis([0.89, 0.92], 6.0, [0.5, 0.55])  # Angry: under the bar and 0.08 below pixel's
    assert f"{beats}1 of 2 classes (Happy)" in " ".join(_comparison(methods).notes())


def test_ppgn_samples_are_counted_per_sample_not_by_their_mean() -> None:
    """Issue 26's PPGN-h bar: >= 2 of 3 samples not failed with confidence >= 0.5 (Happy's mean is 0.67, but one of
    its two confident samples is a constant image)."""
    confidence = torch.tensor([[0.9, 0.6, 0.1], [0.9, 0.9, 0.2]])
    images, kid = torch.zeros(2, 3, 1, 4, 4), torch.ones(2)
    pixel = Synthesis(images, confidence, confidence, kid, ((None,) * 3,) * 2, False)
    ppgn = Synthesis(images, confidence, confidence, kid, ((None,) * 3, ("constant", None, None)), False)
    methods = {"pixel": pixel, "dgn_am": pixel, "ppgn": ppgn}
    bar = "PPGN-h: at least 2 of 3 samples are not failed and reach confidence >= 0.5 for "
    assert f"{bar}1 of 2 classes (Angry)." in _comparison(methods).notes()
    methods["ppgn"] = pixel
    assert f"{bar}2 of 2 classes (Angry, Happy)." in _comparison(methods).notes()
    assert _comparison(methods).scores(None)["per_class"][0]["ppgn"]["confidences"] == [0.9, 0.6, 0.1]


def test_settings_are_checked_by_key() -> None:
    with pytest.raises(ValueError, match="generator.steps=0 must be >= 1"):
        generate(_generate_config("generator.steps=0"))
    with pytest.raises(ConfigCompositionException, match="nonsense"):
        _generate_config("generator.nonsense=1")


@pytest.mark.slow  # a whole generate stage in a subprocess (~30 s)
def test_entry_point_trains_the_latest_run_and_refuses_a_missing_one(tiny_run: Path, tmp_path: Path) -> None:
    outputs = tmp_path / "outputs"
    shutil.copytree(tiny_run, outputs / "demo_shapes" / "tiny")
    (outputs / "demo_shapes" / "latest").symlink_to("tiny")
    command = [sys.executable, "scripts/generate.py", f"outputs_dir={outputs}", "experiment=demo_shapes",
               *SHORT]  # fmt: skip
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(json.loads((outputs / "demo_shapes" / "tiny" / store.FOLDER / store.LOSSES).read_text())["image"]) == 5
    missing = subprocess.run([*command[:2], f"run={outputs / 'nothing'}"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode != 0 and "make generate:" in missing.stderr
