"""What a trained CNN has learned, one module per family of methods.

Every method takes ``(model, images, targets_or_layers, ...)`` batched, runs on the model's device
and returns CPU tensors or arrays; ``convlens.figures`` turns them into PNGs and
``convlens.visualize`` runs them as a stage. Gradient attributions use captum, the CAM family
grad-cam, LIME the lime package; the rest is written here where no library offers it.
"""

from convlens.explain.activation_max import AscentConfig, Maximization, class_model_images, maximize_channels
from convlens.explain.attribution import (
    GuidedBackpropMaps,
    contribution_map,
    gradient_x_input,
    guided_backprop_maps,
    guided_gradients,
    integrated_gradients,
    saliency_map,
    smoothgrad,
    vanilla_gradients,
)
from convlens.explain.cam import grad_cam, guided_grad_cam, layer_cam
from convlens.explain.deconvnet import (
    Projections,
    compare_methods,
    project_channel,
    project_top_channels,
    residual_vs_shortcut,
)
from convlens.explain.features import FeatureMaps, feature_maps, top_channels
from convlens.explain.filters import FirstConvFilters, first_conv_filters
from convlens.explain.inversion import Inversion, InversionConfig, invert_features
from convlens.explain.layers import (
    capture_activations,
    default_feature_layers,
    eval_mode,
    first_conv_name,
    last_relu,
    layer_names,
    layer_output,
    resolve_layer,
)
from convlens.explain.lime import LimeExplanation, classifier_fn, lime_explanations, slic_segmenter
from convlens.explain.selection import Selection, predict, select_examples, select_test_images

__all__ = [
    "AscentConfig",
    "FeatureMaps",
    "FirstConvFilters",
    "GuidedBackpropMaps",
    "Inversion",
    "InversionConfig",
    "LimeExplanation",
    "Maximization",
    "Projections",
    "Selection",
    "capture_activations",
    "class_model_images",
    "classifier_fn",
    "compare_methods",
    "contribution_map",
    "default_feature_layers",
    "eval_mode",
    "feature_maps",
    "first_conv_filters",
    "first_conv_name",
    "grad_cam",
    "gradient_x_input",
    "guided_backprop_maps",
    "guided_grad_cam",
    "guided_gradients",
    "integrated_gradients",
    "invert_features",
    "last_relu",
    "layer_cam",
    "layer_names",
    "layer_output",
    "lime_explanations",
    "maximize_channels",
    "predict",
    "project_channel",
    "project_top_channels",
    "residual_vs_shortcut",
    "resolve_layer",
    "saliency_map",
    "select_examples",
    "select_test_images",
    "slic_segmenter",
    "smoothgrad",
    "top_channels",
    "vanilla_gradients",
]
