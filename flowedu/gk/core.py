"""The g-and-k quantile function, its derivative, its validity and its numerical inverse.

Book notation (``book/gk.md``): with z = Φ⁻¹(u) and c = 0.8,

    Q(z; A, B, g, k) = A + B [1 + c tanh(g z / 2)] (1 + z²)^k z,
    Q′(z) = dQ/dz = B (1 + z²)^(k−1) [(1 + c tanh(g z/2))(1 + (2k + 1) z²)
                                       + (1 + z²) z g c / (2 cosh²(g z/2))],

and the density of X = Q(Z), Z ~ N(0, 1), is f(x) = φ(z) / Q′(z) at the z that solves Q(z) = x
(Rayner & MacGillivray 2002; Prangle 2017, arXiv:1706.06889).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "gk_quantile",
    "gk_transform",
    "gk_quantile_derivative",
    "gk_is_valid",
    "gk_solve_z",
    "check_gk_params",
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

    These are necessary; whether Q is monotone for a given (g, k) with k < 0 is checked by
    :func:`gk_is_valid`.
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


def _q(z, a, b, g, k, c):
    return a + b * (1 + c * torch.tanh(g * z / 2)) * (1 + z * z) ** k * z


def _dq(z, b, g, k, c):
    z2 = z * z
    first = (1 + c * torch.tanh(g * z / 2)) * (1 + (2 * k + 1) * z2)
    second = (1 + z2) * z * g * c * _sech2(g * z / 2) / 2
    return b * (1 + z2) ** (k - 1) * (first + second)


def gk_transform(z, a, b, g, k, c: float = C_DEFAULT) -> torch.Tensor:
    """Q as a function of z = Φ⁻¹(u): A + B [1 + c tanh(g z/2)] (1 + z²)^k z.

    Args:
        z: standard-normal scores, any shape; the parameters broadcast against it.
        a, b, g, k: A (location), B > 0 (scale), g (skewness), k > −½ (tail weight).
        c: the skewness constant, 0.8 by convention.

    Returns:
        x = Q(z), the broadcast shape.
    """
    check_gk_params(b, k, c)
    z = _as_tensor(z)
    return _q(z, _as_tensor(a, z), _as_tensor(b, z), _as_tensor(g, z), _as_tensor(k, z), c)


def gk_quantile(u, a, b, g, k, c: float = C_DEFAULT) -> torch.Tensor:
    """The g-and-k quantile function Q(u) = A + B [1 + c tanh(g z/2)] (1 + z²)^k z, z = Φ⁻¹(u).

    Args:
        u: probabilities in (0, 1), any shape (tensor, array or number; float64 if not a tensor).
        a, b, g, k, c: as in :func:`gk_transform`.

    Returns:
        Q(u), the broadcast shape.
    """
    u = _as_tensor(u)
    if not torch.is_floating_point(u) or torch.isnan(u).any() or (u <= 0).any() or (u >= 1).any():
        raise ValueError("u must hold probabilities strictly inside (0, 1)")
    z = math.sqrt(2) * torch.special.erfinv(2 * u - 1)
    return gk_transform(z, a, b, g, k, c)


def gk_quantile_derivative(z, a, b, g, k, c: float = C_DEFAULT) -> torch.Tensor:
    """Q′(z) = dQ/dz = B (1+z²)^(k−1) [(1 + c tanh(gz/2))(1 + (2k+1) z²) + (1+z²) z g c / (2 cosh²(gz/2))].

    ``a`` does not enter but is accepted so that all g-and-k functions share one signature.
    The density is f(x) = φ(z)/Q′(z) at Q(z) = x, and dQ/du = Q′(z)/φ(z).

    Args:
        z: standard-normal scores, any shape.
        a, b, g, k, c: as in :func:`gk_transform`.

    Returns:
        Q′(z), the broadcast shape; > 0 everywhere exactly when the parameters are valid.
    """
    check_gk_params(b, k, c)
    z = _as_tensor(z)
    return _dq(z, _as_tensor(b, z), _as_tensor(g, z), _as_tensor(k, z), c)


def gk_is_valid(a, b, g, k, c: float = C_DEFAULT) -> bool:
    """Whether (A, B, g, k) define a distribution: B > 0, k > −½ and Q′(z) > 0 for all z.

    For k ≥ 0 and c ≤ 0.83 the quantile function is monotone for every g (Rayner & MacGillivray
    2002); for −½ < k < 0 it need not be (e.g. g = 1, k = −0.1), so Q′ is checked on a grid of
    z, as Prangle's R package ``gk`` does in ``isValid``. The grid reaches |g z| = 120 (or |z| = 50),
    beyond which the negative term of Q′ is below the positive one by a factor e^{−100}.

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
    return bool((_dq(z, b, g, k, c) > 0).all())


@torch.no_grad()
def _solve(x, a, b, g, k, c, tol, max_iter):
    """Newton's method on Q(z) = x, safeguarded by bisection in a bracket [lo, hi] (float64, no grad)."""
    lo = torch.full_like(x, -1.0)
    hi = torch.full_like(x, 1.0)
    while True:  # widen the bracket until Q(lo) <= x <= Q(hi)
        low_bad, high_bad = _q(lo, a, b, g, k, c) > x, _q(hi, a, b, g, k, c) < x
        if not (low_bad.any() or high_bad.any()):
            break
        if -lo.min() > _Z_LIMIT or hi.max() > _Z_LIMIT:
            raise ValueError(f"x lies beyond Q(z) for |z| <= 2**40; got x in [{x.min():.4g}, {x.max():.4g}]")
        lo = torch.where(low_bad, 2 * lo, lo)
        hi = torch.where(high_bad, 2 * hi, hi)
    z = ((x - a) / b).expand_as(x).clamp(lo, hi)
    for _ in range(max_iter):
        residual = _q(z, a, b, g, k, c) - x
        lo = torch.where(residual <= 0, z, lo)
        hi = torch.where(residual >= 0, z, hi)
        z_new = z - residual / _dq(z, b, g, k, c)
        outside = ~torch.isfinite(z_new) | (z_new <= lo) | (z_new >= hi)
        z_new = torch.where(outside, (lo + hi) / 2, z_new)
        done = ((z_new - z).abs() <= tol * (1 + z.abs())) | (residual == 0)
        z = z_new
        if done.all():
            return z
    raise RuntimeError(f"g-and-k inversion did not converge in {max_iter} iterations")


def gk_solve_z(x, a, b, g, k, c: float = C_DEFAULT, tol: float = 1e-12, max_iter: int = 200) -> torch.Tensor:
    """The z with Q(z) = x, differentiable in x and the parameters by the implicit function theorem.

    The root is found without gradients (Newton's method with a bisection safeguard, vectorised,
    in float64). Then one Newton step is taken with gradients, dividing by a detached Q′:
    z = z* − (Q(z*; θ) − x) / Q′(z*). Its value is z* (the residual is zero) and its first derivatives
    are ∂z/∂x = 1/Q′(z) and ∂z/∂θ = −(∂Q/∂θ)/Q′(z), exactly what the implicit function theorem gives.

    Args:
        x: finite values, any shape.
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
    a64, b64, g64, k64 = p64
    slope = _dq(z_star, b64, g64, k64, c).detach()
    z = z_star - (_q(z_star, a64, b64, g64, k64, c) - x64) / slope
    return z.to(x.dtype)
