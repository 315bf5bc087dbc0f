"""Chapter: ``book/flows.md`` -- the 2-D targets of the flows chapter and one grid for all 2-D work.

The energies U1-U4 of Rezende & Mohamed (2015, arXiv:1505.05770, Table 1) as unnormalised targets
``p(z) ∝ exp(-U(z))``; the exact densities and entropies of the toy data sets of ``flowedu.data.toy2d``
(:class:`TwoMoons`, :class:`Arcs`, :class:`Sine`);
and :class:`Grid2D`, the one grid convention used to plot, normalise and integrate 2-D densities.

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

from flowedu import validate
from flowedu.grids import Grid2D, grid_log_normalizer
from flowedu.validate import integer

__all__ = ["Energy2D", "U1", "U2", "U3", "U4", "ENERGIES", "stack_log_probs", "Grid2D", "grid_log_normalizer",
           "NoisyCurves", "TwoMoons", "Arcs", "Sine", "TOY_DENSITIES"]

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


def stack_log_probs(*log_probs):
    """One log-density for ``m`` independent 2-D problems solved side by side.

    Args:
        *log_probs: ``m >= 1`` callables ``z [n, 2] -> [n]`` (e.g. ``U1().log_prob, U2().log_prob``).

    Returns:
        A callable ``z [n, m, 2] -> [n, m]`` whose column ``i`` is ``log_probs[i](z[:, i])``: the target of
        ``m`` planar flows with ``copies=m`` (``flowedu.flows.planar``).
    """
    if not log_probs or not all(callable(f) for f in log_probs):
        raise ValueError("log_probs must be one or more callables z [n, 2] -> [n]")

    def log_prob(z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.dim() != 3 or z.shape[1:] != (len(log_probs), 2):
            raise ValueError(f"z must have shape [n, {len(log_probs)}, 2], got {tuple(getattr(z, 'shape', ()))}")
        return torch.stack([f(z[:, i]) for i, f in enumerate(log_probs)], dim=1)

    return log_prob


class NoisyCurves:
    """A point on a curve plus Gaussian noise: the exact density of the 2-D toy data sets.

    Raw points are ``X = γ_c(t) + σ ε`` with a curve ``c`` chosen uniformly among the subclass's curves,
    ``t`` uniform on ``[t_lo, t_hi]`` and ``ε ~ N(0, I)``. The density is the continuous mixture
    ``p_X(x) = mean_c (1 / (t_hi - t_lo)) ∫ N(x; γ_c(t), σ² I) dt``, here by the midpoint rule with ``n_t``
    nodes per curve (error O(n_t^-2)). Data sets that are standardised, ``Y = (X - m) / s``, have density
    ``p_X(m + s y) s_1 s_2``. :meth:`entropy` integrates ``-p log p`` on a grid that holds the mass.

    Args:
        noise: ``σ > 0``.
        n_t: quadrature nodes per curve, >= 2 (default: the subclass's).
    """

    t_range: tuple[float, float] = (0.0, math.pi)
    box: tuple[tuple[float, float], tuple[float, float]] = ((-3.0, 3.0), (-3.0, 3.0))
    default_n_t = 200
    dim = 2

    def __init__(self, noise: float = 0.1, n_t: int | None = None):
        if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise > 0):
            raise ValueError(f"noise must be a finite number > 0, got {noise!r}")
        n_t = self.default_n_t if n_t is None else n_t
        n_t = integer(n_t, "n_t", 2)
        self.noise, self.n_t = float(noise), n_t
        self.mean = torch.zeros(2, dtype=torch.float64)
        self.std = torch.ones(2, dtype=torch.float64)

    def curves(self, t: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        """``[n_curves, len(t), 2]``: the points ``γ_c(t)`` in raw coordinates."""
        raise NotImplementedError

    def log_prob(self, y: torch.Tensor) -> torch.Tensor:
        """``log p(y)`` for ``y: [..., 2]`` (in the data set's coordinates); returns ``[...]`` (float64, nats)."""
        _check_z(y)
        lo, hi = self.t_range
        t = lo + (torch.arange(self.n_t, dtype=torch.float64, device=y.device) + 0.5) / self.n_t * (hi - lo)
        centres = self.curves(t).reshape(-1, 2)  # equally weighted mixture components
        x = y.double() * self.std.to(y.device) + self.mean.to(y.device)  # raw coordinates
        d2 = ((x[..., None, :] - centres) ** 2).sum(-1)
        log_p_x = (torch.logsumexp(-d2 / (2 * self.noise**2), -1) - math.log(len(centres))
                   - math.log(2 * math.pi * self.noise**2))
        return log_p_x + self.std.log().sum()  # p_Y(y) = p_X(x) s_1 s_2

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """i.i.d. points ``[*sample_shape, 2]`` (float64, CPU), ``t`` uniform, in the data set's coordinates."""
        shape = validate.sample_shape(sample_shape)
        return self._sample(math.prod(shape), generator).reshape(*shape, 2)

    def _sample(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        lo, hi = self.t_range
        t = lo + torch.rand(n, dtype=torch.float64, generator=generator) * (hi - lo)
        points = self.curves(t)
        c = torch.randint(0, len(points), (n,), generator=generator)
        x = points[c, torch.arange(n)] + self.noise * torch.randn(n, 2, dtype=torch.float64, generator=generator)
        return (x - self.mean) / self.std

    def grid(self, n: int = 150) -> Grid2D:
        """The float64 grid :meth:`entropy` integrates on (``box``, which holds all but a negligible mass)."""
        return Grid2D(self.box, n, dtype=torch.float64)

    def entropy(self, n_grid: int = 150) -> float:
        """``H = -∫ p log p`` in nats, by the midpoint rule on an ``n_grid²`` grid."""
        grid = self.grid(n_grid)
        log_p = grid.evaluate(self.log_prob)
        return -(log_p.exp() * log_p).sum().item() * grid.cell_area


class Arcs(NoisyCurves):
    """``flowedu.data.toy2d("arcs")``: upper half-circles of radius 1 and 2 (equally likely), shifted down by 0.8,
    plus noise. The angle is i.i.d. uniform on ``[0, π]``."""

    box = ((-2.7, 2.7), (-1.4, 1.8))

    def curves(self, t):
        circle = torch.stack([t.cos(), t.sin()], -1)
        shift = torch.tensor([0.0, -0.8], dtype=t.dtype, device=t.device)
        return torch.stack([circle + shift, 2 * circle + shift])


class Sine(NoisyCurves):
    """``flowedu.data.toy2d("sine")``: ``(t, 1.5 sin(π t / 3))`` for ``t ~ U[-3, 3]``, plus noise."""

    t_range = (-3.0, 3.0)
    box = ((-3.7, 3.7), (-2.2, 2.2))
    default_n_t = 300

    def curves(self, t):
        return torch.stack([t, 1.5 * torch.sin(math.pi * t / 3)], -1)[None]


class TwoMoons(NoisyCurves):
    """The distribution of ``flowedu.data.toy2d("moons")`` in the limit of many points, with its exact density.

    Raw points are ``X = γ_c(t) + σ ε``: a class ``c ∈ {1, 2}`` with probability ½ each, ``t ~ U[0, π]``,
    ``ε ~ N(0, I)``, on the half-circles ``γ_1(t) = (cos t, sin t)`` and ``γ_2(t) = (1 - cos t, ½ - sin t)``
    (scikit-learn's ``make_moons``). The data set is ``Y = (X - m) / s`` with the population moments
    ``m, s`` of :func:`flowedu.data.moons_moments`.

    ``make_moons`` places ``t`` on an even grid (``linspace``) rather than drawing it; as the number of
    points grows its empirical distribution converges to this one, so :meth:`entropy` is the floor of the
    expected NLL in that limit. :meth:`sample` draws ``t`` i.i.d. uniform.

    Args:
        noise: ``σ > 0`` (the data set's default is 0.1).
        n_t: quadrature nodes per half-circle, >= 2.
    """

    box = ((-2.6, 2.6), (-2.9, 2.9))  # standardised units: more than 2.5 noise widths beyond the curves

    def __init__(self, noise: float = 0.1, n_t: int | None = None):
        super().__init__(noise, n_t)
        from flowedu import data

        mean, std = data.moons_moments(self.noise)
        self.mean = torch.tensor(mean, dtype=torch.float64)
        self.std = torch.tensor(std, dtype=torch.float64)

    def curves(self, t):
        return torch.stack([torch.stack([t.cos(), t.sin()], -1), torch.stack([1 - t.cos(), 0.5 - t.sin()], -1)])


TOY_DENSITIES = {"moons": TwoMoons, "arcs": Arcs, "sine": Sine}
