"""The generator prior, a library below :mod:`convlens.explain`: an image generator trained to invert a
layer of the run's classifier, and the denoising autoencoder on its code, for DGN-AM and PPGN
(:mod:`convlens.explain.generator` draws with them; the generate stage, :mod:`convlens.generate`, trains them).

``networks`` defines them, ``encoding`` the fixed encoder, ``training`` the loops, ``settings`` their
settings, ``store`` the ``<run>/generator/`` folder.
"""
