"""Cross-check against Quantus 0.6 on small models (gray faces, RGB shapes): the same model, inputs and
maps give the same pointing game, relevance mass, rank accuracy, pixel-flipping curve (black and mean
fill, gray and RGB, tied groups), ROAD pixels, imputed images, accuracy and score, MPRT correlations and
max-sensitivity on identical noise, within the tolerances below (float32 on our side, float64 and other
batchings on Quantus's); insertion, which Quantus lacks, is recomputed from its definition with scipy.
docs/trust.md lists where the definitions differ on purpose (ties, rounding, RGB) and how the inputs
here avoid or test those cases."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage
import torch
from conftest import randomize_batchnorm, small_fer_cnn

quantus = pytest.importorskip("quantus", reason="quantus is a test dependency (pip install -e '.[dev]')")
from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: E402

from convlens.data.synthetic.faces import make_faces  # noqa: E402
from convlens.data.synthetic.shapes import make_shapes  # noqa: E402
from convlens.evaluate import faithfulness as faith  # noqa: E402
from convlens.evaluate import localisation as local  # noqa: E402
from convlens.evaluate import robustness as robust  # noqa: E402
from convlens.evaluate.imputation import noisy_linear_imputation as our_imputation  # noqa: E402
from convlens.evaluate.randomization import STAGES, cascade  # noqa: E402
from convlens.evaluate.recompute import Recompute  # noqa: E402
from convlens.evaluate.similarity import spearman  # noqa: E402
from convlens.explain.attribution import SaliencyParams  # noqa: E402
from convlens.models.fer_cnn import FerCNN  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Scores are means of 0/1 or ratios; ours are float32, Quantus's float64.
LOCALISATION_TOLERANCE = 1e-6
#: Class probabilities from differently batched float32 forward passes.
PROBABILITY_TOLERANCE = 1e-5
#: Spearman correlations of maps computed by the same code on identically re-initialised models.
CORRELATION_TOLERANCE = 1e-5
#: Imputed pixel values (unit-variance image) with conjugate gradients run to a 1e-7 relative residual.
IMPUTATION_TOLERANCE = 1e-4
FILL = -2.0  # the model input of a black pixel: (0 - 0.5) / 0.25
STEPS = 8
QUIET = {"disable_warnings": True, "display_progressbar": False}


@pytest.fixture(scope="module")
def case() -> dict:
    """A seeded small FerCNN, 6 synthetic faces with their masks, the targets and saliency maps."""
    model = small_fer_cnn()
    faces = make_faces(6, seed=3)
    inputs = (torch.from_numpy(faces.images).float().permute(0, 3, 1, 2) / 255 - 0.5) / 0.25
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1)
    saliency = Recompute("saliency", SaliencyParams(), torch.full_like(inputs[:1], FILL), 7)
    maps = saliency(model, inputs, targets)[""]
    return {"model": model, "inputs": inputs, "targets": targets, "masks": torch.from_numpy(faces.masks),
            "maps": maps, "saliency": saliency}  # fmt: skip


@pytest.fixture(scope="module")
def rgb_case() -> dict:
    """A seeded small RGB FerCNN (10 classes) on 6 synthetic 32x32 shapes, with saliency maps."""
    torch.manual_seed(0)
    model = randomize_batchnorm(FerCNN(10, 3, widths=(8, 16, 32, 64)))
    shapes = make_shapes(6, seed=3)
    inputs = (torch.from_numpy(shapes.images).float().permute(0, 3, 1, 2) / 255 - 0.5) / 0.25
    with torch.no_grad():
        targets = model(inputs).argmax(dim=1)
    maps = Recompute("saliency", SaliencyParams(), torch.full_like(inputs[:1], FILL), 10)(model, inputs, targets)[""]
    return {"model": model, "inputs": inputs, "targets": targets, "masks": torch.from_numpy(shapes.masks), "maps": maps}


def _quantus_arrays(case: dict) -> dict:
    return {
        "model": case["model"],
        "x_batch": case["inputs"].numpy(),
        "y_batch": case["targets"].numpy(),
        "a_batch": case["maps"][:, None].numpy(),
        "s_batch": case["masks"][:, None].numpy().astype(float),
        "device": "cpu",
    }


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (local.pointing_game, quantus.PointingGame),
        (local.relevance_mass, quantus.RelevanceMassAccuracy),
        (local.rank_accuracy, quantus.RelevanceRankAccuracy),
    ],
)
def test_localisation_agrees(case: dict, ours, theirs) -> None:  # noqa: ANN001
    expected = np.asarray(theirs(**QUIET)(**_quantus_arrays(case)), dtype=float)
    got = ours(case["maps"], case["masks"]).numpy()
    assert np.isfinite(expected).all() and len(set(np.round(expected, 6))) > 1, "a case that tells maps apart"
    np.testing.assert_allclose(got, expected, atol=LOCALISATION_TOLERANCE)


def _our_deletion(case: dict, maps: torch.Tensor, fill: float) -> np.ndarray:
    """Our deletion curves at STEPS equal shares, without the unperturbed start."""
    channels, height, width = case["inputs"].shape[1:]
    probe = faith.Probe(case["model"], case["inputs"], case["targets"], torch.full((1, channels, height, width), fill))
    params = faith.FaithfulnessParams(shares=[k / STEPS for k in range(1, STEPS)])
    curves = faith.perturbation_curves(probe, faith.pixel_ranks(maps, probe.generator()), params)
    return curves["deletion"][:, 1:].numpy()


def _pixel_flipping(case: dict, maps: torch.Tensor, fill: float) -> np.ndarray:
    """Quantus's curve at whole pixels. It flips the C x H x W elements of the images in the order of
    the map repeated per channel, H x W / STEPS elements at a time (it asks for a divisor of H x W), so
    only every C-th of its C x STEPS steps ends on whole pixels: those are compared."""
    channels, height, width = case["inputs"].shape[1:]
    metric = quantus.PixelFlipping(features_in_step=height * width // STEPS, perturb_baseline=fill, **QUIET)
    curve = np.asarray(metric(**{**_quantus_arrays(case), "a_batch": maps[:, None].numpy()}, softmax=True))
    return curve[:, channels - 1 :: channels]


@pytest.mark.parametrize("fill", [FILL, 0.0], ids=["black", "mean"])
@pytest.mark.parametrize("name", ["case", "rgb_case"])
def test_pixel_flipping_agrees_with_our_deletion_curve(name: str, fill: float, request: pytest.FixtureRequest) -> None:
    """Gray and RGB, black and mean (zero input) fill. Quantus's curve starts after the first step, ours
    at the unperturbed image. (Its AUC helper calls ``np.trapz``, which NumPy 2 removed, so the areas
    are compared through the curves.)"""
    case = request.getfixturevalue(name)
    np.testing.assert_allclose(_our_deletion(case, case["maps"], fill), _pixel_flipping(case, case["maps"], fill),
                               atol=PROBABILITY_TOLERANCE)  # fmt: skip


def test_tied_pixels_agree_where_every_step_ends_between_tied_groups(case: dict) -> None:
    """A map of STEPS tied groups of pixels / STEPS pixels: both remove the same set at every step,
    whatever order each takes the ties in. With groups that straddle a step's end they differ (ours:
    a seeded random order of the tied pixels, Quantus: NumPy's sort order), see docs/trust.md."""
    count, _, height, width = case["inputs"].shape
    generator = torch.Generator().manual_seed(0)
    shuffled = torch.stack([torch.randperm(height * width, generator=generator) for _ in range(count)])
    grouped = (STEPS - shuffled // (height * width // STEPS)).float().reshape(count, height, width)
    np.testing.assert_allclose(_our_deletion(case, grouped, FILL), _pixel_flipping(case, grouped, FILL),
                               atol=PROBABILITY_TOLERANCE)  # fmt: skip
    straddling = (grouped + 1).div(2, rounding_mode="floor")
    difference = np.abs(_our_deletion(case, straddling, FILL) - _pixel_flipping(case, straddling, FILL))
    assert difference.max() > 10 * PROBABILITY_TOLERANCE, "ties across a step's end are taken in another order"


def test_insertion_is_the_definition_recomputed_with_scipy(case: dict) -> None:
    """Quantus has no insertion metric: the curve is recomputed here step by step, from a blur by
    ``scipy.ndimage.gaussian_filter`` (mirror border, radius 3 sigma) and the map's pixel order."""
    params = faith.FaithfulnessParams(shares=[0.05, 0.3, 0.6])
    probe = faith.Probe(case["model"], case["inputs"], case["targets"], torch.full((1, 1, 48, 48), FILL))
    got = faith.perturbation_curves(probe, faith.pixel_ranks(case["maps"], probe.generator()), params)["insertion"]
    sigma = params.blur_sigma * 48
    images = case["inputs"].numpy()
    radius = (0, int(3 * sigma), int(3 * sigma))
    start = np.stack([scipy.ndimage.gaussian_filter(image, (0, sigma, sigma), mode="mirror", radius=radius)
                      for image in images])  # fmt: skip
    order = np.argsort(-case["maps"].flatten(1).numpy(), axis=1)
    expected = np.empty(got.shape)
    for step, share in enumerate(params.grid):
        inserted = start.reshape(len(images), -1).copy()
        for row, picked in enumerate(order[:, : round(share * 48 * 48)]):
            inserted[row, picked] = images[row].reshape(-1)[picked]
        with torch.no_grad():
            logits = case["model"](torch.from_numpy(inserted.reshape(images.shape)))
        expected[:, step] = torch.softmax(logits, dim=1)[torch.arange(len(images)), case["targets"]].numpy()
    np.testing.assert_allclose(got.numpy(), expected, atol=PROBABILITY_TOLERANCE)


def test_mprt_agrees_at_every_stage(case: dict) -> None:
    """Our cascade re-initialises whole stages; Quantus's MPRT one module at a time, top down. After a
    stage's last (first in forward order) module, both models are identical, so are the correlations."""

    def explain(model, inputs, targets, **_):  # noqa: ANN001, ANN202
        return case["saliency"](model, torch.as_tensor(inputs), torch.as_tensor(targets))[""][:, None].numpy()

    metric = quantus.MPRT(layer_order="top_down", seed=42, **QUIET)
    scores = metric(**{**_quantus_arrays(case), "s_batch": None}, explain_func=explain, softmax=False)
    model = case["model"]
    for stage, randomized in cascade(model, list(STAGES), seed=42):
        last = next(name for name, module in model.named_modules()
                    if name.startswith(f"{stage}.") and hasattr(module, "reset_parameters"))  # fmt: skip
        maps = case["saliency"](randomized, case["inputs"], case["targets"])[""]
        got = spearman(case["maps"], maps).numpy()
        np.testing.assert_allclose(got, scores[last], atol=CORRELATION_TOLERANCE, err_msg=f"after {stage}")


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_road_imputation_agrees(share: float) -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(3, 24, 24))
    smooth = np.kron(rng.normal(size=(4, 4)), np.ones((6, 6))) + 0.1 * rng.normal(size=(24, 24))
    indices = np.sort(np.argsort(-smooth.ravel())[: int(share * smooth.size)])
    expected = noisy_linear_imputation(image, indices, noise=0.0)
    removed = torch.zeros(smooth.size, dtype=torch.bool)
    removed[indices] = True
    generator = torch.Generator().manual_seed(0)
    exact = our_imputation(torch.tensor(image[None]).float(), removed.reshape(1, 24, 24), 0.0, generator,
                           iterations=5000, tolerance=1e-7)  # fmt: skip
    np.testing.assert_allclose(exact[0].numpy(), expected, atol=IMPUTATION_TOLERANCE)
    default = our_imputation(torch.tensor(image[None]).float(), removed.reshape(1, 24, 24), 0.0, generator)
    assert np.abs(default[0].numpy() - expected).max() < 0.02, "the default tolerance stays below ROAD's noise scale"


