"""Chapter: book/proofs.md — the hypotheses of the importance-weighted bound's limit, by example.

``thm-iwae-limit``: L_K = E[log (1/K) Σ_k w_k] rises to log p(x) when q > 0 wherever p(x, z) > 0 and
L_{K₀} > -∞ for some K₀. Bounded weights do not give the second hypothesis; :class:`BoundedWeightsExample`
is a model whose weights are bounded while L_1 = -∞ (its L_K for K >= 2 is finite, so the limit still
holds). The first hypothesis is illustrated by ``flowedu.distributions.HalfPosteriorProposal``.
"""

from __future__ import annotations

import math

import torch
from scipy.special import exp1

from flowedu.validate import integer

__all__ = ["BoundedWeightsExample"]


class BoundedWeightsExample:
    """q(z) = Uniform(0, 1) and p(x, z) = exp(-1/z) on (0, 1): bounded weights, L_1 = -∞, L_K finite for K >= 2.

    For a fixed x the joint is a function of z only. The weights w = exp(-1/z) lie in (0, 1/e], but
    E_q[log w] = -∫₀¹ dz/z = -∞. The largest of K weights is exp(-1/max_k z_k), and max_k z_k has density
    K z^{K-1}, so E[log max_k w_k] = -K/(K-1) for K >= 2; with max/K <= mean <= max,

        -K/(K-1) - log K <= L_K <= -K/(K-1),    K >= 2,

    and L_K -> log p(x) = log ∫₀¹ e^{-1/z} dz = log(e^{-1} - E_1(1)) by ``thm-iwae-limit`` with K₀ = 2.
    ``log_weights`` has the interface of ``flowedu.vae.iwae_bound``.
    """

    log_evidence = math.log(math.exp(-1.0) - float(exp1(1.0)))
    """log p(x) = log(e^{-1} - E_1(1)) ≈ -1.907, E_1 the exponential integral."""

    @staticmethod
    def bounds(k: int) -> tuple[float, float]:
        """The interval ``(lower, upper)`` that holds L_K: ``(-inf, -inf)`` for K = 1, else as above."""
        k = integer(k, "k", 1)
        if k == 1:
            return -math.inf, -math.inf
        return -k / (k - 1) - math.log(k), -k / (k - 1)

    def log_weights(self, x: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """log w = -1/z for k draws z ~ Uniform(0, 1) per row of ``x`` (whose values are not used).

        Args:
            x: ``[batch, ...]``, only its length and dtype matter (float64 recommended).
            k: draws per example, >= 1.

        Returns:
            ``[k, batch]``, on the device of ``x``.
        """
        k = integer(k, "k", 1)
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise ValueError("x must be a tensor [batch, ...]")
        dtype = x.dtype if torch.is_floating_point(x) else torch.float64
        u = torch.rand(k, len(x), generator=generator, dtype=dtype)
        z = 1.0 - u  # in (0, 1]: never 0
        return (-1.0 / z).to(x.device)
