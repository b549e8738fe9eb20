"""The evaluation's random, stratified image sample (convlens.evaluate.sample)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from convlens.evaluate.families import common_images
from convlens.evaluate.inputs import MethodMaps
from convlens.evaluate.sample import SampleSettings, default_size, nested_sample, stratified_sample


def test_sample_keeps_each_class_share_and_is_seeded() -> None:
    labels = np.repeat(np.arange(7), [400, 40, 400, 800, 500, 300, 500])
    sample = stratified_sample(labels, 64, seed=0)
    assert len(sample) == len(set(sample)) == 64 and sample == sorted(sample)
    shares = np.bincount(labels[sample], minlength=7) / 64
    assert np.abs(shares - np.bincount(labels) / len(labels)).max() < 1 / 64 + 1e-9
    assert stratified_sample(labels, 64, seed=0) == sample != stratified_sample(labels, 64, seed=1)


def test_the_default_sample_has_enough_images_per_class_to_compare_classes() -> None:
    """64 on a CPU (256 on a GPU), raised to 8 per class: a balanced 10-class split gets 8 of each, the
    fewest with which the findings name a class's favoured parts."""
    cpu, gpu = torch.device("cpu"), torch.device("meta")
    assert [default_size(cpu, classes) for classes in (2, 7, 8, 10)] == [64, 64, 64, 80]
    assert [default_size(gpu, classes) for classes in (10, 40)] == [256, 320]
    labels = np.repeat(np.arange(10), 100)
    counts = np.bincount(labels[stratified_sample(labels, default_size(cpu, 10), seed=0)], minlength=10)
    assert counts.tolist() == [8] * 10


def test_sample_is_not_the_first_images() -> None:
    labels = np.tile(np.arange(10), 100)
    assert stratified_sample(labels, 64, seed=0) != list(range(64))


def test_small_splits_and_rare_classes() -> None:
    assert stratified_sample(np.arange(5) % 2, 64, seed=0) == [0, 1, 2, 3, 4]
    rare = np.r_[np.zeros(50, int), [1]]
    assert len(stratified_sample(rare, 10, seed=0)) == 10
    with pytest.raises(ValueError, match="evaluate.images=0"):
        stratified_sample(np.arange(10) % 2, 0, seed=0)


def test_the_first_images_of_the_sample_are_a_stratified_sample_too() -> None:
    """Costly methods and the recomputing families take the sample's first images: those must be
    class-balanced on their own, and contained in the whole sample."""
    labels = np.repeat(np.arange(8), 100)
    order = nested_sample(labels, SampleSettings(images=64, small=16, seed=3, explain="predicted"))
    assert len(order) == len(set(order)) == 64
    assert np.bincount(labels[order[:16]], minlength=8).tolist() == [2] * 8
    assert np.bincount(labels[order], minlength=8).tolist() == [8] * 8
    assert order[:16] != sorted(order)[:16], "the prefix is drawn, not the lowest indices"


def test_the_recomputing_families_prefix_is_stratified_inside_the_costly_methods_one() -> None:
    """LIME may take the whole sample while randomization and robustness take 16: each prefix is drawn
    from the next larger one, so the 16 are class-balanced and among LIME's images."""
    labels = np.repeat(np.arange(8), 100)
    settings = SampleSettings(images=64, small=32, seed=3, explain="predicted", prefixes=(16, 16, 64))
    order = nested_sample(labels, settings)
    assert len(order) == len(set(order)) == 64
    counts = [np.bincount(labels[order[:size]], minlength=8).tolist() for size in (16, 32, 64)]
    assert counts == [[2] * 8, [4] * 8, [8] * 8]
    whole = nested_sample(labels, SampleSettings(images=64, small=64, seed=3, explain="predicted", prefixes=(16,)))
    assert np.bincount(labels[whole[:16]], minlength=8).tolist() == [2] * 8
    assert sorted(whole) == sorted(order), "the prefixes reorder the sample, they do not change it"


def test_the_recomputing_families_swap_an_image_with_a_flat_map_for_one_of_its_class() -> None:
    """Randomization and robustness take the sample's prefix, but an image where some method's map is
    flat would leave their cells: it gives way to the next image of the same class whose maps all have
    structure (and stays where no such image is left)."""
    layers = torch.rand(6, 4, 4)
    layers[1] = 0.5  # image 11 (class 1) has a flat Grad-CAM
    flat = MethodMaps("grad_cam", {"layer2": layers}, [10, 11, 12, 13, 14, 15], [0, 1, 0, 1, 0, 1], [0] * 6, {})
    other = MethodMaps("saliency", {"": torch.rand(6, 4, 4)}, flat.index, flat.labels, flat.targets, {})
    chosen = common_images({"grad_cam": flat, "saliency": other}, 2)
    assert chosen == [(10, 0), (13, 0)]  # 11 swapped for 13, the next image of class 1
    layers[3] = layers[5] = 0.5  # no structured image of class 1 is left: 11 stays
    assert common_images({"grad_cam": flat, "saliency": other}, 2) == [(10, 0), (11, 0)]


def test_the_evaluation_recomputes_at_this_machines_speed_settings_and_the_runs_others() -> None:
    """A run visualized with 256 path points per pass (a GPU's choice) is recomputed at the CPU's default;
    the settings that shape the map (steps, baseline) stay as recorded."""
    from convlens.evaluate.recompute import Recompute

    recorded = {"steps": 8, "internal_batch_size": 256, "baseline": "mean"}
    params = Recompute.recorded("integrated_gradients", recorded, torch.zeros(1, 1, 8, 8), 3).params
    assert (params.steps, params.internal_batch_size, params.baseline) == (8, None, "mean")


def test_one_view_accuracy_counts_the_whole_split_only_where_the_run_tests_with_views() -> None:
    """FER2013's ten-crop test numbers are not those of the one-view predictions the maps explain: the evaluate
    stage counts the one-view accuracy over the whole split (in batches), and only where there are test-time views."""
    from types import SimpleNamespace

    from convlens.evaluate.sample import ONE_VIEW_BATCH, one_view_accuracy

    count = ONE_VIEW_BATCH + 44  # two batches
    labels = torch.arange(count) % 3
    images = torch.nn.functional.one_hot((labels + (torch.arange(count) % 4 == 0)) % 3, 3).float()  # 1 in 4 off
    split = SimpleNamespace(images=images, labels=labels)
    data = SimpleNamespace(test_time_augmentation="ten_crop", split=lambda name: split, preprocess=lambda x: x * 2)
    model = torch.nn.Identity()
    found = one_view_accuracy(SimpleNamespace(datamodule=data), model, "test", torch.device("cpu"))
    right = float((torch.arange(count) % 4 != 0).float().mean())  # 225 of 300
    assert found == {"split": "test", "images": count, "accuracy": round(right, 6), "views": "ten_crop"}
    data.test_time_augmentation = "none"
    assert one_view_accuracy(SimpleNamespace(datamodule=data), model, "test", torch.device("cpu")) is None
