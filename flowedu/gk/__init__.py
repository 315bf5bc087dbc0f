"""Chapter: book/gk.md — the g-and-k distribution (quantile function, density by numerical inversion,
fitting, copula, flow layer) and its use in VAEs (flow posteriors, g-and-k posterior base and prior).

Notebooks ``notebooks/gk.ipynb`` and ``notebooks/vae_flows.ipynb``.
References: Rayner & MacGillivray (2002); Drovandi & Pettitt (2011); Prangle (2017, arXiv:1706.06889);
Rezende & Mohamed (2015, arXiv:1505.05770).
"""

from flowedu.gk.core import (
    C_DEFAULT,
    check_gk_params,
    gk_boundary_g,
    gk_c_max,
    gk_is_valid,
    gk_quantile,
    gk_quantile_derivative,
    gk_solve_z,
    gk_transform,
)
from flowedu.gk.distribution import GandK, MultivariateGandK
from flowedu.gk.fit import (
    GandKFit,
    fit_mle,
    fit_quantiles_lm,
    fit_sample_mse_wrong,
    gk_quantile_residuals,
    gk_quantile_residuals_jacobian,
)
from flowedu.gk.transform import GandKTransform
from flowedu.gk.vae_flows import AmortisedPlanar, FlowVAE, GandKPosteriorBase, GandKPrior, PriorAtZ0Objective
from flowedu.gk.vae_models import (
    POSTERIOR_FLOWS,
    active_units,
    fit_gk_prior,
    latent_codes,
    make_flow_vae,
    posterior_flow,
)

__all__ = [
    "C_DEFAULT",
    "POSTERIOR_FLOWS",
    "AmortisedPlanar",
    "FlowVAE",
    "GandK",
    "GandKFit",
    "GandKPosteriorBase",
    "GandKPrior",
    "GandKTransform",
    "MultivariateGandK",
    "PriorAtZ0Objective",
    "active_units",
    "check_gk_params",
    "fit_gk_prior",
    "fit_mle",
    "fit_quantiles_lm",
    "fit_sample_mse_wrong",
    "gk_boundary_g",
    "gk_c_max",
    "gk_is_valid",
    "gk_quantile",
    "gk_quantile_derivative",
    "gk_quantile_residuals",
    "gk_quantile_residuals_jacobian",
    "gk_solve_z",
    "gk_transform",
    "latent_codes",
    "make_flow_vae",
    "posterior_flow",
]
