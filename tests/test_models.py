"""The models: torchvision's parameter counts, any input size and channel count, shared conventions."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pytest
import torch
import torchvision
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import nn

from convlens.config import validate
from convlens.models import NAMED_STAGES, RESNET_SPECS, VGG, VGG_SPECS, AlexNet, FerCNN, GoogLeNet, ResNet
from convlens.models.alexnet import stem_stride

#: Each architecture at 1000 classes next to torchvision's builder of the same architecture.
TORCHVISION_TWINS: dict[str, tuple[Callable[[], nn.Module], Callable[[], nn.Module]]] = {
    "alexnet": (AlexNet, lambda: torchvision.models.alexnet()),
    **{
        f"vgg{depth}_bn": (
            lambda depth=depth: VGG(depth),
            lambda depth=depth: getattr(torchvision.models, f"vgg{depth}_bn")(),
        )
        for depth in VGG_SPECS
    },
    "googlenet": (GoogLeNet, lambda: torchvision.models.googlenet(aux_logits=False, init_weights=True)),
}

#: Small builds of every architecture (1000 classes, 3 channels unless given).
BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "resnet18": lambda **kw: ResNet(18, **kw),
    "resnet50": lambda **kw: ResNet(50, **kw),
    "alexnet": AlexNet,
    "vgg11": lambda **kw: VGG(11, **kw),
    "vgg16": lambda **kw: VGG(16, **kw),
    "googlenet": GoogLeNet,
}


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("depth", sorted(RESNET_SPECS))
def test_resnet_parameter_count_equals_torchvision(depth: int) -> None:
    ours = sum(p.numel() for p in ResNet(depth, num_classes=10).parameters())
    reference = getattr(torchvision.models, f"resnet{depth}")(num_classes=10)
    assert ours == sum(p.numel() for p in reference.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION_TWINS))
def test_parameter_count_equals_torchvision_at_1000_classes(name: str) -> None:
    ours, theirs = TORCHVISION_TWINS[name]
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        assert count(ours()) == count(theirs())


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("channels", [1, 3])
def test_forward_any_input_size_and_channel_count(name: str, channels: int) -> None:
    model = BUILDERS[name](num_classes=5, in_channels=channels).eval()
    for size in (32, 48, 64, 224):
        if name == "alexnet":
            model = AlexNet(num_classes=5, in_channels=channels, image_size=size).eval()
        with torch.no_grad():
            assert model(torch.randn(1, channels, size, size)).shape == (1, 5), f"{size} px"


@pytest.mark.parametrize("model_class", [VGG, GoogLeNet])
def test_min_input_size_is_the_smallest_input_that_runs(model_class: type[nn.Module]) -> None:
    model = model_class(num_classes=3).eval()
    smallest = model_class.min_input_size
    with torch.no_grad():
        assert model(torch.randn(1, 3, smallest, smallest)).shape == (1, 3)
        with pytest.raises(RuntimeError):
            model(torch.randn(1, 3, smallest - 1, smallest - 1))


def test_alexnet_keeps_torchvision_stride_from_63_px_and_strides_less_below() -> None:
    assert [stem_stride(size) for size in (224, 63, 62, 48, 35, 34, 32, AlexNet.min_input_size)] == [
        4,
        4,
        2,
        2,
        2,
        1,
        1,
        1,
    ]
    smallest = AlexNet.min_input_size
    with torch.no_grad():
        assert AlexNet(3, image_size=smallest).eval()(torch.randn(1, 3, smallest, smallest)).shape == (1, 3)
    with pytest.raises(ValueError, match=r"model.image_size=20 is too small for AlexNet; use >= 21"):
        AlexNet(image_size=smallest - 1)


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 64)])
def test_resnet_forward_shapes(channels: int, size: int) -> None:
    model = ResNet(18, num_classes=7, in_channels=channels).eval()
    assert model(torch.randn(2, channels, size, size)).shape == (2, 7)


def test_the_stem_pool_ablation_swaps_only_the_pool() -> None:
    """``stem_pool=avg`` (docs/spatial_bias.md's ablation) keeps every weight and shape; an unknown pool is refused."""
    paper, ablation = ResNet(18, num_classes=7), ResNet(18, num_classes=7, stem_pool="avg")
    assert isinstance(paper.stem.pool, nn.MaxPool2d) and isinstance(ablation.stem.pool, nn.AvgPool2d)
    assert not any(isinstance(module, nn.MaxPool2d) for module in ablation.modules())
    assert paper.state_dict().keys() == ablation.state_dict().keys() and count(paper) == count(ablation)
    with torch.no_grad():
        assert ablation.eval()(torch.randn(2, 3, 65, 65)).shape == (2, 7)
    with pytest.raises(ValueError, match=r"model.stem_pool='mean'; choose one of max, avg"):
        ResNet(18, stem_pool="mean")


def test_resnet_width_factor_scales_every_stage() -> None:
    model = ResNet(50, num_classes=7, width_factor=0.25)
    assert model.stem.conv.out_channels == 16
    assert [getattr(model, f"layer{i}")[0].residual.conv1[0].out_channels for i in range(1, 5)] == [16, 32, 64, 128]
    assert model.head.fc.in_features == 128 * 4


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_width_factor_makes_a_smaller_model_that_runs_and_refuses_torchvision_weights(name: str) -> None:
    full, quarter = BUILDERS[name](num_classes=5), BUILDERS[name](num_classes=5, width_factor=0.25).eval()
    assert count(quarter) < count(full) / 8  # channels x channels: about 1/16 of the weights
    with torch.no_grad():
        assert quarter(torch.randn(1, 3, 64, 64)).shape == (1, 5)
    with pytest.raises(ValueError, match=r"model.weights is set with model.width_factor=0.5: torchvision's weights"):
        BUILDERS[name](width_factor=0.5, weights="weights.pth")
    with pytest.raises(ValueError, match=r"model.width_factor=0 must be positive"):
        BUILDERS[name](width_factor=0)


@pytest.mark.parametrize("channels", [1, 3])
def test_fer_cnn_forward_shapes(channels: int) -> None:
    model = FerCNN(num_classes=7, in_channels=channels, widths=(8, 16, 32, 64)).eval()
    assert model(torch.randn(2, channels, 48, 48)).shape == (2, 7)


def test_unknown_depth_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"model.depth=19 .*18, 34, 50, 101, 152"):
        ResNet(19)
    with pytest.raises(ValueError, match=r"model.depth=18 is not a VGG .*11, 13, 16, 19"):
        VGG(18)


