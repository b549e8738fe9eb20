"""The generator prior (``make generate``): an image generator trained to invert a layer of the run's
classifier, and the denoising autoencoder on its code, for DGN-AM and PPGN (:mod:`convlens.explain.generator`).

``networks`` defines them, ``encoding`` the fixed encoder, ``training`` the loops, ``store`` the
``<run>/generator/`` folder, ``stage`` the stage, ``schema`` its config.
"""
