"""The numeric checks of book/proofs.md as property tests, and the notebook's exercise checks."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import checks, markov

SETTINGS = settings(max_examples=30, deadline=None)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@SETTINGS
@given(d=st.integers(1, 16), seed=seeds)
def test_matrix_determinant_lemma(d, seed):
    """det(A + u v^T) = (1 + v^T A^{-1} u) det A on random matrices (lem-matrix-determinant)."""
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, d, generator=g, dtype=torch.float64) + 3 * torch.eye(d, dtype=torch.float64)
    u, v = torch.randn(d, generator=g, dtype=torch.float64), torch.randn(d, generator=g, dtype=torch.float64)
    lhs = torch.linalg.det(A + torch.outer(u, v))
    rhs = (1 + v @ torch.linalg.solve(A, u)) * torch.linalg.det(A)
    torch.testing.assert_close(lhs, rhs, rtol=1e-9, atol=1e-9)
    eye = torch.eye(d, dtype=torch.float64)
    torch.testing.assert_close(torch.linalg.det(eye + torch.outer(u, v)), 1 + v @ u, rtol=1e-9, atol=1e-9)


def test_check_kl_finite_accepts_the_reference_and_rejects_mistakes():
    checks.check_kl_finite(markov.kl)

    def no_zero_convention(q, p):  # 0 * log 0 = nan
        return float(np.sum(q * np.log(q / p)))

    def reversed_arguments(q, p):
        return markov.kl(p, q)

    with np.errstate(divide="ignore", invalid="ignore"):
        with pytest.raises(AssertionError):
            checks.check_kl_finite(no_zero_convention)
    with pytest.raises(AssertionError):
        checks.check_kl_finite(reversed_arguments)


def test_check_metropolis_kernel_accepts_the_reference_and_rejects_mistakes():
    checks.check_metropolis_kernel(markov.metropolis_kernel)

    def no_rejection_mass(p, Q):
        T = markov.metropolis_kernel(p, Q)
        np.fill_diagonal(T, 0.0)
        return T

    def no_proposal_ratio(p, Q):  # correct only for symmetric Q
        accept = np.minimum(1.0, p[None, :] / p[:, None])
        T = Q * accept
        np.fill_diagonal(T, 0.0)
        T[np.diag_indices_from(T)] = 1 - T.sum(axis=1)
        return T

    with pytest.raises(AssertionError, match="sum to"):
        checks.check_metropolis_kernel(no_rejection_mass)
    with pytest.raises(AssertionError, match="proposal"):
        checks.check_metropolis_kernel(no_proposal_ratio)
