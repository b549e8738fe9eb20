"""torchvision weights mapped into convlens models: same logits, adapted channels and classes, the
hub cache found by weights name, bad files refused by name. Nothing is downloaded: every file is
saved here from a randomly initialised torchvision model."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from convlens.models import VGG, AlexNet, GoogLeNet, ResNet
from convlens.untrusted import UntrustedInputError

#: torchvision builder -> our model of the same architecture, loading ``weights``.
MAPPINGS: dict[str, Callable[..., nn.Module]] = {
    "alexnet": lambda weights: AlexNet(weights=weights),
    "vgg11_bn": lambda weights: VGG(11, weights=weights),
    "vgg16_bn": lambda weights: VGG(16, weights=weights),
    "googlenet": lambda weights: GoogLeNet(weights=weights),
    "resnet18": lambda weights: ResNet(18, weights=weights),
    "resnet50": lambda weights: ResNet(50, weights=weights),
}
SLOW = {"vgg16_bn"}  # 550 MB of weights written, read and compared


def torchvision_model(arch: str, **kwargs: object) -> nn.Module:
    """A random torchvision model whose BN statistics and affine parameters are random too, so the
    mapping of every tensor shows in the logits."""
    if arch == "googlenet":
        kwargs = {"aux_logits": False, "init_weights": True, **kwargs}
    model = getattr(torchvision.models, arch)(**kwargs)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.normal_(0, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.normal_(0, 0.1)
    return model.eval()


def saved(model: nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)
    return path


def max_logit_difference(theirs: nn.Module, ours: nn.Module, images: torch.Tensor) -> float:
    with torch.no_grad():
        return (theirs(images) - ours.eval()(images)).abs().max().item()


@pytest.mark.parametrize("arch", [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a for a in MAPPINGS])
def test_mapped_weights_give_torchvision_logits(arch: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    theirs = torchvision_model(arch)
    ours = MAPPINGS[arch](saved(theirs, tmp_path / f"{arch}.pth"))
    difference = max_logit_difference(theirs, ours, torch.randn(2, 3, 64, 64))
    print(f"{arch}: max |logit difference| = {difference:.2e}")
    assert difference < 1e-4


def test_googlenet_drops_auxiliary_heads_and_transforms_input_as_torchvision(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    theirs = torchvision_model("googlenet", aux_logits=True, transform_input=True)
    with caplog.at_level(logging.INFO, logger="convlens.models.weights"):
        ours = GoogLeNet(transform_input=True, weights=saved(theirs, tmp_path / "googlenet.pth"))
    assert "dropped" in caplog.text and "auxiliary heads" in caplog.text
    assert max_logit_difference(theirs, ours, torch.randn(2, 3, 64, 64)) < 1e-4


def test_gray_input_sums_the_rgb_filters(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """One channel: the response to a gray image equals torchvision's to the same image as R = G = B."""
    torch.manual_seed(0)
    theirs = torchvision_model("resnet18")
    with caplog.at_level(logging.INFO, logger="convlens.models.weights"):
        ours = ResNet(18, in_channels=1, weights=saved(theirs, tmp_path / "r18.pth")).eval()
    assert "3 input channels adapted to 1" in caplog.text
    gray = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert (theirs(gray.expand(-1, 3, -1, -1)) - ours(gray)).abs().max() < 1e-4
    two = ResNet(18, in_channels=2, weights=tmp_path / "r18.pth")
    assert two.stem.conv.weight.shape[1] == 2


def test_other_class_count_keeps_a_fresh_classifier(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.manual_seed(0)
    theirs = torchvision_model("alexnet")
    torch.manual_seed(1)
    fresh = AlexNet(num_classes=10).state_dict()
    torch.manual_seed(1)
    with caplog.at_level(logging.INFO, logger="convlens.models.weights"):
        ours = AlexNet(num_classes=10, weights=saved(theirs, tmp_path / "alexnet.pth")).state_dict()
    assert "has 1000 classes, the model 10: head.fc3 keeps its fresh initialisation" in caplog.text
    assert torch.equal(ours["head.fc3.weight"], fresh["head.fc3.weight"])
    assert torch.equal(ours["head.fc2.weight"], theirs.state_dict()["classifier.4.weight"])
    assert torch.equal(ours["stem.conv.weight"], theirs.state_dict()["features.0.weight"])


def test_small_input_alexnet_takes_the_same_weights(tmp_path: Path) -> None:
    theirs = torchvision_model("alexnet", num_classes=7)
    ours = AlexNet(num_classes=7, image_size=32, weights=saved(theirs, tmp_path / "alexnet.pth"))
    assert ours.stem_stride == 1
    assert torch.equal(ours.layer4.conv.weight, theirs.features[10].weight)


def test_weights_name_is_found_in_torch_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    with pytest.raises(
        UntrustedInputError, match=r"resnet18-f37072fd.pth is not in torch hub's cache.*never downloads"
    ):
        ResNet(18, weights="IMAGENET1K_V1")
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    theirs = torchvision_model("resnet18")
    saved(theirs, tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    ours = ResNet(18, weights="IMAGENET1K_V1")
    assert max_logit_difference(theirs, ours, torch.randn(1, 3, 64, 64)) < 1e-4


def test_unknown_weights_name_lists_the_names() -> None:
    with pytest.raises(UntrustedInputError, match=r"model.weights=IMAGENET9K is neither a file nor .*IMAGENET1K_V1"):
        ResNet(18, weights="IMAGENET9K")


def test_file_of_another_architecture_is_refused_naming_the_key(tmp_path: Path) -> None:
    path = saved(torchvision.models.resnet18(), tmp_path / "r18.pth")
    with pytest.raises(UntrustedInputError, match=r"r18.pth lacks the weights of 'layer1.0.residual.conv3.0.weight'"):
        ResNet(50, weights=path)
    with pytest.raises(UntrustedInputError, match=r"r18.pth: key 'conv1.weight' belongs to no layer of this model"):
        VGG(11, weights=path)


def test_wrong_shape_is_refused_naming_file_key_and_shapes(tmp_path: Path) -> None:
    state = torchvision.models.resnet18().state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    message = (
        r"bad.pth: 'layer2.0.residual.conv1.0.weight' has shape \(128, 64, 5, 5\) there but \(128, 64, 3, 3\) here"
    )
    with pytest.raises(UntrustedInputError, match=message):
        ResNet(18, weights=tmp_path / "bad.pth")


def test_pickled_code_and_missing_files_are_refused(tmp_path: Path) -> None:
    torch.save({"conv1.weight": torch.zeros(1), "evil": Path("x")}, tmp_path / "code.pth")
    with pytest.raises(UntrustedInputError, match=r"code.pth holds objects other than tensors"):
        ResNet(18, weights=tmp_path / "code.pth")
    with pytest.raises(UntrustedInputError, match=r"weights file .*missing.pth does not exist"):
        ResNet(18, weights=tmp_path / "missing.pth")
    torch.save({"conv1.weight": [1, 2]}, tmp_path / "list.pth")
    with pytest.raises(UntrustedInputError, match=r"list.pth is not a state_dict"):
        ResNet(18, weights=tmp_path / "list.pth")
