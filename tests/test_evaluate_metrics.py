"""The evaluation's metrics on hand-made maps, masks and a model whose evidence is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import skimage.color
import skimage.filters
import skimage.metrics
import torch
from conftest import small_fer_cnn
from torch import Tensor, nn

from convlens.evaluate import faithfulness as faith
from convlens.evaluate import imputation
from convlens.evaluate import localisation as local
from convlens.evaluate import robustness as robust
from convlens.evaluate.imputation import noisy_linear_imputation
from convlens.evaluate.randomization import cascade
from convlens.evaluate.robustness import relative_change
from convlens.evaluate.scores import score
from convlens.evaluate.similarity import spearman, ssim, unit_max


def _mask(rows: slice, cols: slice, size: int = 8) -> Tensor:
    mask = torch.zeros(1, size, size, dtype=torch.bool)
    mask[0, rows, cols] = True
    return mask


def test_pointing_game_shares_a_tied_peak_and_a_flat_map_scores_the_mask_area() -> None:
    mask = _mask(slice(0, 4), slice(0, 8))  # half the image
    peak_inside = torch.zeros(1, 8, 8)
    peak_inside[0, 1, 1] = 1
    tied = torch.zeros(1, 8, 8)
    tied[0, 1, 1] = tied[0, 6, 6] = tied[0, 7, 7] = 1  # one of three peaks inside
    maps = torch.cat([peak_inside, tied, torch.ones(1, 8, 8), torch.zeros(1, 8, 8)])
    got = local.pointing_game(maps, mask.expand(4, -1, -1))
    np.testing.assert_allclose(got.numpy(), [1, 1 / 3, 0.5, 0.5])


def test_relevance_mass_and_rank_accuracy_count_ties_by_their_expected_share() -> None:
    mask = _mask(slice(0, 2), slice(0, 2))  # 4 pixels
    values = torch.zeros(1, 8, 8)
    values[0, 0, 0], values[0, 0, 1] = 3.0, 1.0  # 2 inside; the cut at rank 4 falls among 62 tied zeros
    values[0, 5, 5] = 2.0  # 1 outside
    assert local.relevance_mass(values, mask).item() == pytest.approx(4 / 6)
    # top 4: 3.0 (in), 2.0 (out), 1.0 (in), then 1 place among 61 zeros of which 2 lie inside
    assert local.rank_accuracy(values, mask).item() == pytest.approx((2 + 2 / 61) / 4)
    assert local.relevance_mass(torch.zeros(1, 8, 8), mask).item() == pytest.approx(4 / 64)


def test_an_empty_mask_gives_nan_and_is_left_out_of_the_score() -> None:
    maps, masks = torch.rand(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[0, :2] = True
    values = local.pointing_game(maps, masks)
    assert not math.isnan(values[0]) and math.isnan(values[1])
    assert score(values, torch.full((2,), 0.25), "higher")["images"] == 1


def test_random_maps_score_the_chance_level() -> None:
    masks = torch.zeros(64, 16, 16, dtype=torch.bool)
    masks[:, :4] = True  # a quarter of each image
    baseline = local.random_baseline(masks, 64, torch.Generator().manual_seed(0))
    for name, values in baseline.items():
        assert values.mean().item() == pytest.approx(0.25, abs=0.02), name


@pytest.mark.parametrize(
    ("values", "baseline", "better", "expected"),
    [
        ([0.9, 0.8, 0.95, 0.85] * 2, [0.2, 0.3, 0.25, 0.2] * 2, "higher", "above"),
        ([0.9, 0.8, 0.95, 0.85] * 2, [0.2, 0.3, 0.25, 0.2] * 2, "lower", "below"),
        ([0.9, 0.1, 0.5, 0.4] * 2, [0.5, 0.5, 0.4, 0.6] * 2, "higher", "level"),
        ([0.9, 0.8, 0.95, 0.85], [0.2, 0.3, 0.25, 0.2], "higher", "too few images"),
    ],
)
def test_verdict_is_a_paired_test_on_eight_images_or_more(
    values: list, baseline: list, better: str, expected: str
) -> None:
    """The cell's verdict is the paired permutation test against its reference (random maps); on 4
    images the same clear difference is too few images to test, never a mark."""
    record = score(torch.tensor(values), torch.tensor(baseline), better)
    assert record["verdict"] == expected and record["reference"] == "random"
    assert record["against"]["random"]["n"] == len(values)
    assert (record["against"]["random"]["p"] is None) == (expected == "too few images")


def test_a_cell_is_tested_against_each_of_its_baselines() -> None:
    values = torch.linspace(0.6, 0.9, 12)
    baselines = {"random": torch.full((12,), 0.2), "edges": values.flip(0), "centre": values - 0.3}
    record = score(values, baselines, "higher")
    assert list(record["against"]) == ["random", "edges", "centre"] and record["baseline"] == pytest.approx(0.2)
    marks = {name: test["mark"] for name, test in record["against"].items()}
    assert marks == {"random": "above", "edges": "level", "centre": "above"}
    assert record["against"]["random"]["low"] > 0 and record["against"]["edges"]["low"] < 0


def test_spearman_and_ssim_match_scipy_and_skimage_with_ties() -> None:
    rng = np.random.default_rng(0)
    a = rng.random((4, 16, 16))
    b = a + 0.5 * rng.random((4, 16, 16))
    a[1, :8] = 0  # a CAM's zeros
    b[2] = np.round(b[2] * 2)  # a nearly binary map
    expected = [scipy.stats.spearmanr(x.ravel(), y.ravel())[0] for x, y in zip(a, b, strict=True)]
    np.testing.assert_allclose(spearman(torch.tensor(a), torch.tensor(b)).numpy(), expected, atol=1e-6)
    ua, ub = unit_max(torch.tensor(a)), unit_max(torch.tensor(b))
    expected = [
        skimage.metrics.structural_similarity(x, y, data_range=1.0) for x, y in zip(ua.numpy(), ub.numpy(), strict=True)
    ]
    np.testing.assert_allclose(ssim(ua, ub).numpy(), expected, atol=1e-6)


class RegionModel(nn.Module):
    """Two classes: class 0's logit grows with the contrast |x| inside ``region``, class 1's is fixed."""

    def __init__(self, region: Tensor) -> None:
        super().__init__()
        self.register_buffer("region", region.float())

    def forward(self, x: Tensor) -> Tensor:
        contrast = (x[:, 0].abs() * self.region).flatten(1).sum(dim=1) / self.region.sum()
        return torch.stack([8 * contrast, torch.full_like(contrast, 4.0)], dim=1)


def test_a_map_of_the_true_evidence_beats_random_maps_on_every_faithfulness_score() -> None:
    """A checkerboard: deleting (to 0), blurring or imputing the region removes the model's evidence."""
    region = _mask(slice(4, 10), slice(4, 10), size=16)[0]
    checkerboard = (torch.arange(16)[:, None] + torch.arange(16)[None]) % 2 * 2.0 - 1
    inputs = checkerboard.expand(8, 1, 16, 16).clone()
    probe = faith.Probe(RegionModel(region), inputs, torch.zeros(8, dtype=torch.long), torch.zeros(1, 1, 16, 16))
    params = faith.FaithfulnessParams(shares=[k / 8 for k in range(1, 8)], road_percentages=[0.1, 0.5], random_draws=2)
    truth = faith.per_image(probe, region.float().expand(8, -1, -1) + 0.01 * torch.rand(8, 16, 16), params)
    record = faith.faithfulness(truth, {"random": faith.random_baseline(probe, params)}, params)
    assert {record[name]["verdict"] for name in faith.BETTER} == {"above"}, record
    assert record["curves"]["deletion"][0] == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item(), abs=1e-4)
    assert record["curves"]["deletion"][2] < 0.05 < 0.9 < record["curves"]["insertion"][2]


