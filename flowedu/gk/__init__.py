"""The g-and-k distribution: quantile function, density by numerical inversion, fitting, copula, flow layer.

Chapter: ``book/gk.md``, notebooks ``notebooks/gk.ipynb`` and ``notebooks/vae_flows.ipynb``.
References: Rayner & MacGillivray (2002); Drovandi & Pettitt (2011); Prangle (2017, arXiv:1706.06889).
"""

from flowedu.gk.core import (
    C_DEFAULT,
    check_gk_params,
    gk_is_valid,
    gk_quantile,
    gk_quantile_derivative,
    gk_solve_z,
    gk_transform,
)
from flowedu.gk.distribution import GandK, MultivariateGandK
from flowedu.gk.fit import GandKFit, fit_mle, fit_quantiles_lm, fit_sample_mse_wrong, gk_quantile_residuals
from flowedu.gk.transform import GandKTransform

__all__ = [
    "C_DEFAULT",
    "GandK",
    "GandKFit",
    "GandKTransform",
    "MultivariateGandK",
    "check_gk_params",
    "fit_mle",
    "fit_quantiles_lm",
    "fit_sample_mse_wrong",
    "gk_is_valid",
    "gk_quantile",
    "gk_quantile_derivative",
    "gk_quantile_residuals",
    "gk_solve_z",
    "gk_transform",
]
