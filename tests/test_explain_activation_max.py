"""Activation maximization and class-model images raise their targets from the starting noise."""

from __future__ import annotations

import dataclasses
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch import nn

from convlens.explain.activation_max import (
    AscentParams,
    LayerMaximizations,
    class_model_images,
    maximize_channels,
    most_active_channels,
)
from convlens.models import FerCNN, ResNet


def _models() -> list[tuple[nn.Module, int, int, str]]:
    torch.manual_seed(0)
    return [
        (ResNet(18, 10, 3).eval(), 3, 32, "layer3.1.relu"),
        (FerCNN(7, 1, widths=(8, 16, 32, 64)).eval(), 1, 48, "layer3.relu2"),
    ]


pytestmark = pytest.mark.usefixtures("one_torch_thread")

MODELS = _models()
IDS = ["resnet18-rgb", "fercnn-gray"]


#: Seed-0 models, jitter and L2 but no blur: on an untrained net the gradient is mostly high
#: frequency, which blurring undoes. Here channels 0-3 gain 30x-710x; with the default blur the
#: smallest gain is ~10x, too close to the bar for a test.
TENFOLD = AscentParams(blur_every=0)


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_channel_activation_rises_tenfold(model: nn.Module, channels: int, size: int, layer: str) -> None:
    result = maximize_channels(model, layer, [0, 1, 2, 3], size, TENFOLD)
    assert result.layer == layer and result.targets.tolist() == [0, 1, 2, 3]
    assert result.images.shape == (4, channels, size, size)
    assert result.history.shape == (TENFOLD.steps, 4)
    assert (result.final_activation > 0).all()
    assert (result.final_activation >= 10 * result.start_activation).all()


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_default_regularization_raises_the_activation(model: nn.Module, channels: int, size: int, layer: str) -> None:
    result = maximize_channels(model, layer, [5, 6], size, AscentParams(steps=32))
    assert torch.isfinite(result.images).all()
    assert (result.final_activation > result.start_activation).all()


def test_each_class_scores_highest_on_its_own_class_model_image() -> None:
    """Default settings, seed-0 FerCNN: each class scores higher on its own image than on average on
    the other classes' images (margins 0.02-0.06 here, and 0.06-0.15 for a seed-0 ResNet-18)."""
    model, _, size, _ = MODELS[1]
    result = class_model_images(model, range(7), size)
    assert result.layer == "logits" and result.images.shape == (7, 1, size, size)
    with torch.no_grad():
        scores = model(result.images)
    assert torch.allclose(scores.diagonal(), result.final_activation, atol=1e-5)
    others = (scores.sum(0) - scores.diagonal()) / 6
    assert (scores.diagonal() > others).all()
    assert (result.final_activation > result.start_activation).all()


@pytest.mark.parametrize(("model", "channels", "size", "layer"), MODELS, ids=IDS)
def test_class_models_run_on_both_models(model: nn.Module, channels: int, size: int, layer: str) -> None:
    result = class_model_images(model, [0, 2], size, AscentParams(steps=8))
    assert result.images.shape == (2, channels, size, size) and torch.isfinite(result.images).all()


def test_bad_targets_are_reported() -> None:
    with pytest.raises(ValueError, match="steps=0 must be >= 1"):
        AscentParams(steps=0)
    model, _, size, layer = MODELS[1]
    with pytest.raises(ValueError, match=r"channel 32 out of range for layer 'layer3.relu2' with 32 channels"):
        maximize_channels(model, layer, [0, 32], size)
    with pytest.raises(ValueError, match="unknown layer 'layer3.relu9'; valid layers: stem"):
        maximize_channels(model, "layer3.relu9", [0], size)
    with pytest.raises(ValueError, match="class 7 out of range for a model with 7 classes"):
        class_model_images(model, [7], size)


