"""Finite-state chains and exact KL (flowedu.markov): the theorems of book/proofs.md on random chains."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import markov

SETTINGS = settings(max_examples=40, deadline=None)
sizes = st.integers(min_value=2, max_value=8)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def symmetric_proposal(n, rng):
    Q = markov.random_kernel(n, rng)
    Q = Q + Q.T
    return Q / Q.sum(axis=1, keepdims=True)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_kl_is_nonnegative_and_zero_only_at_equality(n, seed):
    rng = np.random.default_rng(seed)
    p, q = markov.random_distribution(n, rng), markov.random_distribution(n, rng, 0.5)
    assert markov.kl(p, p) == 0.0
    assert markov.kl(q, p) > 0.0
    # Pinsker: KL >= 2 TV^2, a lower bound that fails if kl returned something too small.
    tv = 0.5 * np.abs(q - p).sum()
    assert markov.kl(q, p) >= 2 * tv**2 - 1e-12


def test_kl_conventions():
    assert markov.kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(np.log(2))
    assert markov.kl([0.5, 0.5], [1.0, 0.0]) == float("inf")
    assert markov.kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2))


@SETTINGS
@given(n=sizes, seed=seeds)
def test_metropolis_satisfies_detailed_balance_hence_stationarity(n, seed):
    rng = np.random.default_rng(seed)
    p = markov.random_distribution(n, rng, 0.5)
    T = markov.metropolis_kernel(p, symmetric_proposal(n, rng))
    markov.check_kernel(T)
    assert markov.satisfies_detailed_balance(p, T)
    assert markov.is_stationary(p, T)
    np.testing.assert_allclose(markov.reversal_kernel(p, T), T, atol=1e-10)


@SETTINGS
@given(n=st.integers(min_value=3, max_value=8), seed=seeds, fraction=st.floats(0.05, 1.0))
def test_cyclic_kernel_is_invariant_but_not_reversible(n, seed, fraction):
    rng = np.random.default_rng(seed)
    p = markov.random_distribution(n, rng)
    C = markov.cyclic_kernel(p, fraction * p.min())
    assert markov.is_stationary(p, C)
    assert not markov.satisfies_detailed_balance(p, C)
    # A composition of p-invariant kernels is p-invariant (and here still not reversible).
    M = markov.metropolis_kernel(p, symmetric_proposal(n, rng))
    assert markov.is_stationary(p, M @ C)


@SETTINGS
@given(n=sizes, seed=seeds, reversible=st.booleans())
def test_kl_contracts_under_any_invariant_kernel(n, seed, reversible):
    rng = np.random.default_rng(seed)
    p = markov.random_distribution(n, rng)
    M = markov.metropolis_kernel(p, symmetric_proposal(n, rng))
    T = M if reversible or n < 3 else M @ markov.cyclic_kernel(p, 0.7 * p.min())
    q0 = markov.random_distribution(n, rng, 0.3)
    traj = markov.kl_trajectory(q0, T, p, 20)
    assert np.all(np.diff(traj) <= 1e-12), traj
    # All entries of M are > 0 off the diagonal, so the equality condition fails and the first step is strict.
    assert not markov.kl_contraction_is_equality(q0, p, T)
    assert traj[1] < traj[0]


@SETTINGS
@given(n=sizes, seed=seeds)
def test_kl_can_rise_under_a_kernel_that_does_not_keep_p(n, seed):
    rng = np.random.default_rng(seed)
    p, T = markov.random_distribution(n, rng), markov.random_kernel(n, rng)
    assert not markov.is_stationary(p, T, atol=1e-6)
    traj = markov.kl_trajectory(p, T, p, 1)
    assert traj[0] == 0.0 and traj[1] > 0.0
    with pytest.raises(ValueError, match="invariant"):
        markov.kl_contraction_is_equality(p, p, T)


@SETTINGS
@given(n1=st.integers(1, 4), n2=st.integers(1, 4), seed=seeds, weight=st.floats(0.05, 0.95))
def test_equality_case_block_diagonal_kernel(n1, n2, seed, weight):
    """Reducible T and q = p reweighted per block: q/p constant on each block, so KL does not move."""
    rng = np.random.default_rng(seed)
    n = n1 + n2
    p = markov.random_distribution(n, rng)
    Q = np.zeros((n, n))
    Q[:n1, :n1] = symmetric_proposal(n1, rng)
    Q[n1:, n1:] = symmetric_proposal(n2, rng)
    T = markov.metropolis_kernel(p, Q)
    block_mass = p[:n1].sum()
    q = np.concatenate([p[:n1] * weight / block_mass, p[n1:] * (1 - weight) / (1 - block_mass)])
    assert markov.kl_contraction_is_equality(q, p, T)
    traj = markov.kl_trajectory(q, T, p, 5)
    np.testing.assert_allclose(traj, traj[0], atol=1e-12)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_equality_condition_matches_the_numbers(n, seed):
    """The condition predicts equality exactly: check it against the computed KL for several kernels."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    q = markov.random_distribution(n, rng, 0.5)
    shift = np.roll(np.eye(n), 1, axis=1)  # a permutation keeps the uniform p: equality for every q
    independent = markov.independent_kernel(p)  # "T = const": strict unless q = p
    for T in (shift, independent, np.eye(n)):
        before, after = markov.kl(q, p), markov.kl(q @ T, p)
        if markov.kl_contraction_is_equality(q, p, T):
            assert after == pytest.approx(before, abs=1e-12)
        else:
            assert after < before - 1e-9
    assert markov.kl_contraction_is_equality(q, p, shift)
    assert not markov.kl_contraction_is_equality(q, p, independent)
    assert markov.kl(q @ independent, p) == pytest.approx(0.0, abs=1e-12)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_stationary_distribution_and_propagation(n, seed):
    rng = np.random.default_rng(seed)
    T = markov.random_kernel(n, rng)
    pi = markov.stationary_distribution(T)
    assert markov.is_stationary(pi, T)
    q = markov.propagate(markov.random_distribution(n, rng), T, 200)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(q[-1], pi, atol=1e-8)
    np.testing.assert_allclose(q[3], q[0] @ np.linalg.matrix_power(T, 3), atol=1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: markov.kl([0.5, 0.6], [0.5, 0.5]), "q must sum to 1"),
        (lambda: markov.kl([0.5, 0.5], [1.5, -0.5]), "p must have entries >= 0"),
        (lambda: markov.kl([1.0], [0.5, 0.5]), "same shape"),
        (lambda: markov.check_kernel([[0.5, 0.6], [0.5, 0.5]]), "row 0"),
        (lambda: markov.check_kernel([[0.5, 0.5]]), "square"),
        (lambda: markov.metropolis_kernel([1.0, 0.0], [[0.5, 0.5], [0.5, 0.5]]), "entry > 0"),
        (lambda: markov.metropolis_kernel([0.3, 0.3, 0.4], [[0.5, 0.5, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]]), "iff"),
        (lambda: markov.cyclic_kernel([0.2, 0.8], 0.3), "flow must be in"),
        (lambda: markov.propagate([0.5, 0.5], np.eye(2), -1), "n_steps"),
        (lambda: markov.random_distribution(0, np.random.default_rng(0)), "n must be"),
        (lambda: markov.kl([np.nan, 1.0], [0.5, 0.5]), "finite"),
    ],
)
def test_invalid_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@SETTINGS
@given(n=st.integers(4, 8), seed=seeds, weight=st.floats(0.1, 0.4))
def test_cyclic_kernel_boundary_flow_splits_the_cycle_into_arcs(n, seed, weight):
    """With flow = min p attained at two states, q/p constant on each arc between them keeps KL fixed."""
    rng = np.random.default_rng(seed)
    p = markov.random_distribution(n, rng) + 0.05
    k = int(rng.integers(2, n - 1))
    p[0] = p[k] = p.min() / 2  # two equal minima
    p /= p.sum()
    T = markov.cyclic_kernel(p, p.min())
    scale = np.where(np.arange(n) < k, weight, 1 - weight)
    q = p * scale / (p * scale).sum()
    assert markov.kl_contraction_is_equality(q, p, T)
    assert markov.kl(q @ T, p) == pytest.approx(markov.kl(q, p), abs=1e-12)
    # A unique minimum (p[k] raised) links all states again: strict contraction.
    p2 = p.copy()
    p2[k] *= 1.5
    p2 /= p2.sum()
    T2 = markov.cyclic_kernel(p2, p2.min())
    q2 = p2 * scale / (p2 * scale).sum()
    assert not markov.kl_contraction_is_equality(q2, p2, T2)
    assert markov.kl(q2 @ T2, p2) < markov.kl(q2, p2) - 1e-9
