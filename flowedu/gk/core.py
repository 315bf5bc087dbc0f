"""Chapter: book/gk.md — the g-and-k quantile function, its derivative, its validity and its inverse.

Book notation: with z = Φ⁻¹(u) and c = 0.8,

    Q(z; A, B, g, k) = A + B [1 + c tanh(g z / 2)] (1 + z²)^k z,
    Q′(z) = dQ/dz = B (1 + z²)^(k−1) [(1 + c tanh(g z/2))(1 + (2k + 1) z²)
                                       + (1 + z²) z g c / (2 cosh²(g z/2))],

and the density of X = Q(Z), Z ~ N(0, 1), is f(x) = φ(z) / Q′(z) at the z that solves Q(z) = x
(Rayner & MacGillivray 2002; Prangle 2017, arXiv:1706.06889). This module holds the only
implementation of Q and Q′ in flowedu; the distribution, the flow layer, the fits and the VAE parts
call :func:`gk_transform` and :func:`gk_quantile_derivative`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import brentq, minimize_scalar

__all__ = [
    "C_DEFAULT",
    "gk_quantile",
    "gk_transform",
    "gk_quantile_derivative",
    "gk_is_valid",
    "gk_solve_z",
    "check_gk_params",
    "gk_c_max",
    "gk_boundary_g",
]

C_DEFAULT = 0.8
_Z_LIMIT = 2.0**40  # the bracket search stops here (Φ(−2⁴⁰) is 0 in every float format)


def _as_tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float64
    device = like.device if like is not None else None
    return torch.as_tensor(value, dtype=dtype, device=device)


def check_gk_params(b, k, c: float = C_DEFAULT) -> None:
    """Raise ``ValueError`` unless B > 0, k > −½ and 0 ≤ c < 1 (all finite).

    B > 0 and k ≥ −½ are necessary (``book/gk.md``); k > −½ is a conservative choice: at k = −½
    exactly, Q is increasing only for g = 0 or |g| ≥ :func:`gk_boundary_g` (about 6.53 for c = 0.8),
    and the support is then bounded. Whether Q is monotone for a given (g, k) with k < 0 is checked
    by :func:`gk_is_valid`.
    """
    b_t, k_t = torch.as_tensor(b).detach(), torch.as_tensor(k).detach()
    if not torch.isfinite(b_t).all() or (b_t <= 0).any():
        raise ValueError(f"b (the scale B) must be finite and > 0, got {b_t.min().item():.4g}")
    if not torch.isfinite(k_t).all() or (k_t <= -0.5).any():
        raise ValueError(f"k must be finite and > -0.5, got {k_t.min().item():.4g}")
    if not (isinstance(c, (int, float)) and 0 <= c < 1):
        raise ValueError(f"c must be a number in [0, 1), got {c!r}")


def _sech2(t: torch.Tensor) -> torch.Tensor:
    """1 / cosh²(t) without overflow: 4 e^{−2|t|} / (1 + e^{−2|t|})²."""
    e = torch.exp(-2 * t.abs())
    return 4 * e / (1 + e) ** 2


def _transform(z, a, b, g, k, c):
    """Q(z) = A + B [1 + c tanh(gz/2)] (1 + z²)^k z, unchecked."""
    skew = 1 + c * torch.tanh(g * z / 2)  # in (1 − c, 1 + c)
    tail = (1 + z * z) ** k * z  # (1 + z²)^k z ~ |z|^(2k+1)
    return a + b * skew * tail


def _derivative(z, b, g, k, c):
    """Q′(z) = B (1 + z²)^(k−1) [first + second], unchecked."""
    z2 = z * z
    # skew × d/dz[(1 + z²)^k z], divided by (1 + z²)^(k−1)
    first = (1 + c * torch.tanh(g * z / 2)) * (1 + (2 * k + 1) * z2)
    # d/dz[skew] × (1 + z²)^k z, divided by (1 + z²)^(k−1); < 0 where gz < 0
    second = (1 + z2) * z * g * c * _sech2(g * z / 2) / 2
    return b * (1 + z2) ** (k - 1) * (first + second)


def gk_transform(z, a, b, g, k, c: float = C_DEFAULT, validate: bool = True) -> torch.Tensor:
    """Q as a function of z = Φ⁻¹(u): A + B [1 + c tanh(g z/2)] (1 + z²)^k z.

    Args:
        z: standard-normal scores, any shape (tensor, array or number; float64 if not a tensor);
            the parameters broadcast against it.
        a, b, g, k: A (location), B > 0 (scale), g (skewness), k > −½ (tail weight).
        c: the skewness constant, 0.8 by convention.
        validate: check B > 0, k > −½, 0 ≤ c < 1 first. ``False`` skips the check (no device
            synchronisation in training loops whose parameterisation keeps B and k valid, and the
            boundary k = −½ in ``book/gk.md``).

    Returns:
        x = Q(z), the broadcast shape.
    """
    if validate:
        check_gk_params(b, k, c)
    z = _as_tensor(z)
    return _transform(z, _as_tensor(a, z), _as_tensor(b, z), _as_tensor(g, z), _as_tensor(k, z), c)


def gk_quantile(u, a, b, g, k, c: float = C_DEFAULT, validate: bool = True) -> torch.Tensor:
    """The g-and-k quantile function Q(u) = A + B [1 + c tanh(g z/2)] (1 + z²)^k z, z = Φ⁻¹(u).

    Φ⁻¹ is ``torch.special.ndtri`` (accurate in both tails, unlike √2 erfinv(2u − 1) near u = 0).

    Args:
        u: probabilities in (0, 1), any shape (tensor, array or number; float64 if not a tensor).
        a, b, g, k, c, validate: as in :func:`gk_transform` (``u`` is checked whatever ``validate``).

    Returns:
        Q(u), the broadcast shape.
    """
    u = _as_tensor(u)
    if not torch.is_floating_point(u) or torch.isnan(u).any() or (u <= 0).any() or (u >= 1).any():
        raise ValueError("u must hold probabilities strictly inside (0, 1)")
    return gk_transform(torch.special.ndtri(u), a, b, g, k, c, validate)


def gk_quantile_derivative(z, a, b, g, k, c: float = C_DEFAULT, validate: bool = True) -> torch.Tensor:
    """Q′(z) = dQ/dz = B (1+z²)^(k−1) [(1 + c tanh(gz/2))(1 + (2k+1) z²) + (1+z²) z g c / (2 cosh²(gz/2))].

    ``a`` does not enter but is accepted so that all g-and-k functions share one signature.
    The density is f(x) = φ(z)/Q′(z) at Q(z) = x, and dQ/du = Q′(z)/φ(z).

    Args:
        z: standard-normal scores, any shape.
        a, b, g, k, c, validate: as in :func:`gk_transform`.

    Returns:
        Q′(z), the broadcast shape; > 0 everywhere exactly when the parameters are valid.
    """
    if validate:
        check_gk_params(b, k, c)
    z = _as_tensor(z)
    return _derivative(z, _as_tensor(b, z), _as_tensor(g, z), _as_tensor(k, z), c)


def gk_is_valid(a, b, g, k, c: float = C_DEFAULT) -> bool:
    """Whether (A, B, g, k) define a distribution: B > 0, k > −½ and Q′(z) > 0 for all z.

    For k ≥ 0 and c ≤ :func:`gk_c_max` (0.8336; the literature's "c ≤ 0.83") the quantile function
    is monotone for every g (Rayner & MacGillivray 2002); for −½ < k < 0 it need not be (e.g. g = 1,
    k = −0.1), so Q′ is checked on a grid of z, as Prangle's R package ``gk`` does in ``isValid``.
    The grid reaches |g z| = 120 (or |z| = 50), beyond which the negative term of Q′ is below the
    positive one by a factor e^{−100}. k = −½ itself is rejected (conservative: see
    :func:`check_gk_params`).

    Args:
        a, b, g, k: scalars (numbers or 0-d tensors).
    """
    try:
        check_gk_params(b, k, c)
    except ValueError:
        return False
    b, g, k = (float(torch.as_tensor(v)) for v in (b, g, k))
    if k >= 0 and c <= 0.83:
        return True
    reach = max(50.0, 120.0 / max(abs(g), 1e-12))
    half = torch.logspace(-4, math.log10(reach), 20000, dtype=torch.float64)
    z = torch.cat([-half.flip(0), torch.zeros(1, dtype=torch.float64), half])
    return bool((_derivative(z, b, g, k, c) > 0).all())


def gk_c_max() -> float:
    """The largest c for which Q is increasing for every g at k = 0: c_max = tanh(s₀) ≈ 0.83356.

    Where gz < 0, with s = |gz|/2 and k = 0, Q′(z) = B h(s) exactly, with
    h(s) = 1 − c (tanh s + s sech² s) = 1 − c (s tanh s)′; for k > 0, Q′(z) ≥ B h(s) (1 + z²)^k.
    The derivative (s tanh s)′ is largest where (s tanh s)″ = 2 sech² s (1 − s tanh s) vanishes,
    at s₀ tanh s₀ = 1, and its value there is tanh s₀ + s₀ (1 − tanh² s₀) = s₀. So h > 0 for all s
    iff c < 1/s₀ = tanh s₀ (``book/gk.md``).
    """
    s0 = brentq(lambda s: s * math.tanh(s) - 1.0, 0.5, 2.0, xtol=1e-15)
    return math.tanh(s0)


def gk_boundary_g(c: float = C_DEFAULT) -> float:
    """The smallest |g| > 0 for which Q is increasing at the boundary k = −½ (``inf`` if c ≥ c_max).

    At k = −½ the factor 1 + (2k + 1) z² is 1, and where gz < 0, with s = |gz|/2 (so z² = 4s²/g²),

        Q′(z) (1 + z²)^{3/2} / B = h(s) − 4 c s³ sech²(s) / g²,   h(s) = 1 − c (tanh s + s sech² s).

    So Q′ ≥ 0 everywhere iff g² ≥ max_s 4 c s³ sech²(s) / h(s) =: g*², which needs h > 0, i.e.
    c < :func:`gk_c_max`. g = 0 is also valid (Q = A + B z/√(1 + z²)); 0 < |g| < g* is not.

    Args:
        c: the skewness constant, 0 < c < 1.

    Returns:
        g*, a float.
    """
    if not (isinstance(c, (int, float)) and 0 < c < 1):
        raise ValueError(f"c must be a number in (0, 1), got {c!r}")
    if c >= gk_c_max():
        return math.inf
    s = np.geomspace(1e-3, 60.0, 20001)
    sech2 = 1.0 / np.cosh(s) ** 2
    ratio = 4 * c * s**3 * sech2 / (1 - c * (np.tanh(s) + s * sech2))
    i = int(np.argmax(ratio))

    def negative_ratio(t: float) -> float:
        sech2_t = 1.0 / np.cosh(t) ** 2
        return -4 * c * t**3 * sech2_t / (1 - c * (np.tanh(t) + t * sech2_t))

    best = minimize_scalar(negative_ratio, bounds=(s[max(i - 1, 0)], s[min(i + 1, len(s) - 1)]), method="bounded",
                           options={"xatol": 1e-12})
    return math.sqrt(-best.fun)


@torch.no_grad()
def _solve(x, a, b, g, k, c, tol, max_iter):
    """Newton's method on Q(z) = x, safeguarded by bisection in a bracket [lo, hi] (float64, no grad)."""
    lo = torch.full_like(x, -1.0)
    hi = torch.full_like(x, 1.0)
    while True:  # widen the bracket until Q(lo) <= x <= Q(hi)
        low_bad, high_bad = _transform(lo, a, b, g, k, c) > x, _transform(hi, a, b, g, k, c) < x
        if not (low_bad.any() or high_bad.any()):
            break
        if -lo.min() > _Z_LIMIT or hi.max() > _Z_LIMIT:
            raise ValueError(f"x lies beyond Q(z) for |z| <= 2**40; got x in [{x.min():.4g}, {x.max():.4g}]")
        lo = torch.where(low_bad, 2 * lo, lo)
        hi = torch.where(high_bad, 2 * hi, hi)
    # [newton]
    z = ((x - a) / b).expand_as(x).clamp(lo, hi)
    for _ in range(max_iter):
        residual = _transform(z, a, b, g, k, c) - x  # Q(z) − x
        lo = torch.where(residual <= 0, z, lo)  # Q increasing: root >= z
        hi = torch.where(residual >= 0, z, hi)
        z_new = z - residual / _derivative(z, b, g, k, c)  # Newton step
        outside = ~torch.isfinite(z_new) | (z_new <= lo) | (z_new >= hi)
        # bisection where Newton leaves the bracket
        z_new = torch.where(outside, (lo + hi) / 2, z_new)
        done = ((z_new - z).abs() <= tol * (1 + z.abs())) | (residual == 0)
        z = z_new
        if done.all():
            return z
    # [/newton]
    raise RuntimeError(f"g-and-k inversion did not converge in {max_iter} iterations")


def gk_solve_z(x, a, b, g, k, c: float = C_DEFAULT, tol: float = 1e-12, max_iter: int = 200) -> torch.Tensor:
    """The z with Q(z) = x, differentiable in x and the parameters by the implicit function theorem.

    The root is found without gradients (Newton's method with a bisection safeguard, vectorised,
    in float64). Then one Newton step is taken with gradients, dividing by a detached Q′:
    z = z* − (Q(z*; θ) − x) / Q′(z*). Its value is z* (the residual is zero) and its first derivatives
    are ∂z/∂x = 1/Q′(z) and ∂z/∂θ = −(∂Q/∂θ)/Q′(z), exactly what the implicit function theorem gives.

    Args:
        x: finite values, any shape, with |Q⁻¹(x)| ≤ 2⁴⁰ (beyond, Φ(z) is 0 or 1 in every float format;
            a ``ValueError`` says so).
        a, b, g, k, c: valid parameters (see :func:`gk_is_valid`); they broadcast against ``x``.
        tol: relative tolerance on the Newton step.
        max_iter: the most Newton/bisection iterations.

    Returns:
        z, the broadcast shape, in the dtype of ``x``.
    """
    check_gk_params(b, k, c)
    x = _as_tensor(x)
    if not torch.is_floating_point(x) or not torch.isfinite(x).all():
        raise ValueError("x must hold finite floating-point values")
    params = [_as_tensor(p, x) for p in (a, b, g, k)]
    shape = torch.broadcast_shapes(x.shape, *(p.shape for p in params))
    x64 = x.double().expand(shape)
    p64 = [p.double() for p in params]
    z_star = _solve(x64, *(p.detach() for p in p64), c, tol, max_iter)
    if not (x.requires_grad or any(p.requires_grad for p in params)):
        return z_star.to(x.dtype)
    # [implicit]
    a64, b64, g64, k64 = p64
    slope = _derivative(z_star, b64, g64, k64, c).detach()  # Q′(z*), no gradient
    # one Newton step with gradients: value z*, dz/dx = 1/Q′, dz/dθ = −(∂Q/∂θ)/Q′
    z = z_star - (_transform(z_star, a64, b64, g64, k64, c) - x64) / slope
    return z.to(x.dtype)
    # [/implicit]
