"""Cross-check against Quantus 0.6 on a small model: the same model, inputs and maps give the same
pointing game, relevance mass, rank accuracy, pixel-flipping curve, MPRT correlations and ROAD
imputation, within the tolerances below (float32 on our side, float64 and other batchings on
Quantus's). docs/trust.md lists where the definitions differ on purpose (ties) and why the inputs
here avoid those cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import small_fer_cnn

quantus = pytest.importorskip("quantus", reason="quantus is a test dependency (pip install -e '.[dev]')")
from quantus.functions.perturb_func import noisy_linear_imputation  # noqa: E402

from convlens.data.synthetic.faces import make_faces  # noqa: E402
from convlens.evaluate import faithfulness as faith  # noqa: E402
from convlens.evaluate import localisation as local  # noqa: E402
from convlens.evaluate.imputation import noisy_linear_imputation as our_imputation  # noqa: E402
from convlens.evaluate.randomization import STAGES, cascade  # noqa: E402
from convlens.evaluate.recompute import Recompute  # noqa: E402
from convlens.evaluate.similarity import spearman  # noqa: E402
from convlens.explain.attribution import SaliencyParams  # noqa: E402

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


def test_pixel_flipping_agrees_with_our_deletion_curve(case: dict) -> None:
    """Quantus's curve starts after the first step, ours at the unperturbed image. (Its AUC helper calls
    ``np.trapz``, which NumPy 2 removed, so the areas are compared through the curves.)"""
    pixels = case["inputs"].shape[-1] * case["inputs"].shape[-2]
    metric = quantus.PixelFlipping(features_in_step=pixels // STEPS, perturb_baseline=FILL, **QUIET)
    expected = np.asarray(metric(**_quantus_arrays(case), softmax=True))
    probe = faith.Probe(case["model"], case["inputs"], case["targets"], torch.full((1, 1, 48, 48), FILL))
    ranks = faith.pixel_ranks(case["maps"], probe.generator())
    curves = faith.perturbation_curves(probe, ranks, faith.FaithfulnessParams(steps=STEPS))["deletion"]
    np.testing.assert_allclose(curves[:, 1:].numpy(), expected, atol=PROBABILITY_TOLERANCE)


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
