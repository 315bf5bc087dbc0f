"""Chapter: book/gk.md — checks for ``notebooks/gk.ipynb``: the g-and-k quantile function and the quantile residuals."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.special import ndtri

from flowedu.checks.core import check_function, leaves_rng_alone

__all__ = ["check_gk_quantile", "check_gk_residuals"]


@leaves_rng_alone
def check_gk_quantile(quantile: Callable) -> None:
    """Check ``quantile(u, a, b, g, k, c=0.8)`` against :func:`flowedu.gk.gk_quantile`.

    Cases: the standard (3, 1, 2, 0.5), negative skewness, k = 0 and large k, u near 0 and 1.

    Args:
        quantile: ``(u [n] float64 tensor, a, b, g, k) -> Q(u) [n]``.
    """
    from flowedu.gk import gk_quantile

    u = torch.tensor([1e-6, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1 - 1e-6], dtype=torch.float64)
    cases = [(u, 3.0, 1.0, 2.0, 0.5), (u, -1.0, 0.5, -3.0, 0.0), (u, 0.0, 2.0, 0.5, 1.5), (u, 10.0, 0.1, 0.0, 0.2)]
    check_function(quantile, gk_quantile, cases, name="quantile", rtol=1e-9, atol=1e-9)


@leaves_rng_alone
def check_gk_residuals(residuals: Callable) -> None:
    """Check ``residuals(theta, z, x_sorted)`` against :func:`flowedu.gk.gk_quantile_residuals`.

    theta = (A, b, g, κ) is unconstrained: B = e^b and k = −½ + e^κ.

    Args:
        residuals: ``(theta [4], z [n], x_sorted [n]) -> [n]`` NumPy arrays.
    """
    from flowedu.gk import gk_quantile_residuals

    rng = np.random.default_rng(0)
    n = 50
    z = ndtri(np.arange(1, n + 1) / (n + 1))
    x_sorted = np.sort(rng.standard_normal(n) * 2 + 1)
    thetas = [[3.0, 0.0, 2.0, 0.0], [0.5, np.log(2.0), -1.0, np.log(0.1)], [-1.0, -1.0, 0.3, np.log(1.5)]]
    cases = [(np.array(theta), z, x_sorted) for theta in thetas]
    check_function(residuals, gk_quantile_residuals, cases, name="residuals", rtol=1e-9, atol=1e-9)
