"""The built-in synthetic datasets: reproducible from a seed, balanced, masked, and not linearly easy."""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf
from sklearn.linear_model import RidgeClassifier

from convlens.data.synthetic import (
    CHUNK,
    FACES_CLASSES,
    FACES_SIZE,
    SHAPES_CLASSES,
    SHAPES_SIZE,
    SyntheticSource,
    make_faces,
    make_shapes,
)
from convlens.untrusted import instantiate_allowed

#: (generator, number of classes, image side, channels)
DATASETS = {
    "shapes": (make_shapes, len(SHAPES_CLASSES), SHAPES_SIZE, 3),
    "faces": (make_faces, len(FACES_CLASSES), FACES_SIZE, 1),
}


@pytest.fixture(params=sorted(DATASETS))
def dataset(request):
    return DATASETS[request.param]


def test_same_seed_same_data_other_seed_other_data(dataset) -> None:
    make, *_ = dataset
    first, again, other = make(50, seed=3), make(50, seed=3), make(50, seed=4)
    for field in ("images", "labels", "masks"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.array_equal(first.images, other.images)


def test_shapes_dtypes_and_balance(dataset) -> None:
    make, num_classes, size, channels = dataset
    n = 10 * num_classes + 3
    split = make(n, seed=0)
    assert split.images.shape == (n, size, size, channels) and split.images.dtype == np.uint8
    assert split.labels.shape == (n,) and split.labels.dtype == np.int64
    assert split.masks.shape == (n, size, size) and split.masks.dtype == bool
    counts = np.bincount(split.labels, minlength=num_classes)
    assert counts.max() - counts.min() <= 1, f"classes are balanced, got {counts}"
    assert split.images.std() > 20, "images use the intensity range, not a flat grey"


def test_every_sample_is_rendered_with_its_evidence_region(dataset) -> None:
    """Across chunk boundaries every image has content and a mask that is a part of the frame."""
    make, *_ = dataset
    split = make(2 * CHUNK + 1, seed=1)
    coverage = split.masks.mean(axis=(1, 2))
    assert coverage.min() > 0.01 and coverage.max() < 0.6, (coverage.min(), coverage.max())
    per_image_std = split.images.reshape(len(split.labels), -1).std(axis=1)
    assert per_image_std.min() > 5, "no blank image anywhere in the split"


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_bad_sample_count_is_rejected(dataset, bad) -> None:
    make, *_ = dataset
    with pytest.raises(ValueError, match="n must be a positive integer"):
        make(bad, seed=0)


def test_a_linear_classifier_on_pixels_stays_below_60_percent(dataset) -> None:
    """The demos must need a CNN: the best of several ridge-regularised linear classifiers on
    standardised pixels, fitted on 3,000 images, stays below 60% on 1,000 held-out ones."""
    make, *_ = dataset
    train, test = make(3000, seed=1), make(1000, seed=2)
    x_train = train.images.reshape(len(train.labels), -1).astype(np.float32) / 255
    x_test = test.images.reshape(len(test.labels), -1).astype(np.float32) / 255
    mean, std = x_train.mean(axis=0), x_train.std(axis=0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    scores = {
        alpha: RidgeClassifier(alpha=alpha).fit(x_train, train.labels).score(x_test, test.labels)
        for alpha in (10.0, 1_000.0, 100_000.0)
    }
    assert max(scores.values()) < 0.6, scores
    assert max(scores.values()) > 1.5 / len(np.unique(train.labels)), "above chance: the data has signal"


@pytest.mark.parametrize("target", ["convlens.data.synthetic.SyntheticSource", "convlens.data.sources.SyntheticSource"])
def test_the_source_builds_from_its_target_and_from_older_runs_target(target: str) -> None:
    """conf/data/shapes.yaml's target, and the one older run directories' config.yaml hold (the
    source lived in convlens/data/sources.py), build the same data."""
    node = OmegaConf.create({"_target_": target, "kind": "shapes", "train_size": 8, "val_size": 4, "test_size": 4})
    arrays = instantiate_allowed(node, "data.source").load()
    assert len(arrays.train.labels) == 8 and arrays.class_names == tuple(SHAPES_CLASSES)
    np.testing.assert_array_equal(arrays.test.images, make_shapes(4, 2).images)


def test_shapes_drawn_at_another_side_are_the_same_scene_scaled() -> None:
    """At 65 px every length scales with the side: the same shapes at the same places, covering the same
    share of the frame, with the anti-aliased edge still one pixel wide (so the masks match to within it)."""
    small, large = make_shapes(40, seed=5), make_shapes(40, seed=5, size=65)
    assert large.images.shape == (40, 65, 65, 3)
    np.testing.assert_array_equal(small.labels, large.labels)
    np.testing.assert_allclose(large.masks.mean(axis=(1, 2)), small.masks.mean(axis=(1, 2)), atol=0.03)
    downsized = large.masks[:, ::2, ::2][:, :32, :32]
    assert (downsized != small.masks).mean() < 0.05, "the objects sit where the 32 px scene has them"


@pytest.mark.parametrize("bad", [7, 0, 40.0, True])
def test_shapes_side_below_8_or_not_an_integer_is_rejected(bad) -> None:
    with pytest.raises(ValueError, match="size must be an integer side of at least 8 px"):
        make_shapes(4, seed=0, size=bad)


def test_the_source_draws_shapes_at_its_size_and_refuses_a_size_for_faces() -> None:
    node = {"_target_": "convlens.data.synthetic.SyntheticSource", "train_size": 4, "val_size": 4, "test_size": 4}
    arrays = instantiate_allowed(OmegaConf.create({**node, "kind": "shapes", "size": 65}), "data.source").load()
    np.testing.assert_array_equal(arrays.test.images, make_shapes(4, 2, size=65).images)
    with pytest.raises(ValueError, match=r"data.source.size=65: only \['shapes'\] can be drawn at another side"):
        SyntheticSource("faces", 4, 4, 4, size=65)
