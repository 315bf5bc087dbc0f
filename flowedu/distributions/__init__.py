"""Densities and targets shared across chapters, with ``torch.distributions`` semantics.

One module per family, each listing its public names in ``__all__``, re-exported here by an explicit import
list: Gaussian, Bernoulli and categorical log-densities for the VAE chapter, the 2-D energies for the flows chapter.
(The banana posterior is the MCMC chapter's own: ``flowedu.hmc``.)
"""

from flowedu.distributions.elementary import (
    checking_values,
    kl_normal_standard,
    log_bernoulli,
    log_categorical,
    log_normal_diag,
    log_standard_normal,
    skip_value_checks,
)
from flowedu.distributions.energies import (
    ENERGIES,
    TOY_DENSITIES,
    U1,
    U2,
    U3,
    U4,
    Arcs,
    Energy2D,
    Grid2D,
    NoisyCurves,
    Sine,
    TwoMoons,
    grid_log_normalizer,
    stack_log_probs,
)
from flowedu.distributions.linear_gaussian import (
    HalfPosteriorProposal,
    LinearGaussian,
    LinearGaussianDecoder,
    LinearGaussianProposal,
)
from flowedu.distributions.standard_normal import StandardNormal, draw

__all__ = [
    "Arcs", "ENERGIES", "Energy2D", "Grid2D",
    "HalfPosteriorProposal", "LinearGaussian", "LinearGaussianDecoder", "LinearGaussianProposal", "NoisyCurves",
    "Sine", "StandardNormal", "TOY_DENSITIES", "TwoMoons", "U1", "U2", "U3", "U4", "checking_values",
    "draw", "grid_log_normalizer", "kl_normal_standard", "log_bernoulli", "log_categorical", "log_normal_diag",
    "log_standard_normal", "skip_value_checks", "stack_log_probs",
]