def test_the_most_active_live_channels_are_chosen_and_dead_ones_named() -> None:
    """A channel that never fires (its batch-norm shift far below zero) grows no image: it is left out."""
    torch.manual_seed(0)
    model = FerCNN(7, 1, widths=(8, 16, 32, 64)).eval()
    model.stem.bn.bias.data[3] = -100.0
    images = torch.randn(4, 1, 48, 48, generator=torch.Generator().manual_seed(0))
    channels, note = most_active_channels(model, images, "stem.relu", top_k=8)
    assert 3 not in channels and len(channels) == 7
    means = model.stem.relu(model.stem.bn(model.stem.conv(images))).mean(dim=(0, 2, 3))
    assert channels == [c for c in means.argsort(descending=True).tolist() if c != 3]
    assert note == (
        "stem.relu: the 7 most active of its 8 channels on the 4 images explained; "
        "1 channel never fires on them and is left out"
    )
    model.stem.bn.bias.data[3] = 0.0
    assert most_active_channels(model, images, "stem.relu", top_k=8)[1] == (
        "stem.relu: the 8 most active of its 8 channels on the 4 images explained; none is zero on all 4 (a channel "
        "zero on one image may fire on another)"
    )


def test_a_channel_the_ascent_never_raises_is_a_failed_image_named_in_the_notes() -> None:
    """FER2013's layer4 gave every panel 'ch N: 0' without a word: a channel left at 0 is failed, said so."""
    torch.manual_seed(0)
    model = FerCNN(7, 1, widths=(8, 16, 32, 64)).eval()
    model.stem.bn.bias.data[3] = -100.0  # channel 3 cannot fire: its image stays noise
    found = maximize_channels(model, "stem.relu", [3, 1], (48, 48), AscentParams(steps=4))
    notes = LayerMaximizations({"stem.relu": found}, {"stem.relu": "chosen by hand"}).notes()
    assert found.final_activation[0] <= 0 < found.final_activation[1]
    assert notes[-1].startswith("stem.relu: 1 of 2 channel images failed (channel 3): the ascent from noise")
    working = maximize_channels(model, "stem.relu", [1], (48, 48), AscentParams(steps=4))
    assert LayerMaximizations({"stem.relu": working}, {"stem.relu": "chosen by hand"}).notes() == ["chosen by hand"]


def test_a_class_model_the_model_does_not_answer_is_failed_named_and_drawn_in_red() -> None:
    """FER2013's Disgust class model ended at logit -0.23 without a word: a class-model image the model gives
    under 0.5 of its class is failed. A class whose logit is held far below the others cannot reach it."""
    torch.manual_seed(0)
    model = FerCNN(3, 1, widths=(8, 16, 32, 64)).eval()
    model.head.fc2.bias.data[1] = -100.0  # class 1 loses to the others on any image
    found = class_model_images(model, range(3), 48, AscentParams(steps=16))
    with torch.no_grad():
        expected = torch.softmax(model(found.images), dim=1).diagonal()
    assert torch.allclose(found.probabilities, expected, atol=1e-6)
    assert 1 in found.failed() and all(found.probabilities[row] < 0.5 for row in found.failed())
    probability = {row: f"{float(found.probabilities[row]):.2f}" for row in found.failed()}  # rows are classes
    best, answer = torch.softmax(model(found.images), dim=1).detach().max(dim=1)
    assert answer[1] != 1, "class 1's image is answered by another class"
    read = {row: f"{int(answer[row])} {float(best[row]):.2f}" for row in found.failed()}
    numbers = "; ".join(f"{row} {probability[row]}, read as {read[row]}" for row in found.failed())
    assert found.notes()[0].startswith(f"{len(found.failed())} of 3 class-model images failed ({numbers}): ")
    named = dataclasses.replace(found, class_names=("calm", "disgust", "joy"))
    names = "; ".join(
        f"{('calm', 'disgust', 'joy')[row]} {probability[row]}, read as "
        f"{('calm', 'disgust', 'joy')[int(answer[row])]} {float(best[row]):.2f}"
        for row in found.failed()
    )
    assert f"class-model images failed ({names}): " in named.notes()[0], "named by the run's class names"
    readings = named.readings()["failed"]
    assert [found["class"] for found in readings] == [("calm", "disgust", "joy")[row] for row in found.failed()]
    assert all(found["read_as"] != found["class"] and found["probability"] < 0.5 for found in readings)
    assert replace(named, probabilities=torch.full((3,), 0.9)).readings() == {}, "none failed: nothing to record"
    assert found.scores(None) == {"median_class_probability": round(float(np.median(found.probabilities.numpy())), 3)}
    from types import SimpleNamespace

    from convlens.figures.activation_max import draw_class_model

    figure = draw_class_model(found, SimpleNamespace(title="t", class_names=["a", "b", "c"]), None)[0].figure()
    titles = {axes.get_title(): axes.title.get_color() for axes in figure.axes if axes.get_title()}
    failed = next(title for title in titles if title.startswith("b: "))
    assert failed.endswith(f",\nfailed: read as {'abc'[int(answer[1])]}") and titles[failed] == "red"
    confident = replace(found, probabilities=torch.full((3,), 0.9))
    assert confident.failed() == [] and confident.notes() == []