#: ROAD's shares, whole pixel counts on 48 x 48 images (Quantus floors the count, we round it).
ROAD_PERCENTAGES = [25, 50, 75]
#: Imputed pixel values (faces in [-2, 2]): ours by conjugate gradients to the default relative
#: residual of 1e-3, Quantus's by a sparse direct solve; which pixels are imputed is compared exactly.
ROAD_IMAGE_TOLERANCE = 0.05
#: ROAD scores (differences of probabilities near 1/7 for this untrained model) from those images.
ROAD_SCORE_TOLERANCE = 1e-5


def _quantus_road(case: dict, maps: torch.Tensor) -> tuple[np.ndarray, np.ndarray, dict]:
    """What Quantus's ROAD (noise 0) does with ``maps``, caught in its ``perturb_func``: the pixels it
    removes (B, P, H * W) and the images it imputes (B, P, C, H, W), and its scores (MoRF accuracy per
    percentage)."""
    caught, removed = [], []

    def impute(arr: np.ndarray, indices: np.ndarray, **_: object) -> np.ndarray:
        removed.append(np.isin(np.arange(arr[0].size), indices))
        caught.append(noisy_linear_imputation(arr, indices, noise=0.0))
        return caught[-1]

    metric = quantus.ROAD(percentages=ROAD_PERCENTAGES, perturb_func=impute, **QUIET)
    scores = metric(**{**_quantus_arrays(case), "a_batch": maps[:, None].numpy()})
    images = np.stack(caught).reshape(len(ROAD_PERCENTAGES), *case["inputs"].shape).swapaxes(0, 1)
    return np.stack(removed).reshape(len(ROAD_PERCENTAGES), len(images), -1).swapaxes(0, 1), images, scores