class CountingModel(nn.Module):
    """Counts the images it is shown."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.seen = 0

    def forward(self, x: Tensor) -> Tensor:
        self.seen += len(x)
        return self.model(x)


def test_the_curves_ends_are_computed_once_per_probe_and_are_the_unmapped_probabilities() -> None:
    """Two maps on one probe, a third on a subset of its images: the image, filled and blurred images are
    forwarded for the first only, and the default grid stays within 24 forward passes per image and map."""
    region = _mask(slice(4, 10), slice(4, 10), size=16)[0]
    inputs = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    model = CountingModel(RegionModel(region))
    probe = faith.Probe(model, inputs, torch.zeros(3, dtype=torch.long), torch.zeros(1, 1, 16, 16))
    params = faith.FaithfulnessParams()
    per_map = 2 * len(params.shares) + 2 * len(params.road_percentages)
    first = faith.per_image(probe, torch.rand(3, 16, 16), params)
    assert model.seen == 3 * (3 + per_map) and per_map <= 24
    second = faith.per_image(probe, torch.rand(3, 16, 16), params)
    assert model.seen == 3 * (3 + 2 * per_map)
    with torch.no_grad():
        image = torch.softmax(model.model(inputs), dim=1)[:, 0]
        filled = torch.softmax(model.model(torch.zeros_like(inputs)), dim=1)[:, 0]
        start = torch.softmax(model.model(faith.blurred(inputs, params.blur_sigma)), dim=1)[:, 0]
    for curves in (first, second):
        torch.testing.assert_close(curves["deletion"][:, [0, -1]], torch.stack([image, filled], dim=1))
        torch.testing.assert_close(curves["insertion"][:, [0, -1]], torch.stack([start, image], dim=1))
    rows = torch.tensor([2, 0])
    third = faith.per_image(probe.subset(rows), torch.rand(2, 16, 16), params)
    assert model.seen == 3 * (3 + 2 * per_map) + 2 * per_map, "a method's subset reuses the ends"
    torch.testing.assert_close(third["insertion"][:, [0, -1]], torch.stack([start, image], dim=1)[rows])


def test_the_area_is_taken_over_the_share_axis() -> None:
    """A curve at 1 only at share 0 and 0 from the first step (1%) on has area 0.005, not 1 / (2 x steps)."""
    params = faith.FaithfulnessParams()
    curve = torch.zeros(1, len(params.grid))
    curve[0, 0] = 1
    assert faith.area(curve, params.grid).item() == pytest.approx(params.grid[1] / 2)
    assert faith.area(torch.tensor([params.grid]), params.grid).item() == pytest.approx(0.5)


@pytest.mark.parametrize("shares", [[], [0.0, 0.5], [0.5, 1.0], [0.2, 0.1], [0.1, 0.1], [1.5]])
def test_the_share_grid_must_increase_strictly_inside_zero_and_one(shares: list[float]) -> None:
    with pytest.raises(ValueError, match="shares"):
        faith.FaithfulnessParams(shares=shares)


def test_deletion_goes_tile_by_tile_by_the_tiles_mean() -> None:
    """4 x 4 tiles (patch 0.5 of 8 px): a tile of 0.6 goes before a tile whose one pixel is 1 (mean
    1/16, second); with ``patch=0`` that pixel goes first."""
    maps = torch.zeros(1, 8, 8)
    maps[0, 4:, 4:] = 0.6
    maps[0, 0, 0] = 1.0
    tiled = faith.pixel_ranks(faith.patch_means(maps, 0.5), torch.Generator().manual_seed(0))
    assert set(tiled[0].reshape(8, 8)[4:, 4:].flatten().tolist()) == set(range(16))
    assert 16 <= tiled[0, 0] < 32, "its tile, mean 1/16, goes second"
    assert faith.pixel_ranks(faith.patch_means(maps, 0.0), torch.Generator().manual_seed(0))[0, 0] == 0


def test_tied_pixels_are_ordered_at_random_but_repeatably() -> None:
    flat = torch.zeros(2, 8, 8)
    first = faith.pixel_ranks(flat, torch.Generator().manual_seed(0))
    again = faith.pixel_ranks(flat, torch.Generator().manual_seed(0))
    assert torch.equal(first, again) and not torch.equal(first[0], torch.arange(64))
    assert sorted(first[0].tolist()) == list(range(64))


def test_cascade_leaves_the_model_and_the_global_random_state_alone() -> None:
    model = small_fer_cnn()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    steps = [{key: value.clone() for key, value in copy.state_dict().items()}
             for _, copy in cascade(model, ["head", "stem"], 42)]  # fmt: skip
    assert torch.equal(torch.rand(1), expected), "the cascade draws from a forked random state"
    assert all(torch.equal(value, model.state_dict()[key]) for key, value in before.items())
    head, stem = steps
    assert not torch.equal(head["head.fc2.weight"], before["head.fc2.weight"])
    assert torch.equal(head["stem.conv.weight"], before["stem.conv.weight"])
    assert not torch.equal(stem["stem.conv.weight"], before["stem.conv.weight"])


def test_max_sensitivity_is_the_largest_relative_change() -> None:
    reference = torch.ones(1, 2, 2)
    perturbed = torch.stack([torch.ones(2, 2) * 1.5, torch.ones(2, 2) * 0.0])  # changes of 0.5 and 1.0
    assert relative_change(reference, perturbed, samples=2).item() == pytest.approx(1.0)


@pytest.mark.parametrize("channels", [1, 3])
def test_edge_maps_of_inputs_are_skimage_sobel_of_the_gray_or_luminance(channels: int) -> None:
    images = np.random.default_rng(channels).random((2, 12, 9, channels))
    expected = [skimage.filters.sobel(skimage.color.rgb2gray(image) if channels == 3 else image[..., 0])
                for image in images]  # fmt: skip
    got = robust.edge_maps_of_inputs(torch.tensor(images).permute(0, 3, 1, 2))
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-12)


def test_edge_sensitivity_is_max_sensitivity_of_sobel_maps_on_the_same_noisy_copies() -> None:
    inputs = torch.randn(3, 1, 10, 10, generator=torch.Generator().manual_seed(0))
    params = robust.RobustnessParams(samples=5)

    def sobel_method(model: nn.Module, images: Tensor, targets: Tensor) -> dict[str, Tensor]:
        return {"": robust.edge_maps_of_inputs(images)}

    reference = {"": robust.edge_maps_of_inputs(inputs)}
    expected = robust.max_sensitivity(sobel_method, nn.Identity(), inputs, torch.zeros(3), reference, params)[""]
    torch.testing.assert_close(robust.edge_sensitivity(inputs, params), expected)
    assert (expected > 0).all() and robust.RobustnessParams().samples >= 20


def test_imputation_solves_every_system_when_the_easy_ones_leave_the_batch_early() -> None:
    """Conjugate gradients drop converged systems: a one-pixel hole (a few iterations) and a 90% hole
    (many) in one batch are both solved to within 0.005 of a tight float64 solve."""
    images = torch.nn.functional.avg_pool2d(torch.randn(3, 1, 36, 36, generator=torch.Generator().manual_seed(0)), 5, 1)
    removed = torch.zeros(3, 32, 32, dtype=torch.bool)
    removed[0, 10, 10] = True
    removed[1, :, 3:] = True
    removed[2, 4:28, 4:28] = True
    found = noisy_linear_imputation(images, removed, 0.0, torch.Generator())
    exact = noisy_linear_imputation(images.double(), removed, 0.0, torch.Generator(), iterations=5000, tolerance=1e-12)
    assert (found.double() - exact).abs().amax().item() < 0.005
    assert torch.equal(found[~removed[:, None]], images[~removed[:, None]])


def test_imputation_in_cache_sized_chunks_solves_as_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a CPU the systems go in chunks (here of 2 of the 6 image channels): every chunk is solved,
    in order, to within the solver's tolerance of the one-batch solution, and the noise is the same."""
    generator = torch.Generator().manual_seed(1)
    images = torch.nn.functional.avg_pool2d(torch.randn(2, 3, 20, 20, generator=generator), 5, 1)
    removed = torch.rand(2, 16, 16, generator=generator) < torch.tensor([0.2, 0.8])[:, None, None]
    whole = noisy_linear_imputation(images, removed, 0.01, torch.Generator().manual_seed(0))
    solved: list[int] = []
    solve = imputation._conjugate_gradients
    monkeypatch.setattr(imputation, "CPU_CHUNK_BYTES", 2 * 16 * 16 * 4)
    monkeypatch.setattr(imputation, "_conjugate_gradients", lambda *a: solved.append(len(a[1])) or solve(*a))
    chunked = noisy_linear_imputation(images, removed, 0.01, torch.Generator().manual_seed(0))
    assert solved == [2, 2, 2]
    assert (chunked - whole).abs().amax().item() < 0.005 and not torch.equal(whole, images)
    assert torch.equal(chunked[~removed[:, None].expand_as(images)], images[~removed[:, None].expand_as(images)])
