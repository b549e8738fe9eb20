"""What a trained CNN has learned, one module per family of methods.

Each family module holds library functions on batches (e.g. ``vanilla_gradients(model, images,
targets)``, ``feature_maps(model, images, layers)``), which run on the model's device and return
CPU tensors, and, for every method of :mod:`convlens.registry`, its settings dataclass and its
explain function ``explain_<method>(model, batch, params)`` (see :mod:`convlens.explain.method`).
Gradient attributions use captum, the CAM family grad-cam, LIME the lime package; the rest
(deconvnet hooks around captum, feature inversion, activation maximization) is written here
because no library offers it. Import from the family modules; this package imports none of them,
so that loading one family does not load the others.
"""