def _probabilities(case: dict, images: np.ndarray) -> np.ndarray:
    """Softmax probability (B, P) of each image's target class for images (B, P, C, H, W)."""
    with torch.no_grad():
        logits = case["model"](torch.from_numpy(images.reshape(-1, *images.shape[2:])).float())
    targets = case["targets"].repeat_interleave(images.shape[1])
    return torch.softmax(logits, dim=1)[torch.arange(len(targets)), targets].reshape(images.shape[:2]).numpy()


def test_road_removes_the_same_pixels_and_scores_lerf_minus_morf(case: dict) -> None:
    """MoRF: Quantus's ROAD on the map; LeRF: on the map subtracted from its maximum (Quantus refuses
    negative maps; no ties, so the least relevant pixels first). The same pixels removed, the same
    imputed images (noise 0), the same MoRF accuracy per percentage (Quantus's score), and our score,
    mean LeRF minus mean MoRF probability, from Quantus's images."""
    params = faith.FaithfulnessParams(road_percentages=[p / 100 for p in ROAD_PERCENTAGES], road_noise=0.0)
    probe = faith.Probe(case["model"], case["inputs"], case["targets"], torch.full((1, 1, 48, 48), FILL))
    ranks = faith.pixel_ranks(case["maps"], probe.generator())
    ours = faith.road_images(probe, ranks, params).numpy()
    most, morf, accuracy = _quantus_road(case, case["maps"])
    least, lerf, _ = _quantus_road(case, case["maps"].amax() - case["maps"])
    counts = torch.tensor(ROAD_PERCENTAGES)[None, :, None] * 48 * 48 // 100
    np.testing.assert_array_equal(most, (ranks[:, None] < counts).numpy())
    np.testing.assert_array_equal(least, (ranks[:, None] >= 48 * 48 - counts).numpy())
    np.testing.assert_allclose(ours[:, 0], morf, atol=ROAD_IMAGE_TOLERANCE)
    np.testing.assert_allclose(ours[:, 1], lerf, atol=ROAD_IMAGE_TOLERANCE)
    with torch.no_grad():
        predicted = case["model"](torch.from_numpy(ours[:, 0].reshape(-1, 1, 48, 48))).argmax(dim=1)
    correct = (predicted.reshape(len(ours), -1) == case["targets"][:, None]).float().mean(dim=0)
    np.testing.assert_allclose(correct.numpy(), [accuracy[p] for p in ROAD_PERCENTAGES])
    expected = _probabilities(case, lerf).mean(axis=1) - _probabilities(case, morf).mean(axis=1)
    got = faith.per_image(probe, case["maps"], params)["road"].numpy()
    assert np.ptp(expected) > 10 * ROAD_SCORE_TOLERANCE, "a case that tells images apart"
    np.testing.assert_allclose(got, expected, atol=ROAD_SCORE_TOLERANCE)


