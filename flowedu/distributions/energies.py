"""The 2-D energies U1-U4 of Rezende & Mohamed (2015, arXiv:1505.05770, Table 1) as unnormalised
targets ``p(z) ∝ exp(-U(z))``, and a grid normaliser for any 2-D log-density.

With ``w1 = sin(2π z1 / 4)``, ``w2 = 3 exp(-½((z1 - 1)/0.6)²)``, ``w3 = 3 σ((z1 - 1)/0.3)``:

* ``U1 = ½((||z|| - 2)/0.4)² - log(exp(-½((z1 - 2)/0.6)²) + exp(-½((z1 + 2)/0.6)²))`` (a ring with two modes);
* ``U2 = ½((z2 - w1)/0.4)²``;
* ``U3 = -log(exp(-½((z2 - w1)/0.35)²) + exp(-½((z2 - w1 + w2)/0.35)²))``;
* ``U4 = -log(exp(-½((z2 - w1)/0.4)²) + exp(-½((z2 - w1 + w3)/0.35)²))``.

U1 is normalisable on R². U2-U4 do not depend on ``z1`` except through bounded terms, so
``∫ exp(-U) dz1 = ∞``: as written they are not densities. We make them normalisable with a *soft box*
in ``z1`` (the paper plots them on [-4, 4]²): ``U + ½ (max(|z1| - box, 0) / 0.1)²``, which changes
nothing inside ``|z1| <= box`` and decays like a Gaussian of width 0.1 outside.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["Energy2D", "U1", "U2", "U3", "U4", "ENERGIES", "grid_log_normalizer"]

BOX_WIDTH = 0.1


def _check_z(z):
    if not isinstance(z, torch.Tensor) or not torch.is_floating_point(z) or z.shape[-1:] != (2,):
        raise ValueError(f"z must be a floating-point tensor [..., 2], got {getattr(z, 'shape', type(z))}")


def _neg_logsumexp2(a, b):
    return -torch.logaddexp(a, b)


class Energy2D:
    """An unnormalised 2-D target: ``log_prob(z) = -U(z) - envelope(z)`` (``torch.distributions`` style,
    but without the normalising constant; :func:`grid_log_normalizer` computes it).

    Args:
        box: half-width of the soft box in ``z1`` (``> 0``), or ``None`` for no envelope (only for U1,
            which is normalisable without one).
    """

    needs_box = True
    default_box: float | None = 4.0

    def __init__(self, box: float | None = "default"):
        box = self.default_box if box == "default" else box
        if box is None:
            if self.needs_box:
                raise ValueError(f"box must be a number > 0 for {type(self).__name__}: without it the target "
                                 "is not normalisable on R^2")
        elif not (isinstance(box, (int, float)) and math.isfinite(box) and box > 0):
            raise ValueError(f"box must be a finite number > 0 or None, got {box!r}")
        self.box = None if box is None else float(box)

    def energy(self, z: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def envelope(self, z: torch.Tensor) -> torch.Tensor:
        """``½ (max(|z1| - box, 0) / 0.1)²`` (zero inside the box); ``[...]``."""
        if self.box is None:
            return torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        return 0.5 * (F.relu(z[..., 0].abs() - self.box) / BOX_WIDTH) ** 2

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``-U(z) - envelope(z)`` for ``z: [..., 2]``; returns ``[...]`` (unnormalised, in nats)."""
        _check_z(z)
        return -self.energy(z) - self.envelope(z)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(box={self.box})"


def _w1(z1):
    return torch.sin(2 * math.pi * z1 / 4)


class U1(Energy2D):
    """``U1 = ½((||z|| - 2)/0.4)² - log(exp(-½((z1 - 2)/0.6)²) + exp(-½((z1 + 2)/0.6)²))``: no box needed."""

    needs_box = False
    default_box = None

    def energy(self, z):
        z1 = z[..., 0]
        ring = 0.5 * ((z.norm(dim=-1) - 2) / 0.4) ** 2
        return ring + _neg_logsumexp2(-0.5 * ((z1 - 2) / 0.6) ** 2, -0.5 * ((z1 + 2) / 0.6) ** 2)


