"""Figures for the layer/filter family: panels, titles, colour scales, and PNG output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from layout import figure_layout_defects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.image import AxesImage, imread

from convlens.atomic import save_figure
from convlens.explain.filters import first_conv_filters
from convlens.figures.activation_max import image_grid_figure
from convlens.figures.attribution import gradient_images_figure, map_figure
from convlens.figures.comparison import comparison_figure
from convlens.figures.evaluation import cascade_figure
from convlens.figures.features import channel_activations_figure, feature_maps_figure
from convlens.figures.filters import filter_channels_figure, filter_grid_figure
from convlens.figures.inversion import inversion_figure
from convlens.figures.lime import weight_bars
from convlens.figures.panels import Caption
from convlens.models import FerCNN, ResNet


def _images(figure: Figure) -> list[AxesImage]:
    return [image for ax in figure.axes for image in ax.get_images()]


@pytest.mark.parametrize("channels", [1, 3])
def test_filter_figures(channels: int, tmp_path: Path) -> None:
    filters = first_conv_filters(ResNet(18, 10, channels))
    grid = filter_grid_figure(filters.images.numpy(), "filters @ stem.conv")
    assert len(_images(grid)) == 64 and grid.get_suptitle() == "filters @ stem.conv"
    per_channel = filter_channels_figure(filters.signed.numpy(), "per channel")
    mosaics = _images(per_channel)
    assert len(mosaics) == channels
    assert all(image.get_clim() == (-1, 1) and image.get_cmap().name == "RdBu_r" for image in mosaics)
    assert mosaics[0].get_array().shape == (8 * 8 - 1, 8 * 8 - 1)  # 8x8 kernels of 7 px, 1 px gaps
    titles = [ax.get_title() for ax in per_channel.axes[:channels]]
    assert titles == (["R", "G", "B"] if channels == 3 else ["gray"])
    path = save_figure(grid, tmp_path / "nested" / "grid.png")
    assert path.exists() and imread(path).shape[0] > 100


def test_feature_map_figures_share_one_scale_and_highlight_top_channels(tmp_path: Path) -> None:
    maps = np.random.default_rng(0).random((10, 6, 6))
    maps[3] *= 5
    image = np.random.default_rng(1).random((48, 48, 1))
    figure = feature_maps_figure(maps, "maps @ layer4", channels=[3, 0, 1], image=image)
    drawn = _images(figure)
    assert len(drawn) == 4  # the input and three maps
    assert [ax.get_title() for ax in figure.axes[1:4]] == ["ch 3", "ch 0", "ch 1"]
    top = np.quantile(maps[[3, 0, 1]], 0.995)  # a few hot pixels do not set the layer's scale
    assert all(image.get_clim() == (0.0, top) for image in drawn[1:]) and top < maps[[3, 0, 1]].max()
    ranked = feature_maps_figure(maps, "maps @ layer4", channels=[3, 0, 1], image=image, ranked=1)
    assert [ax.get_title() for ax in ranked.axes[1:4]] == ["ch 3, #1", "ch 0", "ch 1"]
    title = " ".join(ranked.texts[0].get_text().split())  # the title wraps to the figure's width
    assert title.endswith(
        "the 1 most active channels first (#rank, by mean activation), then the lowest-numbered others"
    )
    bars = channel_activations_figure(maps.mean((1, 2)), "mean activation", highlight=[3, 7])
    colours = [to_hex(patch.get_facecolor()) for patch in bars.axes[0].patches]
    assert colours[3] == colours[7] == to_hex("tab:orange") and colours[0] == to_hex("tab:gray")
    assert save_figure(bars, tmp_path / "bars.png").stat().st_size > 0


def test_activation_bars_single_out_only_some_channels_and_keep_their_labels_apart() -> None:
    """The top 8 of an 8-channel stem were all orange under "the 8 most active channels highlighted": a
    layer with no more channels than that is drawn plain. Labels of adjacent channels (60 and 61 overlapped)
    step apart, and the highest label stays inside the axes."""
    all_of_them = channel_activations_figure(np.linspace(1, 2, 8), "stem", highlight=list(range(8)))
    assert {to_hex(patch.get_facecolor()) for patch in all_of_them.axes[0].patches} == {to_hex("tab:gray")}
    assert not all_of_them.axes[0].texts
    values = np.ones(64)
    values[[60, 61, 54]] = [3.0, 4.2, 4.6]
    some = channel_activations_figure(values, "layer4", highlight=[54, 60, 61])
    axes = some.axes[0]
    some.canvas.draw()
    boxes = {text.get_text(): text.get_window_extent() for text in axes.texts}
    assert not boxes["60"].overlaps(boxes["61"]), "neighbours' labels step apart"
    inside = axes.get_window_extent()
    assert all(box.y1 <= inside.y1 and inside.x0 <= box.x0 and box.x1 <= inside.x1 for box in boxes.values())


def test_reconstruction_figures(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    synthesized = rng.normal(size=(5, 16, 16, 3)) * 3
    grid = image_grid_figure(synthesized, [f"ch {c}" for c in range(5)], "activation max @ layer3", columns=4)
    drawn = _images(grid)
    assert len(drawn) == 5 and len(grid.axes) == 8
    assert all(image.get_array().min() >= 0 and image.get_array().max() <= 1 for image in drawn)
    losses = {"stem.relu": np.geomspace(1, 0.01, 65), "layer4.relu2": np.geomspace(1, 0.001, 65)}
    inverted = {layer: rng.normal(size=(48, 48, 1)) for layer in losses}
    figure = inversion_figure(rng.random((48, 48, 1)), inverted, losses, "inversion")
    assert [ax.get_title() for ax in figure.axes[:3]] == ["input", "from stem.relu", "from layer4.relu2"]
    assert figure.axes[-1].get_yscale() == "log" and len(figure.axes[-1].get_lines()) == 2
    assert imread(save_figure(figure, tmp_path / "inversion.png")).ndim == 3


def test_fer_filters_draw_in_gray() -> None:
    filters = first_conv_filters(FerCNN(7, 1, widths=(8, 16, 32, 64)))
    figure = filter_grid_figure(filters.images.numpy(), "filters")
    assert all(image.get_array().ndim == 2 and image.get_cmap().name == "gray" for image in _images(figure))


def test_a_panel_that_shows_nothing_says_so() -> None:
    """An all-zero map (or projection) would look like a finding: the panel is labelled instead."""
    image = np.random.default_rng(0).random((16, 16, 3))
    caption = Caption("saliency", "cat", "cat", "cat", 0.9)
    flat = map_figure(image, {"saliency": np.zeros((16, 16))}, caption)
    texts = [text.get_text() for ax in flat.axes for text in ax.texts]
    assert texts.count("all zero") == 2  # the map alone and over the image
    shown = gradient_images_figure(image, {"constant": np.full((16, 16), 0.3), "live": image}, caption)
    assert [text.get_text() for ax in shown.axes for text in ax.texts] == ["constant"]


def test_the_cascade_figure_has_a_colour_bar_and_nothing_clipped() -> None:
    """The randomization cascade is a grid of maps: it needs the key to their scale like every map grid."""
    rng = np.random.default_rng(0)
    stages = ["head", "layer4", "layer3", "layer2", "layer1", "stem"]
    rows = {f"Grad-CAM layer{n}": [rng.random((12, 12)) for _ in range(len(stages) + 1)] for n in (2, 3, 4)}
    curves = {label: {"spearman": [0.5] * len(stages), "ssim": [0.4] * len(stages)} for label in rows}
    rows["Grad-CAM layer2"][2] = np.zeros((12, 12))  # a randomised layer with no positive evidence
    figure = cascade_figure(rng.random((48, 48, 1)), rows, stages, curves)
    assert figure_layout_defects(figure, "cascade", map_grid=True) == []
    assert [text.get_text() for ax in figure.axes for text in ax.texts] == ["all zero"]


def test_each_method_has_its_own_curve_panel_with_a_colour_per_layer() -> None:
    """FER2013's cascade drew 14 curves in one panel, the three Grad-CAM layers one brown told apart by dashes, and a
    grader could not read it. One panel per method, titled by it; its layers a colour each, named in a legend;
    Spearman solid, SSIM dotted in the same colour; nothing clipped or overlapping."""
    rng = np.random.default_rng(0)
    stages = ["head", "layer4", "layer3"]
    methods = {"Saliency (vanilla gradient)": "saliency", "SmoothGrad": "smoothgrad"}
    methods |= {f"Grad-CAM layer{n}.relu2": "grad_cam" for n in (2, 3, 4)}
    rows = {label: [rng.random((12, 12)) for _ in range(len(stages) + 1)] for label in methods}
    curves = {label: {"spearman": [0.9, 0.5, 0.1], "ssim": [0.8, 0.4, None]} for label in methods}
    figure = cascade_figure(rng.random((48, 48, 1)), rows, stages, curves, threshold=0.5, methods=methods)
    assert figure_layout_defects(figure, "cascade", map_grid=True) == []
    panels = {axes.get_title(): axes for axes in figure.axes if axes.get_title() and axes.get_lines()}
    assert set(panels) == {"Saliency (vanilla gradient)", "SmoothGrad", "Grad-CAM"}
    cam = panels["Grad-CAM"]
    spearman = [line for line in cam.get_lines() if line.get_linestyle() == "-" and line.get_marker() == "o"]
    ssim = [line for line in cam.get_lines() if line.get_linestyle() == ":"]
    assert len(spearman) == len(ssim) == 3 and len({line.get_color() for line in spearman}) == 3
    assert [line.get_color() for line in spearman] == [line.get_color() for line in ssim]
    assert [text.get_text() for text in cam.get_legend().get_texts()] == [f"layer{n}.relu2" for n in (2, 3, 4)]
    assert panels["SmoothGrad"].get_legend() is None, "one layer: no legend"


@pytest.mark.parametrize("sign", [1, -1])
def test_lime_bars_state_their_values_inside_the_panel(sign: int) -> None:
    """Each bar says its coefficient; a short bar of the other sign than the longest is labelled on the
    side where the panel has room, not past its edge."""
    weights = [(1, 0.3), (2, 0.28), (3, -0.02), (4, 0.01), (5, -0.005)]
    figure = Figure(figsize=(2, 2))
    axes = figure.add_subplot()
    weight_bars(axes, [(segment, sign * weight) for segment, weight in weights], score=0.42)
    figure.canvas.draw()
    expected = ["+0.3", "+0.28", "-0.02", "+0.01", "-0.005"]  # two significant figures: small ones stay readable
    flip = {"+": "-", "-": "+"}
    assert [text.get_text().strip() for text in axes.texts] == [
        *(label if sign > 0 else flip[label[0]] + label[1:] for label in expected),
        "R² 0.42",
    ]
    box = axes.get_window_extent()
    inside = [text.get_window_extent() for text in axes.texts]
    assert all(box.x0 <= text.x0 and text.x1 <= box.x1 and box.y0 <= text.y0 and text.y1 <= box.y1 for text in inside)
    bars = [patch.get_window_extent() for patch in axes.patches]
    assert all(bar.y0 > inside[-1].y1 for bar in bars), "R² in its own slot under the bars, not over one"


def test_lime_weights_share_one_scale_across_rows() -> None:
    """LIME's coefficients are changes in class probability, comparable across images: a row whose weights are 40
    times smaller is drawn 40 times fainter, under a colour bar in that unit; without a limit each row fills its
    own scale (the other methods' maps)."""
    from convlens.figures.grid import grid_figure, map_column
    from convlens.figures.lime import shared_limit

    weights = [np.array([[0.26, -0.1], [0.0, 0.05]]), np.array([[0.0065, -0.006], [0.0, 0.001]])]
    one = map_column("w", weights.__getitem__, signed=True, limit=shared_limit(weights), unit="coefficient")
    shared = grid_figure("t", [0, 1], ["a", "b"], [one])
    own = grid_figure("t", [0, 1], ["a", "b"], [map_column("w", weights.__getitem__, signed=True)])
    peaks = [[float(np.abs(axes.images[-1].get_array()).max()) for axes in figure.axes[:2]] for figure in (shared, own)]
    assert peaks[0] == pytest.approx([1.0, 0.025]) and peaks[1] == pytest.approx([1.0, 1.0])
    assert "colour bars: coefficient, one scale for every row" in [text.get_text() for text in shared.texts]
    bar = shared.axes[-1]
    assert [label.get_text() for label in bar.get_xticklabels()] == ["-0.26", "0", "0.26"]
    assert shared_limit([np.zeros((2, 2))]) == 1.0


def test_the_comparison_figure_labels_a_map_with_no_location() -> None:
    """A CAM flat on an image (zero everywhere) is drawn as the gray image alone: the panel says so."""
    rng = np.random.default_rng(0)
    cam = np.stack([rng.random((16, 16)), np.zeros((16, 16))])
    maps = {"Saliency": rng.random((2, 16, 16)), "Grad-CAM @ layer3": cam}
    figure = comparison_figure(rng.random((2, 16, 16, 3)), maps, ["cat #1", "star #2"], "every method")
    assert [text.get_text() for ax in figure.axes for text in ax.texts].count("all zero") == 1


def test_a_few_extreme_pixels_do_not_flatten_a_gradient_image() -> None:
    """A deep layer's deconvnet projection put nearly all its range in a handful of pixels: min-max
    scaling turned the rest one grey. Clipped at the 0.5th and 99.5th percentiles the rest keeps its
    contrast; a flat image stays flat."""
    from convlens.figures.panels import clipped_unit_range, unit_range

    rng = np.random.default_rng(0)
    image = rng.normal(size=(64, 64))
    image[:2, :2] = 1000.0
    assert unit_range(image)[2:, 2:].std() < 0.01
    shown = clipped_unit_range(image)
    assert shown.min() == 0.0 and shown.max() == 1.0 and shown[2:, 2:].std() > 0.15
    assert not clipped_unit_range(np.full((4, 4), 2.0)).any()


def test_the_filter_mosaic_numbers_its_filters() -> None:
    """The filters' note names filters by number ("filters 2, 5"): the first channel's mosaic shows each
    filter's index; past 64 filters the numbers would cover the kernels and are left out."""
    from convlens.figures.filters import filter_channels_figure

    rng = np.random.default_rng(0)
    figure = filter_channels_figure(rng.uniform(-1, 1, (8, 3, 7, 7)), "stem")
    assert [text.get_text() for text in figure.axes[0].texts] == [str(index) for index in range(8)]
    assert not figure.axes[1].texts and not figure.axes[2].texts
    assert not filter_channels_figure(rng.uniform(-1, 1, (65, 1, 3, 3)), "stem").axes[0].texts


def test_the_parts_figure_colours_each_part_and_names_it() -> None:
    """The report's part shares ("mouth 23%") can be checked against where each part lies: a grader found the
    parts only described ("fixed boxes"), never drawn."""
    from convlens.figures.parts import PART_COLOURS, parts_figure

    parts = np.zeros((2, 8, 8), dtype=np.uint8)
    parts[:, 4:, :] = 1
    figure = parts_figure(np.full((2, 8, 8, 1), 0.5), parts, ("background", "mouth"), ["#1 a", "#2 b"], "parts")
    assert [ax.get_title() for ax in figure.axes] == ["#1 a", "#2 b"]
    overlay = figure.axes[0].get_images()[1]
    assert overlay.get_array()[5, 0] == 1 and overlay.cmap(1.0)[:3] == pytest.approx(
        tuple(int(PART_COLOURS[1][i : i + 2], 16) / 255 for i in (1, 3, 5))
    )
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["background", "mouth"]
    with pytest.raises(ValueError, match="9 parts"):
        parts_figure(np.zeros((1, 8, 8, 1)), parts[:1], tuple("abcdefghi"), ["x"], "too many")


def test_the_colour_bars_note_wraps_to_a_narrow_figure() -> None:
    """The gradient note says one scale serves all of an image's channels: on a three-column figure it ran past the
    right edge of the PNG (backprop reconstructions of the shapes demo), so it wraps, the bars and their low/high
    labels raised above it (FER2013's one-row figures had them printed over its first line)."""
    from convlens.figures.grid import gradient_column, grid_figure

    image = np.random.default_rng(0).random((16, 16, 3))
    for names, lines in ((("stem", "layer4"), 2), (("stem", "layer1", "layer2", "layer3", "layer4"), 1)):
        columns = [gradient_column(name, lambda row: image) for name in names]
        figure = grid_figure("Backprop reconstruction", [0], ["circle"], columns)
        note = next(text for text in figure.texts if text.get_text().startswith("colour bars"))
        assert "over all its channels" in note.get_text() and note.get_text().count("\n") == lines - 1
        assert figure_layout_defects(figure, "gradient", map_grid=False) == []
        renderer = FigureCanvasAgg(figure).get_renderer()
        bars = [axes for axes in figure.axes if hasattr(axes, "_colorbar")]
        labels = [label.get_window_extent(renderer) for bar in bars for label in bar.get_xticklabels()]
        assert len(labels) == 2 * len(names)
        assert all(label.y0 >= note.get_window_extent(renderer).y1 - 1 for label in labels), "low/high over the note"


def test_signed_gradients_put_zero_at_mid_grey() -> None:
    """Guided backprop's "signed gradients" column was scaled between its own percentiles, so mid-grey was the
    image's median, not zero (a grader's review): symmetric about zero now, an all-zero image mid-grey."""
    from convlens.figures.panels import clipped_unit_range, symmetric_unit_range

    values = np.concatenate([np.zeros(50), np.linspace(0.1, 1.0, 40), -np.linspace(0.1, 0.2, 10)])
    shown = symmetric_unit_range(values)
    assert shown[0] == 0.5 and shown[-1] < 0.5 < shown[60] and shown.min() >= 0 and shown.max() <= 1
    assert clipped_unit_range(values)[0] != 0.5, "the percentile scale the column used put zero elsewhere"
    assert np.all(symmetric_unit_range(np.zeros((4, 4))) == 0.5)


def test_lime_bars_of_every_row_share_one_span() -> None:
    """FER2013: a row's bar of -0.0061 was drawn as long as another row's +0.15, each panel scaled to its own
    weights; on the figure's shared span their lengths compare, and every value label stays inside its panel."""
    from convlens.figures.lime import shared_span

    rows = [[(1, 0.15), (2, 0.09)], [(3, -0.0061), (4, 0.004)]]
    span = shared_span(rows)
    assert span == (-0.0061, 0.15)
    figure = Figure(figsize=(4, 2))
    panels = [figure.add_subplot(1, 2, index + 1) for index in range(2)]
    for axes, row in zip(panels, rows, strict=True):
        weight_bars(axes, row, score=0.5, span=span)
    assert panels[0].get_xlim() == panels[1].get_xlim()
    figure.canvas.draw()
    for axes in panels:
        box, texts = axes.get_window_extent(), [text.get_window_extent() for text in axes.texts]
        assert all(box.x0 <= text.x0 and text.x1 <= box.x1 for text in texts)


def test_the_confusion_matrix_prints_the_rate_its_colour_shows() -> None:
    """Coloured by share of the true class, the cells printed counts alone: 37 of 55 looked as dark as 430 of 626."""
    from convlens.figures.confusion import confusion_matrix_figure

    figure = confusion_matrix_figure(np.array([[18, 37], [196, 430]]), ["Disgust", "Neutral"])
    assert [text.get_text() for text in figure.axes[0].texts] == ["18\n33%", "37\n67%", "196\n31%", "430\n69%"]
    assert figure_layout_defects(figure, "confusion", map_grid=False) == []


def test_close_highlighted_channels_of_a_wide_layer_keep_their_labels_apart() -> None:
    """FER2013's layer4 (256 channels): the labels of channels 184 and 188, each on its own bar (1.98, 1.93),
    printed over each other; a group of close channels stands on its highest bar, a line apart, inside the axes."""
    from convlens.figures.features import activation_bars
    from convlens.figures.panels import new_figure

    values = np.full(256, 0.2)
    values[[50, 94, 107, 113, 184, 188, 230, 234]] = [2.05, 2.0, 2.2, 2.1, 1.98, 1.93, 2.1, 2.27]
    figure, axes = new_figure(1, 2, "Mean activation per channel")
    activation_bars(axes[0, 1], values, [50, 94, 107, 113, 184, 188, 230, 234])
    FigureCanvasAgg(figure).draw()
    boxes = [text.get_window_extent() for text in axes[0, 1].texts]
    assert len(boxes) == 8
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1 :]), "labels print over each other"
    inside = axes[0, 1].get_window_extent()
    assert all(box.y1 <= inside.y1 and inside.x0 <= box.x0 and box.x1 <= inside.x1 for box in boxes)


