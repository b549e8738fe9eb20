"""The visualize stage (``make visualize``): runs the methods of :mod:`convlens.registry` on a trained run.

``stage`` runs a run directory end to end, ``context`` chooses the images, ``methods`` plans and
runs one method, ``pool`` shares the methods out among worker processes, ``schema`` types the config.
"""

from convlens.visualize.stage import visualize, visualize_run

__all__ = ["visualize", "visualize_run"]
