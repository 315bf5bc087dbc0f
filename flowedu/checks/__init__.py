"""Self-checks that end the book's exercises.

Each chapter adds its checks in a module of this package named after the chapter
(``flowedu/checks/flows.py`` for ``check_flow_layer``) and lists them in its ``__all__``; they are
re-exported here by an explicit import list (add a line below for a new module), so that a notebook writes
``flowedu.checks.check_flow_layer(MyLayer(...))``. A check raises ``AssertionError`` with a message that
says what differs, and prints one line when everything agrees. ``check_close`` and ``check_function``
(in ``core``) are the building blocks. Every check wears ``core.leaves_rng_alone``: the caller's global
torch (CPU and CUDA), NumPy and Python random states are the same after a check as before it, so a
notebook draws the same numbers whether or not a check ran (``tests/test_checks_rng.py`` asserts this for
every check).
"""

from flowedu.checks.core import check_close, check_function, leaves_rng_alone
from flowedu.checks.flows import check_base_distribution, check_fit_density, check_flow_layer, check_normalizing_flow
from flowedu.checks.gan import check_ema_update, check_fraction_far, check_r1_penalty, check_vae_gan_objective
from flowedu.checks.getting_started import check_nll_from_logits
from flowedu.checks.gk import check_gk_quantile, check_gk_residuals
from flowedu.checks.hmc import check_elbo_terms, check_hmc_accept, check_leapfrog
from flowedu.checks.proofs import check_kl_finite, check_metropolis_kernel
from flowedu.checks.vae import check_elbo, check_learning_rate_study, check_reparameterize
from flowedu.checks.vae_flows import check_flow_elbo

__all__ = [
    "check_base_distribution", "check_close", "check_elbo", "check_elbo_terms", "check_ema_update",
    "check_fit_density", "check_flow_elbo", "check_flow_layer", "check_fraction_far", "check_function",
    "check_gk_quantile", "check_gk_residuals", "check_hmc_accept", "check_kl_finite", "check_leapfrog",
    "check_learning_rate_study", "check_metropolis_kernel", "check_nll_from_logits", "check_normalizing_flow",
    "check_r1_penalty", "check_reparameterize", "check_vae_gan_objective", "leaves_rng_alone",
]
