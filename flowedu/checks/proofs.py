"""Chapter: book/proofs.md — checks for ``notebooks/proofs_numeric.ipynb``: the exact KL divergence and
the Metropolis kernel."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flowedu import proofs
from flowedu.checks.core import check_close, check_function, leaves_rng_alone

__all__ = ["check_kl_finite", "check_metropolis_kernel"]


@leaves_rng_alone
def check_kl_finite(kl_finite: Callable) -> None:
    """Check an exact KL divergence between two probability vectors on a finite set (nats).

    The reference is :func:`flowedu.proofs.kl`. The cases include zeros in ``q`` (where
    :math:`0 \\log 0 = 0`), zeros in both, peaked and flat distributions.

    Args:
        kl_finite: ``(q [n], p [n]) -> float``, both NumPy float64 arrays.
    """
    rng = np.random.default_rng(0)
    cases = [
        (np.array([0.5, 0.5]), np.array([0.5, 0.5])),
        (np.array([0.9, 0.1]), np.array([0.5, 0.5])),
        (np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])),
        (np.array([0.0, 1.0, 0.0]), np.array([0.0, 0.3, 0.7])),
        (proofs.random_distribution(7, rng, 0.2), proofs.random_distribution(7, rng)),
        (proofs.random_distribution(30, rng), proofs.random_distribution(30, rng, 5.0)),
    ]
    check_function(kl_finite, proofs.kl, cases, name="kl_finite", rtol=1e-9, atol=1e-12)


@leaves_rng_alone
def check_metropolis_kernel(metropolis: Callable) -> None:
    """Check a Metropolis--Hastings kernel ``T`` built from a target ``p`` and a proposal ``Q``.

    The reference is :func:`flowedu.proofs.metropolis_kernel`; besides equal entries, the check says
    whether the rows sum to 1 and whether detailed balance holds, the two usual mistakes (forgetting the
    rejected mass on the diagonal; dropping the proposal ratio for an asymmetric ``Q``).

    Args:
        metropolis: ``(p [n], Q [n, n]) -> T [n, n]``, NumPy float64 arrays, ``Q[x, y] = Q(y | x)``.
    """
    rng = np.random.default_rng(1)
    cases = []
    for n, symmetric in [(2, True), (4, True), (5, False), (8, False)]:
        p = proofs.random_distribution(n, rng, 0.5)
        Q = proofs.random_kernel(n, rng)
        if symmetric:
            Q = Q + Q.T
            Q = Q / Q.sum(axis=1, keepdims=True)
        cases.append((p, Q))
    for number, (p, Q) in enumerate(cases):
        T = np.asarray(metropolis(p, Q), dtype=np.float64)
        if T.shape != Q.shape:
            raise AssertionError(f"case {number}: T has shape {T.shape}, expected {Q.shape}")
        rows = T.sum(axis=1)
        if not np.allclose(rows, 1.0, atol=1e-9):
            raise AssertionError(
                f"case {number}: rows of T sum to {rows}, not 1 (is the rejected mass on the diagonal?)"
            )
        flux = p[:, None] * T
        if not np.allclose(flux, flux.T, atol=1e-10):
            raise AssertionError(
                f"case {number}: p(x) T(y|x) != p(y) T(x|y) (largest gap {np.abs(flux - flux.T).max():.3g}); "
                "for an asymmetric proposal the acceptance ratio needs Q(x|y) / Q(y|x)"
            )
        check_close(T, proofs.metropolis_kernel(p, Q), f"metropolis (case {number})", rtol=1e-9, atol=1e-12)
    print(f"metropolis: all {len(cases)} cases agree with the reference (rows sum to 1, detailed balance).")
