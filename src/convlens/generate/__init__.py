"""The generate stage (``make generate``): train a run's generator prior (:mod:`convlens.generator`)
and keep it in ``<run>/generator/``; ``stage`` is its body, ``schema`` its config."""
