"""Chapter: book/hmc.md — MCMC vs variational inference on the banana posterior.

Notebooks ``notebooks/banana_hmc.ipynb`` and ``notebooks/banana_flows.ipynb``; checks in
``flowedu.checks`` (``check_leapfrog``, ``check_hmc_accept``, ``check_elbo_terms``). One module per concept:

* ``integrator`` -- the Hamiltonian, autograd gradients, the leapfrog;
* ``adaptation`` -- dual-averaging step-size adaptation;
* ``sampler`` -- the HMC transition and sampler (vectorised over chains), the wrong accepted-only
  sampler, and the acceptance probability alpha(theta);
* ``diagnostics`` -- split chains, autocorrelation, effective sample size, split-R-hat;
* ``banana`` -- the banana posterior and its exact normalisation on a grid;
* ``vi`` -- the reparameterized ELBO of a flow and its training loop;
* ``divergences`` -- KL from samples (k nearest neighbours) and exactly on a grid.
"""

from flowedu.hmc.adaptation import DualAveraging
from flowedu.hmc.banana import BANANA_SEED, BANANA_THETA, BananaGrid, BananaPosterior, banana_data
from flowedu.hmc.diagnostics import autocorrelation, ess, pooled_mean_se, split_chains, split_rhat
from flowedu.hmc.divergences import grid_kl, knn_kl
from flowedu.hmc.integrator import hamiltonian, leapfrog, log_prob_and_grad
from flowedu.hmc.sampler import (
    MAX_DELTA_ENERGY,
    Acceptance,
    HMCResult,
    HMCStep,
    acceptance_probability,
    hmc,
    hmc_accept,
    hmc_accepted_only,
    hmc_step,
)
from flowedu.hmc.vi import elbo_terms, fit_elbo

__all__ = [
    # integrator
    "hamiltonian", "leapfrog", "log_prob_and_grad",
    # adaptation
    "DualAveraging",
    # sampler
    "MAX_DELTA_ENERGY", "Acceptance", "HMCResult", "HMCStep", "acceptance_probability", "hmc", "hmc_accept",
    "hmc_accepted_only", "hmc_step",
    # diagnostics
    "autocorrelation", "ess", "pooled_mean_se", "split_chains", "split_rhat",
    # banana
    "BANANA_SEED", "BANANA_THETA", "BananaGrid", "BananaPosterior", "banana_data",
    # vi
    "elbo_terms", "fit_elbo",
    # divergences
    "grid_kl", "knn_kl",
]
