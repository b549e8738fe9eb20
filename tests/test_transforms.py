"""The device-side batch transforms against the reference transforms they replace (torchvision's
RandomCrop(padding) + RandomHorizontalFlip, Resize, Normalize, TenCrop): same statistics, same pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from scipy.stats import chi2_contingency, chisquare
from torchvision import transforms
from torchvision.transforms.v2 import functional as v2f

from convlens.data.transforms import AugmentSettings, BatchTransform, random_crop, random_hflip, random_rotate, resize

PADDING = 4
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def position_coded(count: int) -> torch.Tensor:
    """uint8 (count, 3, 32, 32) images whose pixels say where they are: channel 0 = row + 1,
    channel 1 = column + 1 (0 only in the zero padding), channel 2 = the image's index mod 256."""
    rows = torch.arange(1, 33, dtype=torch.uint8)[:, None].expand(32, 32)
    cols = torch.arange(1, 33, dtype=torch.uint8)[None, :].expand(32, 32)
    images = torch.stack([rows, cols, torch.zeros(32, 32, dtype=torch.uint8)])[None].repeat(count, 1, 1, 1)
    images[:, 2] = (torch.arange(count) % 256).to(torch.uint8)[:, None, None]
    return images


def decode(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row offset, column offset, flipped) of each crop of position-coded images, read at a pixel that
    every crop keeps inside the image (row/column ``PADDING``) and its right neighbour."""
    flipped = out[:, 1, PADDING, PADDING + 1].long() < out[:, 1, PADDING, PADDING].long()
    row = out[:, 0, PADDING, PADDING].long() - 1
    col_pixel = torch.where(flipped, out[:, 1, PADDING, 31 - PADDING], out[:, 1, PADDING, PADDING])
    return row, col_pixel.long() - 1, flipped


def expected_crop(image: torch.Tensor, row: int, col: int, flipped: bool) -> torch.Tensor:
    window = F.pad(image, (PADDING,) * 4)[:, row : row + 32, col : col + 32]
    return window.flip(-1) if flipped else window


def test_crop_and_flip_match_torchvision_statistics_and_pixels() -> None:
    count = 4000
    images = position_coded(count)
    generator = torch.Generator().manual_seed(0)
    ours = random_hflip(random_crop(images, PADDING, generator), generator)
    rows, cols, flips = decode(ours)
    for index in range(0, count, 97):  # the content is the padded image's window, mirrored when flipped
        assert torch.equal(ours[index], expected_crop(images[index], rows[index], cols[index], flips[index]))

    torch.manual_seed(0)
    reference = transforms.Compose([transforms.RandomCrop(32, padding=PADDING), transforms.RandomHorizontalFlip()])
    theirs = torch.stack([reference(image) for image in images[:1500]])
    ref_rows, ref_cols, ref_flips = decode(theirs)

    values = 2 * PADDING + 1
    for ours_offsets, ref_offsets in ((rows, ref_rows), (cols, ref_cols)):
        counts = torch.bincount(ours_offsets, minlength=values).numpy()
        assert len(counts) == values, "offsets outside 0..2p"
        assert chisquare(counts).pvalue > 1e-3, f"offsets not uniform over {values} values: {counts}"
        table = np.stack([counts, torch.bincount(ref_offsets, minlength=values).numpy()])
        assert chi2_contingency(table).pvalue > 1e-3, f"offset distribution differs from torchvision: {table}"
    joint = torch.bincount(rows * values + cols, minlength=values * values)
    assert (joint > 0).all(), "every (row, column) offset pair occurs"
    assert abs(flips.float().mean().item() - 0.5) < 0.03
    assert abs(ref_flips.float().mean().item() - flips.float().mean().item()) < 0.06


@pytest.mark.parametrize("fill", ["replicate", "reflect"])
def test_crop_fill_repeats_the_image_edge_instead_of_black(fill: str) -> None:
    """torchvision's RandomCrop(padding_mode="edge"/"reflect") windows: no black frame on any crop."""
    images = position_coded(300)
    ours = random_crop(images, PADDING, torch.Generator().manual_seed(0), fill)
    rows, cols, _ = decode(ours)
    assert len(set(rows.tolist())) == 2 * PADDING + 1, "every offset occurs"
    for index in range(0, 300, 7):
        padded = F.pad(images[index], (PADDING,) * 4, mode=fill)
        assert torch.equal(ours[index], padded[:, rows[index] : rows[index] + 32, cols[index] : cols[index] + 32])
    assert (ours[:, :2] > 0).all(), "no pixel of the zero padding"


def test_unknown_crop_fill_is_refused() -> None:
    with pytest.raises(ValueError, match="crop_fill"):
        AugmentSettings(crop_padding=2, crop_fill="black")


def test_every_sample_gets_its_own_draws() -> None:
    rows, cols, flips = decode(random_hflip(random_crop(position_coded(64), PADDING)))
    assert len(set(rows.tolist())) > 3 and len(set(cols.tolist())) > 3
    assert 0 < flips.sum() < 64