class U2(Energy2D):
    """``U2 = ½((z2 - w1)/0.4)²``, ``w1 = sin(2π z1 / 4)``; with a soft box in ``z1``."""

    def energy(self, z):
        return 0.5 * ((z[..., 1] - _w1(z[..., 0])) / 0.4) ** 2


class U3(Energy2D):
    """``U3 = -log(exp(-½((z2 - w1)/0.35)²) + exp(-½((z2 - w1 + w2)/0.35)²))``, ``w2 = 3 exp(-½((z1 - 1)/0.6)²)``."""

    def energy(self, z):
        z1, z2 = z[..., 0], z[..., 1]
        w1, w2 = _w1(z1), 3 * torch.exp(-0.5 * ((z1 - 1) / 0.6) ** 2)
        return _neg_logsumexp2(-0.5 * ((z2 - w1) / 0.35) ** 2, -0.5 * ((z2 - w1 + w2) / 0.35) ** 2)


class U4(Energy2D):
    """``U4 = -log(exp(-½((z2 - w1)/0.4)²) + exp(-½((z2 - w1 + w3)/0.35)²))``, ``w3 = 3 σ((z1 - 1)/0.3)``."""

    def energy(self, z):
        z1, z2 = z[..., 0], z[..., 1]
        w1, w3 = _w1(z1), 3 * torch.sigmoid((z1 - 1) / 0.3)
        return _neg_logsumexp2(-0.5 * ((z2 - w1) / 0.4) ** 2, -0.5 * ((z2 - w1 + w3) / 0.35) ** 2)


ENERGIES = {"U1": U1, "U2": U2, "U3": U3, "U4": U4}


def grid_log_normalizer(log_prob, bounds=((-6.0, 6.0), (-6.0, 6.0)), n: int = 500,
                        dtype: torch.dtype = torch.float64, device=None) -> float:
    """``log ∫ exp(log_prob(z)) dz`` over a 2-D box by the midpoint rule (log-sum-exp, so no overflow).

    With it, a variational fit reports the true reverse KL, ``KL(q || p) = E_q[log q - log p~] + log Z``.

    Args:
        log_prob: ``z [m, 2] -> [m]``, e.g. ``U3().log_prob`` or a flow's ``log_prob``.
        bounds: ``((z1_lo, z1_hi), (z2_lo, z2_hi))``, finite with ``lo < hi``; the mass outside is ignored.
        n: grid points per axis, >= 2.
        dtype, device: of the grid.

    Returns:
        ``log Z`` as a float.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
    try:
        (a0, a1), (b0, b1) = bounds
    except (TypeError, ValueError) as err:
        raise ValueError(f"bounds must be ((lo, hi), (lo, hi)), got {bounds!r}") from err
    for lo, hi in ((a0, a1), (b0, b1)):
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"bounds must be finite with lo < hi, got {bounds!r}")
    if not callable(log_prob):
        raise ValueError(f"log_prob must be callable, got {type(log_prob).__name__}")
    dx, dy = (a1 - a0) / n, (b1 - b0) / n
    xs = torch.linspace(a0 + dx / 2, a1 - dx / 2, n, dtype=dtype, device=device)
    ys = torch.linspace(b0 + dy / 2, b1 - dy / 2, n, dtype=dtype, device=device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="ij"), dim=-1).reshape(-1, 2)
    with torch.no_grad():
        values = torch.cat([log_prob(chunk).reshape(-1) for chunk in grid.split(65536)])
    if torch.isnan(values).any():
        raise ValueError("log_prob returned NaN on the grid")
    return (torch.logsumexp(values.double(), 0) + math.log(dx * dy)).item()
