"""Measures of how close two distributions are: divergences between samples or densities, and image metrics.

One module per family, each listing its public names in ``__all__`` (re-exported here by an explicit import list).
"""

from flowedu.hmc.divergences import grid_kl, knn_kl  # derived in the MCMC chapter, used by others
from flowedu.metrics.images import (
    ClassifierFeatures,
    InceptionFID,
    frechet_distance,
    frechet_distance_gaussians,
    inception_score,
    load_inception_fid,
)

__all__ = [
    "ClassifierFeatures", "InceptionFID", "frechet_distance", "frechet_distance_gaussians", "grid_kl",
    "inception_score", "knn_kl", "load_inception_fid",
]
