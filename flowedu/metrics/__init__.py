"""Measures of how close two distributions are: divergences between samples or densities, and image metrics.

One module per family, each listing its public names in ``__all__`` (re-exported here).
"""

from flowedu._reexport import reexport

__all__ = reexport(__name__, __path__, globals())
