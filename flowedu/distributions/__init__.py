"""Densities and targets shared across chapters, with ``torch.distributions`` semantics.

One module per family, each listing its public names in ``__all__`` (re-exported here): Gaussian,
Bernoulli and categorical log-densities for the VAE chapter, the 2-D energies for the flows chapter,
the banana posterior for the MCMC chapter.
"""

from flowedu._reexport import reexport

__all__ = reexport(__name__, __path__, globals())