def test_a_channel_silent_on_the_starting_noise_still_rises() -> None:
    """A ReLU channel that is 0 everywhere on the start has no gradient through the ReLU: FER2013's layer4 left 4
    of 6 channels at 0. The ascent follows a leaky ReLU of the same input, so the channel comes alive."""
    from convlens.explain.activation_max import MaximizedChannels, _channel_objective, _maximize

    torch.manual_seed(0)
    model = FerCNN(7, 1, widths=(8, 16, 32, 64)).eval()
    model.stem.bn.bias.data[0] = -0.3  # silent on the small starting noise, reachable by a stronger input
    config = AscentParams(steps=64, l2_weight=0.0)  # no decay: the plain ReLU's image cannot move at all
    found = maximize_channels(model, "stem.relu", [0], (48, 48), config)
    assert found.start_activation[0] == 0 < found.final_activation[0]
    assert LayerMaximizations({"stem.relu": found}, {"stem.relu": "chosen by hand"}).notes() == ["chosen by hand"]
    channel = torch.tensor([0])
    plain = _maximize(model, "stem.relu", channel, _channel_objective(model, "stem.relu", channel), (48, 48), config,
                      MaximizedChannels)  # fmt: skip
    assert plain.final_activation[0] == 0, "through the ReLU itself the channel stays silent"


def test_the_scores_are_the_median_of_an_even_count_not_its_lower_half() -> None:
    """torch's ``median`` returns the lower of the two middle values: the captions quoted 0.988 for
    channels reaching 0, 0.837, 0.988, 1.16, 1.42 and 1.44, whose median is 1.07."""
    from convlens.explain.activation_max import ClassModels, MaximizedChannels

    reached = torch.tensor([0.0, 0.837, 0.988, 1.16, 1.42, 1.44])
    images = torch.zeros(6, 1, 2, 2)
    channels = MaximizedChannels("stem", torch.arange(6), images, torch.zeros(6), reached, torch.zeros(1, 6))
    assert channels.scores(None) == {"median_activation_reached": 1.074}
    probabilities = torch.tensor([0.2, 0.4, 0.6, 1.0])
    models = ClassModels("logits", torch.arange(4), images[:4], torch.zeros(4), probabilities, torch.zeros(1, 4),
                         probabilities)  # fmt: skip
    assert models.scores(None) == {"median_class_probability": 0.5}


def test_the_manifest_keeps_a_methods_readings() -> None:
    """A result's ``readings()`` (the failed class models and what they are read as) reach the manifest's method
    record, where the report sets them beside the confusion matrix; an empty one is left out like empty notes."""
    from convlens.visualize.methods import MethodResult

    found = {"failed": [{"class": "Fear", "probability": 0.0, "read_as": "Surprise", "read_as_probability": 1.0}]}
    assert MethodResult(1.0, [], readings=found).summary({})["readings"] == found
    assert "readings" not in MethodResult(1.0, []).summary({})