def test_a_short_bar_s_label_stands_at_its_outer_end_where_it_fits() -> None:
    """On the shared span the shapes' +0.052 bar had its label across zero, on the negative side, because that side
    had more room: a label goes beyond its bar's end where it fits there, and across zero only where it does not."""
    figure = Figure(figsize=(2, 2))
    axes = figure.add_subplot()
    weight_bars(axes, [(1, 0.052), (2, -0.14), (3, 0.0)], span=(-0.15, 0.15))
    figure.canvas.draw()
    label = next(text for text in axes.texts if text.get_text().strip() == "+0.052")
    assert label.get_position()[0] == 0.052 and label.get_horizontalalignment() == "left"
    figure = Figure(figsize=(2, 2))
    axes = figure.add_subplot()
    weight_bars(axes, [(1, 0.74), (2, -0.089)], span=(-0.09, 0.74))  # no room left of -0.089: across zero
    label = next(text for text in axes.texts if text.get_text().strip() == "-0.089")
    assert label.get_position()[0] == 0 and label.get_horizontalalignment() == "left"


def test_each_lime_figure_fits_its_scale_to_its_own_rows() -> None:
    """FER2013: the confused pairs' weights (up to 0.14) were drawn on the scale of every LIME figure's rows (0.34),
    faint; each figure's colour bar and bars now end at its own rows' largest coefficient."""
    from convlens.explain.lime import LimeExplanation, LimeExplanations, LimeParams
    from convlens.figures.lime import draw_lime
    from convlens.figures.panels import Caption
    from convlens.figures.shown import Shown

    segments = np.arange(4).repeat(4).reshape(4, 4)

    def explanation(scale: float) -> LimeExplanation:
        weights = {0: scale, 1: -scale / 2, 2: 0.0, 3: scale / 4}
        top = sorted(weights.items(), key=lambda item: -abs(item[1]))[:2]
        return LimeExplanation(0, segments, weights, top, segments == 0, segments == 1, 0.5, 0.3)

    caption = Caption(method="LIME", target="cat", true_label="cat", predicted_label="cat", confidence=0.9)
    display = np.full((2, 4, 4, 3), 0.5)
    shown = Shown("LIME", display, (caption, caption), ("cat_1", "cat_2"), ("correct", "confused"), ("cat", "dog"))
    grids = draw_lime(LimeExplanations([explanation(0.34), explanation(0.14)]), shown, LimeParams())
    ends = {}
    for grid in grids:
        figure = grid.figure()
        colour_bar = figure.axes[-1]
        ends[grid.key] = [label.get_text() for label in colour_bar.get_xticklabels()]
        bars = next(axes for axes in figure.axes if axes.patches)
        assert bars.get_xlim()[1] == pytest.approx(0.34 if grid.key == "correct" else 0.14, rel=0.05)
    assert ends == {"correct": ["-0.34", "0", "0.34"], "confused": ["-0.14", "0", "0.14"]}
