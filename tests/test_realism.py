"""The realism score of the generator-prior methods ranks what is plainly unreal below real images: on a
small FER CNN trained on synthetic faces, sets of constant, noise and pixel-shuffled images score a
higher KID than the yardstick of real held-out sets, and failed samples are named."""

from __future__ import annotations

import pytest
import torch
from conftest import small_fer_cnn
from torch import Tensor, nn

from convlens.data.synthetic.faces import make_faces
from convlens.explain.realism import REALISM_LAYER, RealImages, failure, judge
from convlens.models.layers import eval_mode

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Images per synthesized set, as ``generator_prior`` draws per class by default.
SAMPLES = 3


def _inputs(pixels: Tensor) -> Tensor:
    """Pixels in [0, 1] (N, 1, H, W) as the model's input."""
    return (pixels - 0.5) / 0.25


@pytest.fixture(scope="module")
def faces() -> tuple[nn.Module, Tensor, Tensor]:
    """A FER CNN trained for 150 Adam steps on 400 synthetic faces; 280 held-out faces (pixels) and labels."""
    split = make_faces(680, seed=0)
    pixels = torch.from_numpy(split.images).permute(0, 3, 1, 2).float() / 255
    labels = torch.from_numpy(split.labels).long()
    model = small_fer_cnn().train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    batches = torch.Generator().manual_seed(0)
    for _ in range(150):
        chosen = torch.randint(0, 400, (64,), generator=batches)
        loss = nn.functional.cross_entropy(model(_inputs(pixels[chosen])), labels[chosen])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with eval_mode(model), torch.no_grad():
        accuracy = (model(_inputs(pixels[400:])).argmax(1) == labels[400:]).float().mean()
    assert accuracy > 0.5, f"the test model did not learn the faces ({accuracy:.2f})"
    return model.eval(), pixels[400:], labels[400:]


def _features(model: nn.Module, pixels: Tensor) -> Tensor:
    return judge(model, _inputs(pixels), torch.zeros(len(pixels), dtype=torch.long), REALISM_LAYER)["features"]


def _unreal(real: Tensor, generator: torch.Generator) -> dict[str, Tensor]:
    """Sets as large as ``real`` (S, 1, H, W): grey squares, uniform noise, and ``real`` with its pixels shuffled."""
    constant = torch.linspace(0.2, 0.8, len(real)).view(-1, 1, 1, 1).expand_as(real)
    noise = torch.rand(real.shape, generator=generator)
    shuffled = torch.stack([image.flatten()[torch.randperm(image.numel(), generator=generator)] for image in real])
    return {"constant": constant, "noise": noise, "shuffled": shuffled.view_as(real)}


def test_constant_noise_and_shuffled_sets_score_less_realistic_than_real_held_out_sets(faces) -> None:
    model, pixels, labels = faces
    real = RealImages(_features(model, pixels), labels)
    generator = torch.Generator().manual_seed(1)
    for label in range(7):
        yardstick = real.yardstick(label, SAMPLES, seed=0)
        own = pixels[labels == label][0::2]  # the yardstick's half, not the pool the sets are scored against
        real_set = real.realism(_features(model, own[-SAMPLES:]), label, seed=0)
        for name, unreal in _unreal(own[:SAMPLES], generator).items():
            score = real.realism(_features(model, unreal), label, seed=0)
            assert score > 2 * yardstick and score > real_set, (label, name, score, yardstick)
        assert real_set <= yardstick, (label, real_set, yardstick)


def test_a_constant_or_out_of_range_sample_is_failed_and_a_face_is_not(faces) -> None:
    _, pixels, _ = faces
    face = pixels[0]
    assert failure(face) is None
    assert failure(torch.full_like(face, 0.97)) == "constant"
    assert failure(face * 0.01) == "constant", "a near-black image with a faint trace is a collapsed chain"
    assert failure(face * 3 - 1) == "out of range"
    assert failure(torch.tensor([1.0, 0.9, 0.0]).view(3, 1, 1).expand(3, 48, 48)) == "constant", "a flat yellow"
    assert failure(face.expand(3, -1, -1)) is None