def test_output_shape_dtype_and_range() -> None:
    transform = BatchTransform(64, MEAN, STD, AugmentSettings(crop_padding=PADDING, hflip=True))
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    low = (0 - torch.tensor(MEAN)) / torch.tensor(STD)
    high = (1 - torch.tensor(MEAN)) / torch.tensor(STD)
    for train in (True, False):
        x = transform(images, train=train)
        assert x.shape == (8, 3, 64, 64) and x.dtype == torch.float32 and torch.isfinite(x).all()
        per_channel = x.transpose(0, 1).flatten(1)
        assert (per_channel.min(1).values >= low - 1e-4).all() and (per_channel.max(1).values <= high + 1e-4).all()
        display = transform.to_display(x)
        assert display.min() >= 0 and display.max() <= 1
    assert transform(images, train=True).is_contiguous(memory_format=torch.channels_last), "the model's layout"


@pytest.mark.parametrize(("size", "target"), [(32, 224), (48, 40), (64, 32)])
def test_resize_matches_torchvision(size: int, target: int) -> None:
    x = torch.rand(4, 3, size, size)
    expected = v2f.resize(x, [target, target], antialias=True)
    assert torch.allclose(resize(x, target), expected, atol=1e-5)


def test_upsampling_matches_pil_resize_of_the_plain_pipeline() -> None:
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    ours = resize(images.float() / 255, 224)
    pil = torch.stack([transforms.ToTensor()(transforms.Resize(224)(Image.fromarray(i.permute(1, 2, 0).numpy())))
                       for i in images])  # fmt: skip
    assert (ours - pil).abs().max() <= 2 / 255  # PIL rounds to uint8 after interpolating


def test_normalization_matches_normalize() -> None:
    images = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    reference = transforms.Normalize(MEAN, STD)
    same_size = BatchTransform(32, MEAN, STD, AugmentSettings())
    assert torch.allclose(same_size(images, train=False), reference(images.float() / 255), atol=1e-5)
    upsampled = BatchTransform(96, MEAN, STD, AugmentSettings())
    expected = reference(v2f.resize(images.float() / 255, [96, 96], antialias=True))
    assert torch.allclose(upsampled(images, train=False), expected, atol=1e-5)


def test_seeded_generator_gives_identical_batches() -> None:
    augment = AugmentSettings(crop_padding=PADDING, hflip=True, rotate_degrees=10, erase_prob=0.5)
    transform = BatchTransform(48, (0.5,), (0.25,), augment)
    images = torch.randint(0, 256, (16, 1, 48, 48), dtype=torch.uint8)
    first = transform(images, train=True, generator=torch.Generator().manual_seed(3))
    second = transform(images, train=True, generator=torch.Generator().manual_seed(3))
    other = transform(images, train=True, generator=torch.Generator().manual_seed(4))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert torch.equal(transform(images, train=False), transform(images, train=False)), "evaluation is not random"


def test_ten_crop_views_are_torchvisions_ten_crops_of_the_padded_image() -> None:
    transform = BatchTransform(64, MEAN, STD, AugmentSettings(crop_padding=PADDING))
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    views = transform.views(images, "ten_crop")
    assert views.shape == (10, 3, 3, 64, 64)
    crops = transforms.TenCrop(32)(F.pad(images, (PADDING,) * 4))
    expected = [transform(crop, train=False) for crop in crops]
    unmatched = list(range(10))
    for view in expected:  # the same ten views; the order of the mirrored five differs from torchvision's
        match = next(i for i in unmatched if torch.allclose(views[i], view, atol=1e-6))
        unmatched.remove(match)
    assert torch.allclose(views[0], transform(images, train=False), atol=1e-6), "view 0 is the centre"
    hflip = transform.views(images, "hflip")
    assert torch.allclose(hflip[1], transform(images, train=False).flip(-1), atol=1e-5)


def test_rotation_by_zero_degrees_is_identity() -> None:
    x = torch.rand(4, 1, 48, 48)
    assert torch.allclose(random_rotate(x, 0.0), x, atol=1e-5)


def test_rotation_turns_each_image_by_its_own_angle() -> None:
    x = torch.zeros(64, 1, 33, 33)
    x[:, :, 16, 4:29] = 1  # a horizontal bar through the centre
    rotated = random_rotate(x, 30.0, torch.Generator().manual_seed(0))
    rows, cols = torch.meshgrid(torch.arange(33.0) - 16, torch.arange(33.0) - 16, indexing="ij")
    weight = rotated[:, 0]
    slope = (weight * rows * cols).sum((1, 2)) / (weight * cols * cols).sum((1, 2))  # least-squares tan(angle)
    angles = torch.rad2deg(torch.atan(slope)).abs()
    assert angles.max() <= 31 and len(set(angles.round().tolist())) > 10


def test_erasing_covers_the_configured_share() -> None:
    augment = AugmentSettings(erase_prob=1.0, erase_scale=(0.02, 0.2))
    transform = BatchTransform(48, (0.0,), (1 / 255,), augment)  # maps uint8 255 to 255 * 255: never 0
    out = transform(torch.full((200, 1, 48, 48), 255, dtype=torch.uint8), train=True)
    erased = (out == 0).float().mean((1, 2, 3))
    side = 48 * torch.tensor([0.02, 0.2]).sqrt()  # a square of that share, give or take a pixel per side
    low, high = ((side + torch.tensor([-1.0, 1.0])) ** 2 / 48**2).tolist()
    assert (erased >= low).all() and (erased <= high).all()
    assert erased.std() > 0.03, "each sample draws its own size"
