"""Chapter: book/gk.md — fitting g-and-k parameters to data: quantile least squares (Levenberg–Marquardt),
maximum likelihood, and the sample-MSE "fit" of the flow-VAE course project (kept to show why it fails)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import least_squares, minimize
from scipy.special import ndtri

from flowedu.gk.core import C_DEFAULT, gk_transform
from flowedu.gk.distribution import GandK

__all__ = ["GandKFit", "gk_quantile_residuals", "gk_quantile_residuals_jacobian", "fit_quantiles_lm", "fit_mle",
           "fit_sample_mse_wrong"]


@dataclass
class GandKFit:
    """A fitted (A, B, g, k) with how it was found."""

    a: float
    b: float
    g: float
    k: float
    method: str
    success: bool
    n_evaluations: int

    @property
    def params(self) -> np.ndarray:
        """``[4]``: (A, B, g, k)."""
        return np.array([self.a, self.b, self.g, self.k])

    def distribution(self, c: float = C_DEFAULT) -> GandK:
        return GandK(self.a, self.b, self.g, self.k, c=c, validate=False)


def _data(x) -> np.ndarray:
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)
    x = x.ravel()
    if x.size < 4:
        raise ValueError(f"x must hold at least 4 values, got {x.size}")
    if not np.isfinite(x).all():
        raise ValueError("x must hold finite values")
    return x


def _from_unconstrained(theta: np.ndarray) -> tuple[float, float, float, float]:
    """(A, b, g, κ) -> (A, B = e^b, g, k = −½ + e^κ)."""
    a, log_b, g, kappa = (float(t) for t in theta)
    return a, float(np.exp(log_b)), g, -0.5 + float(np.exp(kappa))


def _initial(x: np.ndarray) -> np.ndarray:
    """Start at the median, B = IQR / 1.349 (a normal's), g = 0, k = 0, in unconstrained form."""
    q25, q50, q75 = np.quantile(x, [0.25, 0.5, 0.75])
    scale = max((q75 - q25) / 1.349, 1e-8 * (1 + abs(q50)))
    return np.array([q50, np.log(scale), 0.0, np.log(0.5)])


def gk_quantile_residuals(theta, z, x_sorted, c: float = C_DEFAULT) -> np.ndarray:
    """Quantile residuals r_i = Q(z_i; A, e^b, g, −½ + e^κ) − x_(i), the vector Levenberg–Marquardt squares.

    Args:
        theta: ``[4]`` unconstrained (A, b, g, κ).
        z: ``[n]`` normal scores of the plotting positions, z_i = Φ⁻¹(i / (n + 1)).
        x_sorted: ``[n]`` order statistics x_(1) ≤ … ≤ x_(n).

    Returns:
        ``[n]`` residuals.
    """
    return _quantile_np(z, *_from_unconstrained(theta), c) - x_sorted


def _quantile_np(z: np.ndarray, a: float, b: float, g: float, k: float, c: float) -> np.ndarray:
    """Q(z; A, B, g, k) for NumPy scores (float64), through :func:`flowedu.gk.gk_transform`."""
    return gk_transform(torch.from_numpy(np.asarray(z, dtype=np.float64)), a, b, g, k, c, validate=False).numpy()


def gk_quantile_residuals_jacobian(theta, z, x_sorted, c: float = C_DEFAULT) -> np.ndarray:
    """The Jacobian of :func:`gk_quantile_residuals` in θ = (A, b, g, κ), ``[n, 4]``:

    ∂r/∂A = 1,  ∂r/∂b = Q − A,  ∂r/∂g = (Q − A) c (z/2) sech²(gz/2) / (1 + c tanh(gz/2)),
    ∂r/∂κ = (Q − A) log(1 + z²) e^κ  (B = e^b, k = −½ + e^κ).

    Args:
        theta, z, x_sorted, c: as in :func:`gk_quantile_residuals` (``x_sorted`` does not enter).
    """
    a, b, g, k = _from_unconstrained(theta)
    spread = _quantile_np(z, 0.0, b, g, k, c)  # Q − A
    sech2 = 1 / np.cosh(np.clip(g * z / 2, -350, 350)) ** 2
    d_g = spread * c * (z / 2) * sech2 / (1 + c * np.tanh(g * z / 2))
    d_kappa = spread * np.log1p(z * z) * (k + 0.5)  # ∂k/∂κ = e^κ = k + ½
    return np.stack([np.ones_like(z), spread, d_g, d_kappa], axis=1)


def fit_quantiles_lm(x, c: float = C_DEFAULT) -> GandKFit:
    """Quantile least squares: minimise Σ_i (Q(i/(n+1)) − x_(i))² by Levenberg–Marquardt.

    The order statistic x_(i) estimates the quantile Q(i/(n+1)), so matching them is a deterministic,
    smooth least-squares problem. scipy's ``least_squares(method="lm")`` takes no bounds, so it works
    on θ = (A, b, g, κ) with B = e^b > 0 and k = −½ + e^κ > −½. The Jacobian is analytic.

    Args:
        x: data, ``[n]`` (any shape is flattened), n ≥ 4.

    Returns:
        A :class:`GandKFit`.
    """
    # [quantile-lm]
    x_sorted = np.sort(_data(x))  # order statistics x_(1) <= ... <= x_(n)
    n = x_sorted.size
    z = ndtri(np.arange(1, n + 1) / (n + 1))  # z_i = Φ⁻¹(p_i), p_i = i / (n + 1)
    # residuals Q(p_i; θ) − x_(i) in θ = (A, b, g, κ), B = e^b, k = −½ + e^κ
    result = least_squares(gk_quantile_residuals, _initial(x_sorted), method="lm",
                           jac=gk_quantile_residuals_jacobian,
                           args=(z, x_sorted, c))
    a, b, g, k = _from_unconstrained(result.x)
    # [/quantile-lm]
    return GandKFit(a, b, g, k, method="quantile LM", success=bool(result.success),
                    n_evaluations=int(result.nfev))


def fit_mle(x, init: GandKFit | None = None, c: float = C_DEFAULT, max_iter: int = 200) -> GandKFit:
    """Numerical maximum likelihood: maximise Σ_i log f(x_i) (density by numerical inversion).

    L-BFGS on the unconstrained θ = (A, b, g, κ), gradients by autograd through
    :meth:`GandK.log_prob` (implicit function theorem), starting from ``init`` (default: the quantile
    LM fit). Parameters where Q stops being monotone give a non-finite likelihood and are rejected
    by the line search.

    Args:
        x: data ``[n]``.
        init: starting point.
        max_iter: L-BFGS iterations.
    """
    data = torch.as_tensor(_data(x), dtype=torch.float64)
    init = fit_quantiles_lm(data, c) if init is None else init
    theta0 = np.array([init.a, np.log(init.b), init.g, np.log(init.k + 0.5)])

    def objective(theta):
        t = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
        try:
            dist = GandK(t[0], t[1].exp(), t[2], -0.5 + t[3].exp(), c=c, validate=False)
            nll = -dist.log_prob(data).mean()
        except (ValueError, RuntimeError):
            return 1e10, np.zeros(4)
        if not torch.isfinite(nll):
            return 1e10, np.zeros(4)
        nll.backward()
        return nll.item(), t.grad.numpy().copy()

    result = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": max_iter})
    return GandKFit(*_from_unconstrained(result.x), method="MLE", success=bool(result.success),
                    n_evaluations=int(result.nfev))


def fit_sample_mse_wrong(x, seed: int = 0, fresh: bool = True, c: float = C_DEFAULT) -> GandKFit:
    """WRONG, kept as the flow-VAE course project's mistake: least squares between fresh samples and data.

    Each evaluation draws new z_i ~ N(0, 1) and returns residuals Q(z_i; θ) − x_i with the data in
    their given order. The objective is random (Levenberg–Marquardt's finite differences see noise),
    and even its expectation, E(Y − X)² = Var Y + Var X + (E Y − E X)², is minimised by shrinking
    Var Y, i.e. B → 0: it asks for a point mass at the data mean, not for the data's distribution.

    Args:
        x: data ``[n]``.
        seed: seed of the random samples.
        fresh: draw new samples at every evaluation (the project's fit); ``False`` draws them once, which
            makes the objective deterministic and shows where its expectation leads (B → 0).
    """
    x = _data(x)
    rng = np.random.default_rng(seed)
    fixed = rng.standard_normal(x.size)

    def residuals(theta):
        z = rng.standard_normal(x.size) if fresh else fixed
        return _quantile_np(z, *_from_unconstrained(theta), c) - x

    result = least_squares(residuals, _initial(x), method="lm")
    method = "sample MSE (wrong)" + ("" if fresh else ", fixed noise")
    return GandKFit(*_from_unconstrained(result.x), method=method, success=bool(result.success),
                    n_evaluations=int(result.nfev))