def test_googlenet_transform_input_needs_rgb() -> None:
    with pytest.raises(ValueError, match=r"transform_input needs RGB input, but model.in_channels=1"):
        GoogLeNet(in_channels=1, transform_input=True)


CONVENTION_MODELS = {
    "r18": lambda: ResNet(18, 10),
    "r50": lambda: ResNet(50, 10),
    "fer": lambda: FerCNN(7, 1, widths=(8, 16, 32, 64)),
    "alexnet": lambda: AlexNet(10, image_size=64),
    "vgg11": lambda: VGG(11, 10),
    "googlenet": lambda: GoogLeNet(10, transform_input=True),
}


@pytest.mark.parametrize("make", CONVENTION_MODELS.values(), ids=CONVENTION_MODELS.keys())
def test_conventions_named_stages_and_one_relu_module_per_use(make: Callable[[], nn.Module]) -> None:
    model = make()
    assert [name for name, _ in model.named_children()] == list(NAMED_STAGES)
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert relus and not any(relu.inplace for relu in relus)
    calls = {id(relu): 0 for relu in relus}
    hooks = [relu.register_forward_hook(lambda m, i, o: calls.__setitem__(id(m), calls[id(m)] + 1)) for relu in relus]
    with torch.no_grad():
        model.eval()(torch.randn(1, model.in_channels, 64, 64))
    for hook in hooks:
        hook.remove()
    assert set(calls.values()) == {1}, "every ReLU module must be used exactly once per forward"
    for module in model.modules():
        if type(module).__module__.startswith("convlens."):
            assert "relu(" not in inspect.getsource(type(module).forward).replace("self.relu(", "")
            assert hasattr(model, "min_input_size")


def test_residual_blocks_start_as_identity_mapping() -> None:
    model = ResNet(18, 10)
    block = model.layer1[0]
    assert torch.count_nonzero(block.residual.conv2[1].weight) == 0


@pytest.mark.parametrize("name", ["alexnet", "vgg11", "vgg16", "googlenet"])
@pytest.mark.parametrize("data", ["shapes", "faces"])  # 32 px RGB, 48 px gray
def test_model_configs_compose_validate_and_fit_the_data(
    name: str, data: str, compose_train: Callable[..., DictConfig]
) -> None:
    cfg = compose_train("experiment=demo_shapes", f"model={name}", f"data={data}")
    validate(cfg)
    assert cfg.model.weights is None
    model = instantiate(cfg.model).eval()
    size = cfg.data.image_size
    with torch.no_grad():
        assert model(torch.randn(1, cfg.data.channels, size, size)).shape == (1, cfg.data.num_classes)
