"""The method registry: every visualization method is declared here once, and nowhere else.

The visualize stage runs the registered methods and lists them in the manifest; the report places
their figures into sections, numbered by enumeration, and titles them, all from this table. An
entry names its functions by ``"module:attribute"`` path; they are imported only when a method runs,
so the report reads the registry without importing torch.

Adding a method: write its explain function and its settings dataclass (``convlens.explain``), its
figure function (``convlens.figures``), and one :func:`register` call (here, or in your own code
before the stage runs); ``docs/architecture.md`` walks through an example. The stage, the config
schema, the manifest and the report pick it up.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any, Literal

from omegaconf import DictConfig, OmegaConf


@dataclass(frozen=True)
class Section:
    """A report section of visualizations; ``layout`` ``methods`` shows each method's figures in
    turn, ``per_class`` groups them by the true class of their image (next to that class's results)."""

    key: str
    title: str
    about: str
    layout: Literal["methods", "per_class"] = "methods"


@dataclass(frozen=True)
class MethodSpec:
    """One visualization method.

    ``compute``: ``(model, batch: ExplainBatch, params) -> result``, the method's explain function.
    ``draw``: ``(result, shown: Shown, params) -> list[Drawn]``, its figure function.
    ``parameters``: the dataclass of its settings, whose field defaults are the only defaults.
    ``long_running``: hundreds of forward/backward passes; the stage starts these first.
    ``applies_to``: ``(model) -> str | None``, why the method cannot apply to a model (None: it can).
    ``costly``: too costly to recompute for every randomization step / noise draw; the evaluation
    families that recompute maps leave it out by default (their ``skip`` setting, see
    :func:`costly_methods`).
    ``localise``: ``(model, batch, params) -> result`` giving only the maps the evaluation scores, where
    ``compute`` also computes what only the figure shows (None: the evaluation runs ``compute``).
    ``detail``: its figures are numbers for who checks them, not pictures to read: the report folds them.
    ``explains_class``: its maps depend on the class explained (a class with no correct pick then has its
    mistake explained for itself too, :meth:`~convlens.visualize.context.Chosen.explained`); a method that
    describes the image alone (feature maps, reconstructions) would only draw the same figure twice.
    ``product_of``: the methods whose maps this one multiplies (a layered one at the same layer): its checks are
    its own and do not carry over to them, which the report says where they differ.
    ``weak_below``: (score, threshold) pairs: a per-image score of the method's results under its threshold means
    that result explains little (LIME's local R²); the figure's note and the report's caption count them.
    """

    name: str
    title: str
    section: str
    compute: str
    draw: str
    parameters: str
    long_running: bool = False
    applies_to: str | None = None
    costly: bool = False
    localise: str | None = None
    detail: bool = False
    explains_class: bool = False
    product_of: tuple[str, ...] = ()
    weak_below: tuple[tuple[str, float], ...] = ()


SECTIONS: tuple[Section, ...] = (
    Section(
        "filters",
        "Filters",
        "The first convolution's weights drawn as images, the only weights that live in pixel space (Zeiler & "
        "Fergus 2014 read trained ones as edge and colour detectors; for kernels of 3x3 or more, the note above the "
        "figure counts the oriented ones against random filters of the same shape).",
    ),
    Section(
        "features",
        "Feature maps and activation charts",
        "What chosen layers output for test images, and which channels respond most strongly.",
    ),
    Section(
        "reconstructions",
        "Reconstructions",
        "Strong channels projected back to pixel space with the deconvnet (Zeiler & Fergus 2014; in a residual "
        "network also split into a block's residual and shortcut path), plain and guided backprop, and images "
        "reconstructed from a layer's features alone (feature inversion, Mahendran & Vedaldi 2015).",
    ),
    Section(
        "synthesis",
        "Activation maximization",
        "Inputs grown by gradient ascent to excite one channel, or one class score (class models, Simonyan et "
        "al. 2014), with jitter, blur and an L2 penalty as regularizers.",
    ),
    Section(
        "generator",
        "Activation maximization with a generator prior",
        "Per class, what the class logit wants, drawn in pixel space, in the code space of a generator trained to "
        "invert the classifier's features (DGN-AM, Nguyen et al. 2016) and sampled with a denoising prior on that "
        "code (PPGN-h, Nguyen et al. 2017), with confidence and realism (`make generate`; docs/generator.md).",
    ),
    Section(
        "saliency",
        "Saliency per class",
        "Saliency (Simonyan et al. 2014): the absolute input gradient of the class score, the pixels whose "
        "change moves the score most.",
    ),
    Section(
        "guided",
        "Guided backprop variants",
        "Guided backprop (Springenberg et al. 2015): the input gradient with negative gradients stopped at every "
        "ReLU, whole and as its positive and negative parts.",
    ),
    Section(
        "smoothgrad",
        "SmoothGrad",
        "SmoothGrad (Smilkov et al. 2017): the gradient averaged over noisy copies of the image, meant to "
        "average out its speckle; beside it, guided SmoothGrad, the same average of guided-backprop gradients "
        "(shown only: the checks of section 6 score the vanilla map).",
    ),
    Section(
        "contributions",
        "Gradient x input and Integrated Gradients",
        "Signed contributions of each pixel to the class score (red for, blue against): gradient x input, the "
        "gradient times the normalised input, whose zero is the normalisation's mean colour (a pixel of that "
        "colour contributes nothing, whatever its gradient), and Integrated Gradients (Sundararajan et al. "
        "2017), the gradient integrated from a black image.",
    ),
    Section(
        "cam",
        "Grad-CAM, Guided Grad-CAM, LayerCAM",
        "Class activation maps per stage: Grad-CAM (Selvaraju et al. 2017) weighs a stage's channels by their mean "
        "gradient, Guided Grad-CAM multiplies that with guided backprop, LayerCAM (Jiang et al. 2021) weighs "
        "each position by its positive gradient; each column gives the size the map was computed at.",
    ),
    Section(
        "lime",
        "LIME per class",
        "LIME (Ribeiro et al. 2016): a linear model fit to the class probability of copies with superpixels "
        "hidden; in every column and the bars, red superpixels speak for the class and blue against it (the "
        "signed scale of the other attribution maps); each bar gives its superpixel's coefficient, the change in "
        "the class probability the linear model gives its presence, and R² under the bars how much of the "
        "probability that model explains (near 0: the explanation explains little).",
        layout="per_class",
    ),
)

#: Method name (config, manifest, folder) -> its declaration, in the default order.
METHODS: dict[str, MethodSpec] = {}


def register(spec: MethodSpec) -> MethodSpec:
    """Add ``spec`` (its section must exist, its name must be new); returns it."""
    if spec.name in METHODS:
        raise ValueError(f"a method named {spec.name!r} is registered already")
    if spec.section not in {section.key for section in SECTIONS}:
        raise ValueError(f"method {spec.name!r}: unknown section {spec.section!r}; sections: {section_keys()}")
    METHODS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a method (for methods registered by tests or plug-ins)."""
    METHODS.pop(name, None)


def section_keys() -> list[str]:
    return [section.key for section in SECTIONS]


def section_methods(section: Section) -> list[str]:
    """Names of the methods shown in ``section``, in registry order."""
    return [name for name, spec in METHODS.items() if spec.section == section.key]


def title(name: str) -> str:
    """A method's figure title; its name when it is not registered (e.g. read from an old manifest)."""
    spec = METHODS.get(name)
    return spec.title if spec else name


def weak_below(name: str) -> dict[str, float]:
    """Method ``name``'s :attr:`MethodSpec.weak_below` thresholds by score (none for an unregistered method)."""
    spec = METHODS.get(name)
    return dict(spec.weak_below) if spec else {}


def costly_methods() -> list[str]:
    """The methods declared ``costly``: the default ``skip`` of the evaluation families that recompute maps."""
    return [name for name, spec in METHODS.items() if spec.costly]


def load(path: str) -> Any:
    """The object ``"package.module:attribute"`` names."""
    module, _, attribute = path.partition(":")
    return getattr(import_module(module), attribute)


def method_settings(name: str, given: Mapping[str, Any] | None) -> Any:
    """Method ``name``'s settings dataclass built from ``given`` (a mapping or config node), as the
    visualize stage builds it and the evaluate stage rebuilds it from the manifest; unknown names and
    values out of range are refused with the key."""
    if name not in METHODS:
        raise ValueError(f"unknown visualization method {name!r}; valid methods: {', '.join(METHODS)}")
    params_type = load(METHODS[name].parameters)
    values = OmegaConf.to_container(given, resolve=True) if OmegaConf.is_config(given) else dict(given or {})
    valid = [field.name for field in dataclasses.fields(params_type)]
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise ValueError(
            f"visualize.params.{name}: unknown parameter(s) {', '.join(unknown)}; valid: {', '.join(valid) or 'none'}"
        )
    try:
        return params_type(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"visualize.params.{name}: {error}") from error


def writable(node: DictConfig) -> None:
    """Settings dataclasses are frozen, which OmegaConf turns into read-only nodes; a stage's config
    must be able to set their fields (the dataclass is rebuilt, and checked, when it is used)."""
    OmegaConf.set_readonly(node, None)
    for key in node:
        child = node[key]
        if isinstance(child, DictConfig):
            writable(child)


def _method(name: str, title_: str, section: str, family: str, params: str, **extra: Any) -> MethodSpec:
    """A convlens method: ``explain_<name>`` and its settings ``params`` in ``convlens.explain.<family>``,
    ``draw_<name>`` in ``convlens.figures.<family>``."""
    return register(
        MethodSpec(
            name,
            title_,
            section,
            compute=f"convlens.explain.{family}:explain_{name}",
            draw=f"convlens.figures.{family}:draw_{name}",
            parameters=f"convlens.explain.{family}:{params}",
            **extra,
        )
    )


def _map_method(name: str, title_: str, section: str, family: str, params: str, **extra: Any) -> MethodSpec:
    """A convlens method whose maps explain a class (:attr:`MethodSpec.explains_class`)."""
    return _method(name, title_, section, family, params, explains_class=True, **extra)


_method("filters", "First-layer filters", "filters", "filters", "FiltersParams")
_method("feature_maps", "Feature maps", "features", "features", "FeatureMapsParams")
_method("activation_chart", "Mean activation per channel", "features", "features", "ActivationChartParams", detail=True)
_method("deconvnet", "Deconvnet (top channels)", "reconstructions", "deconvnet", "DeconvnetParams")
_method(
    "deconvnet_paths",
    "Deconvnet: residual vs shortcut path",
    "reconstructions",
    "deconvnet",
    "DeconvnetPathsParams",
    applies_to="convlens.explain.deconvnet:residual_paths_reason",
)
_method("backprop_reconstruction", "Backprop reconstruction", "reconstructions", "deconvnet", "ReconstructionParams")
_method(
    "guided_reconstruction", "Guided backprop reconstruction", "reconstructions", "deconvnet", "ReconstructionParams"
)
_method("feature_inversion", "Feature inversion", "reconstructions", "inversion", "InversionParams", long_running=True)
_method(
    "activation_maximization",
    "Activation maximization",
    "synthesis",
    "activation_max",
    "ActivationMaxParams",
    long_running=True,
)
_method("class_model", "Class-model images", "synthesis", "activation_max", "ClassModelParams", long_running=True)
_method("generator_training", "Generator prior: training", "generator", "generator", "GeneratorTrainingParams")
_method(
    "generator_prior",
    "Pixel space vs DGN-AM vs PPGN-h",
    "generator",
    "generator",
    "GeneratorPriorParams",
    long_running=True,
)
_map_method(
    "saliency", "Saliency (vanilla gradient)", "saliency", "attribution", "SaliencyParams",
    localise="convlens.explain.attribution:localise_saliency",
)  # fmt: skip
_map_method("guided_backprop", "Guided backprop", "guided", "attribution", "GuidedBackpropParams")
_map_method(
    "smoothgrad", "SmoothGrad", "smoothgrad", "smoothgrad", "SmoothGradParams", long_running=True,
    localise="convlens.explain.smoothgrad:localise_smoothgrad",
)  # fmt: skip
_map_method("gradient_x_input", "Gradient x input", "contributions", "attribution", "GradientXInputParams")
_map_method("integrated_gradients", "Integrated Gradients", "contributions", "attribution", "IntegratedGradientsParams")
_map_method("grad_cam", "Grad-CAM", "cam", "cam", "CamParams")
_map_method("guided_grad_cam", "Guided Grad-CAM", "cam", "cam", "CamParams", product_of=("guided_backprop", "grad_cam"))
_map_method("layer_cam", "LayerCAM", "cam", "cam", "CamParams")
_map_method(
    "lime", "LIME", "lime", "lime", "LimeParams", long_running=True, costly=True,
    weak_below=(("local_r2", 0.3),),  # a local linear model under R² 0.3 describes little of the answer's changes
)  # fmt: skip