#: Max-sensitivity: ratios of norms of maps computed in differently batched float32 passes.
SENSITIVITY_TOLERANCE = 1e-4


def test_max_sensitivity_agrees_on_identical_noise(case: dict) -> None:
    """Quantus's ``MaxSensitivity`` is given our noisy copies through its ``perturb_func``, one sample
    at a time, and our saliency as its ``explain_func``; the maps of the unperturbed images are ours."""
    params = robust.RobustnessParams(images=len(case["inputs"]), samples=4)
    copies = iter(robust.noisy_copies(case["inputs"], params).reshape(params.samples, -1).numpy())

    def perturb(arr: np.ndarray, **_: object) -> np.ndarray:
        return next(copies).reshape(arr.shape)

    def explain(model, inputs, targets, **_):  # noqa: ANN001, ANN202
        return case["saliency"](model, torch.as_tensor(inputs), torch.as_tensor(targets))[""][:, None].numpy()

    metric = quantus.MaxSensitivity(nr_samples=params.samples, perturb_func=perturb, **QUIET)
    expected = np.asarray(metric(**{**_quantus_arrays(case), "s_batch": None}, explain_func=explain))
    got = robust.max_sensitivity(case["saliency"], case["model"], case["inputs"], case["targets"],
                                 {"": case["maps"]}, params)[""].numpy()  # fmt: skip
    assert np.ptp(expected) > 10 * SENSITIVITY_TOLERANCE * expected.max(), "a case that tells maps apart"
    np.testing.assert_allclose(got, expected, rtol=SENSITIVITY_TOLERANCE)
