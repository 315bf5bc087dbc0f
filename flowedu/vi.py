"""Old path of the MCMC chapter's variational inference: a thin shim over :mod:`flowedu.hmc.vi`.

Chapter: book/hmc.md. Import from ``flowedu.hmc`` instead; this module goes away when the last
caller has moved.
"""

from flowedu.hmc.vi import elbo_terms, fit_elbo

__all__ = ["elbo_terms", "fit_elbo"]
