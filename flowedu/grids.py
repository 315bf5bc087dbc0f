"""One 2-D grid for every plot and integral of the book: :class:`Grid2D` (midpoints, one indexing convention)
and :func:`grid_log_normalizer` (``log ∫ exp(log_prob)`` by the midpoint rule).

Used by the flows chapter (energies U1-U4, two moons: ``book/flows.md``) and the HMC chapter (the banana
posterior normalised on a grid: ``book/hmc.md``). ``flowedu.distributions`` re-exports both names.
"""

from __future__ import annotations

import math

import torch

from flowedu.validate import integer

__all__ = ["Grid2D", "grid_log_normalizer", "log_midpoint_integral"]


def log_midpoint_integral(log_values: torch.Tensor, cell_area: float) -> float:
    """``log ∫ exp(f) ≈ log(cell_area Σ exp(log_values))``, the midpoint rule on any grid of equal cells
    (log-sum-exp in float64: no overflow). The one normaliser of the package's 2-D grids."""
    if torch.isnan(log_values).any():
        raise ValueError("log_values has NaN entries")
    return (torch.logsumexp(log_values.double().reshape(-1), 0) + math.log(cell_area)).item()


def _check_bounds(bounds):
    try:
        (a0, a1), (b0, b1) = bounds
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds must be ((lo, hi), (lo, hi)), got {bounds!r}") from err
    for lo, hi in ((a0, a1), (b0, b1)):
        if not (isinstance(lo, (int, float)) and isinstance(hi, (int, float)) and math.isfinite(lo)
                and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds must be finite numbers with lo < hi, got {bounds!r}")
    return (float(a0), float(a1)), (float(b0), float(b1))


class Grid2D:
    """The midpoints of an ``n x n`` grid on a box: one convention for every 2-D plot and integral.

    ``points[i * n + j] = (xs[j], ys[i])`` (``"xy"`` indexing), so ``values.reshape(n, n)`` is an image
    whose rows run along ``z2``: show it with ``ax.imshow(grid.image(values), extent=grid.extent,
    origin="lower")``. Integrals use the midpoint rule, ``∫ f ≈ cell_area * Σ f(points)``.

    Args:
        bounds: ``((z1_lo, z1_hi), (z2_lo, z2_hi))``, finite with ``lo < hi``.
        n: points per axis, >= 2.
        dtype, device: of ``points`` (default float32, CPU).

    Attributes:
        xs, ys: ``[n]`` midpoints along ``z1`` and ``z2``; points: ``[n * n, 2]``; cell_area: a float;
        extent: ``(z1_lo, z1_hi, z2_lo, z2_hi)`` for ``imshow``.
    """

    def __init__(self, bounds=((-4.0, 4.0), (-4.0, 4.0)), n: int = 200, dtype: torch.dtype = torch.float32,
                 device=None):
        n = integer(n, "n", 2)
        (a0, a1), (b0, b1) = _check_bounds(bounds)
        self.n = n
        dx, dy = (a1 - a0) / n, (b1 - b0) / n
        self.xs = torch.linspace(a0 + dx / 2, a1 - dx / 2, n, dtype=dtype, device=device)
        self.ys = torch.linspace(b0 + dy / 2, b1 - dy / 2, n, dtype=dtype, device=device)
        z1, z2 = torch.meshgrid(self.xs, self.ys, indexing="xy")  # [n, n]: rows follow z2, columns z1
        self.points = torch.stack((z1, z2), dim=-1).reshape(-1, 2)
        self.cell_area = dx * dy
        self.extent = (a0, a1, b0, b1)

    def evaluate(self, fn, chunk: int = 65536) -> torch.Tensor:
        """``fn(points)`` in chunks, without gradient; ``fn: [m, 2] -> [m]``; returns ``[n * n]``."""
        if not callable(fn):
            raise ValueError(f"fn must be callable, got {type(fn).__name__}")
        with torch.no_grad():
            return torch.cat([fn(part).reshape(-1) for part in self.points.split(chunk)])

    def image(self, values: torch.Tensor) -> torch.Tensor:
        """``values [n * n]`` (on ``points``) as an ``[n, n]`` CPU image, row ``i`` at ``z2 = ys[i]``."""
        if not isinstance(values, torch.Tensor) or values.numel() != self.n**2:
            raise ValueError(f"values must be a tensor with {self.n}**2 entries, got {getattr(values, 'shape', None)}")
        return values.detach().reshape(self.n, self.n).cpu()

    def log_integral(self, log_values: torch.Tensor) -> float:
        """``log ∫ exp(log_values)`` by the midpoint rule (:func:`log_midpoint_integral`)."""
        return log_midpoint_integral(log_values, self.cell_area)


def grid_log_normalizer(log_prob, bounds=((-6.0, 6.0), (-6.0, 6.0)), n: int = 500,
                        dtype: torch.dtype = torch.float64, device=None) -> float:
    """``log ∫ exp(log_prob(z)) dz`` over a 2-D box by the midpoint rule on a :class:`Grid2D`.

    With it, a variational fit reports the true reverse KL, ``KL(q || p) = E_q[log q - log p~] + log Z``.

    Args:
        log_prob: ``z [m, 2] -> [m]``, e.g. ``U3().log_prob`` or a flow's ``log_prob``.
        bounds: ``((z1_lo, z1_hi), (z2_lo, z2_hi))``, finite with ``lo < hi``; the mass outside is ignored.
        n: grid points per axis, >= 2.
        dtype, device: of the grid.

    Returns:
        ``log Z`` as a float.
    """
    if not callable(log_prob):
        raise ValueError(f"log_prob must be callable, got {type(log_prob).__name__}")
    grid = Grid2D(bounds, n, dtype=dtype, device=device)
    values = grid.evaluate(log_prob)
    if torch.isnan(values).any():
        raise ValueError("log_prob returned NaN on the grid")
    return grid.log_integral(values)
