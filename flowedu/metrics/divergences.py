"""Old path of the MCMC chapter's KL estimators: a thin shim over :mod:`flowedu.hmc.divergences`.

Chapter: book/hmc.md. Import from ``flowedu.hmc`` instead; this module goes away when the last
caller has moved (``flowedu.metrics`` re-exports these names meanwhile).
"""

from flowedu.hmc.divergences import grid_kl, knn_kl

__all__ = ["grid_kl", "knn_kl"]
