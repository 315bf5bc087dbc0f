"""Old path of the MCMC chapter's sampler and diagnostics: a thin shim over :mod:`flowedu.hmc`.

Chapter: book/hmc.md. Import from ``flowedu.hmc`` instead; this module goes away when the last
caller has moved.
"""

from flowedu.hmc import (
    DualAveraging,
    HMCResult,
    ess,
    hmc,
    hmc_accept,
    hmc_accepted_only,
    leapfrog,
    log_prob_and_grad,
    split_rhat,
)

__all__ = ["DualAveraging", "HMCResult", "ess", "hmc", "hmc_accept", "hmc_accepted_only", "leapfrog",
           "log_prob_and_grad", "split_rhat"]
