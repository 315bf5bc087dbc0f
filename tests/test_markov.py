"""Finite-state chains and exact KL (flowedu.proofs.markov): the theorems of book/proofs.md on random chains."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowedu import proofs

SETTINGS = settings(max_examples=40, deadline=None)
sizes = st.integers(min_value=2, max_value=8)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


def symmetric_proposal(n, rng):
    Q = proofs.random_kernel(n, rng)
    Q = Q + Q.T
    return Q / Q.sum(axis=1, keepdims=True)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_kl_is_nonnegative_and_zero_only_at_equality(n, seed):
    rng = np.random.default_rng(seed)
    p, q = proofs.random_distribution(n, rng), proofs.random_distribution(n, rng, 0.5)
    assert proofs.kl(p, p) == 0.0
    assert proofs.kl(q, p) > 0.0
    # Pinsker: KL >= 2 TV^2, a lower bound that fails if kl returned something too small.
    tv = 0.5 * np.abs(q - p).sum()
    assert proofs.kl(q, p) >= 2 * tv**2 - 1e-12


def test_kl_conventions():
    assert proofs.kl([0.5, 0.5, 0.0], [0.25, 0.25, 0.5]) == pytest.approx(np.log(2))
    assert proofs.kl([0.5, 0.5], [1.0, 0.0]) == float("inf")
    assert proofs.kl([1.0, 0.0], [0.5, 0.5]) == pytest.approx(np.log(2))


@SETTINGS
@given(n=sizes, seed=seeds)
def test_metropolis_satisfies_detailed_balance_hence_stationarity(n, seed):
    rng = np.random.default_rng(seed)
    p = proofs.random_distribution(n, rng, 0.5)
    T = proofs.metropolis_kernel(p, symmetric_proposal(n, rng))
    proofs.check_kernel(T)
    assert proofs.satisfies_detailed_balance(p, T)
    assert proofs.is_stationary(p, T)
    np.testing.assert_allclose(proofs.reversal_kernel(p, T), T, atol=1e-10)


@SETTINGS
@given(n=st.integers(min_value=3, max_value=8), seed=seeds, fraction=st.floats(0.05, 1.0))
def test_cyclic_kernel_is_invariant_but_not_reversible(n, seed, fraction):
    rng = np.random.default_rng(seed)
    p = proofs.random_distribution(n, rng)
    C = proofs.cyclic_kernel(p, fraction * p.min())
    assert proofs.is_stationary(p, C)
    assert not proofs.satisfies_detailed_balance(p, C)
    # A composition of p-invariant kernels is p-invariant (and here still not reversible).
    M = proofs.metropolis_kernel(p, symmetric_proposal(n, rng))
    assert proofs.is_stationary(p, M @ C)


@SETTINGS
@given(n=sizes, seed=seeds, reversible=st.booleans())
def test_kl_contracts_under_any_invariant_kernel(n, seed, reversible):
    rng = np.random.default_rng(seed)
    p = proofs.random_distribution(n, rng)
    M = proofs.metropolis_kernel(p, symmetric_proposal(n, rng))
    T = M if reversible or n < 3 else M @ proofs.cyclic_kernel(p, 0.7 * p.min())
    q0 = proofs.random_distribution(n, rng, 0.3)
    traj = proofs.kl_trajectory(q0, T, p, 20)
    assert np.all(np.diff(traj) <= 1e-12), traj
    # All entries of M are > 0 off the diagonal, so the equality condition fails and the first step is strict.
    assert not proofs.kl_contraction_is_equality(q0, p, T)
    assert traj[1] < traj[0]


@SETTINGS
@given(n=sizes, seed=seeds)
def test_kl_can_rise_under_a_kernel_that_does_not_keep_p(n, seed):
    rng = np.random.default_rng(seed)
    p, T = proofs.random_distribution(n, rng), proofs.random_kernel(n, rng)
    assert not proofs.is_stationary(p, T, atol=1e-6)
    traj = proofs.kl_trajectory(p, T, p, 1)
    assert traj[0] == 0.0 and traj[1] > 0.0
    with pytest.raises(ValueError, match="invariant"):
        proofs.kl_contraction_is_equality(p, p, T)


@SETTINGS
@given(n1=st.integers(1, 4), n2=st.integers(1, 4), seed=seeds, weight=st.floats(0.05, 0.95))
def test_equality_case_block_diagonal_kernel(n1, n2, seed, weight):
    """Reducible T and q = p reweighted per block: q/p constant on each block, so KL does not move."""
    rng = np.random.default_rng(seed)
    n = n1 + n2
    p = proofs.random_distribution(n, rng)
    Q = np.zeros((n, n))
    Q[:n1, :n1] = symmetric_proposal(n1, rng)
    Q[n1:, n1:] = symmetric_proposal(n2, rng)
    T = proofs.metropolis_kernel(p, Q)
    block_mass = p[:n1].sum()
    q = np.concatenate([p[:n1] * weight / block_mass, p[n1:] * (1 - weight) / (1 - block_mass)])
    assert proofs.kl_contraction_is_equality(q, p, T)
    traj = proofs.kl_trajectory(q, T, p, 5)
    np.testing.assert_allclose(traj, traj[0], atol=1e-12)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_equality_condition_matches_the_numbers(n, seed):
    """The condition predicts equality exactly: check it against the computed KL for several kernels."""
    rng = np.random.default_rng(seed)
    p = np.full(n, 1.0 / n)
    q = proofs.random_distribution(n, rng, 0.5)
    shift = np.roll(np.eye(n), 1, axis=1)  # a permutation keeps the uniform p: equality for every q
    independent = proofs.independent_kernel(p)  # "T = const": strict unless q = p
    for T in (shift, independent, np.eye(n)):
        before, after = proofs.kl(q, p), proofs.kl(q @ T, p)
        if proofs.kl_contraction_is_equality(q, p, T):
            assert after == pytest.approx(before, abs=1e-12)
        else:
            assert after < before - 1e-9
    assert proofs.kl_contraction_is_equality(q, p, shift)
    assert not proofs.kl_contraction_is_equality(q, p, independent)
    assert proofs.kl(q @ independent, p) == pytest.approx(0.0, abs=1e-12)


@SETTINGS
@given(n=sizes, seed=seeds)
def test_stationary_distribution_and_propagation(n, seed):
    rng = np.random.default_rng(seed)
    T = proofs.random_kernel(n, rng)
    pi = proofs.stationary_distribution(T)
    assert proofs.is_stationary(pi, T)
    q = proofs.propagate(proofs.random_distribution(n, rng), T, 200)
    np.testing.assert_allclose(q.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(q[3], q[0] @ np.linalg.matrix_power(T, 3), atol=1e-12)
    np.testing.assert_allclose(q[200], q[0] @ np.linalg.matrix_power(T, 200), atol=1e-10)
    # T > 0 is primitive, so q_0 T^t -> pi; how fast depends on the second eigenvalue (which can be
    # close to 1: 200 steps are not always enough), so look at t = 2^40 by repeated squaring, each
    # square renormalised to rows summing to 1 (else rounding in the row sums grows like 2^40).
    assert proofs.is_primitive(T)
    power = T.copy()
    for _ in range(40):
        power = power @ power
        power /= power.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(q[0] @ power, pi, atol=1e-8)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: proofs.kl([0.5, 0.6], [0.5, 0.5]), "q must sum to 1"),
        (lambda: proofs.kl([0.5, 0.5], [1.5, -0.5]), "p must have entries >= 0"),
        (lambda: proofs.kl([1.0], [0.5, 0.5]), "same shape"),
        (lambda: proofs.check_kernel([[0.5, 0.6], [0.5, 0.5]]), "row 0"),
        (lambda: proofs.check_kernel([[0.5, 0.5]]), "square"),
        (lambda: proofs.metropolis_kernel([1.0, 0.0], [[0.5, 0.5], [0.5, 0.5]]), "entry > 0"),
        (lambda: proofs.metropolis_kernel([0.3, 0.3, 0.4], [[0.5, 0.5, 0], [0.5, 0.5, 0], [0.5, 0, 0.5]]), "iff"),
        (lambda: proofs.cyclic_kernel([0.2, 0.8], 0.3), "flow must be in"),
        (lambda: proofs.propagate([0.5, 0.5], np.eye(2), -1), "n_steps"),
        (lambda: proofs.random_distribution(0, np.random.default_rng(0)), "n must be"),
        (lambda: proofs.kl([np.nan, 1.0], [0.5, 0.5]), "finite"),
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
    p = proofs.random_distribution(n, rng) + 0.05
    k = int(rng.integers(2, n - 1))
    p[0] = p[k] = p.min() / 2  # two equal minima
    p /= p.sum()
    T = proofs.cyclic_kernel(p, p.min())
    scale = np.where(np.arange(n) < k, weight, 1 - weight)
    q = p * scale / (p * scale).sum()
    assert proofs.kl_contraction_is_equality(q, p, T)
    assert proofs.kl(q @ T, p) == pytest.approx(proofs.kl(q, p), abs=1e-12)
    # A unique minimum (p[k] raised) links all states again: strict contraction.
    p2 = p.copy()
    p2[k] *= 1.5
    p2 /= p2.sum()
    T2 = proofs.cyclic_kernel(p2, p2.min())
    q2 = p2 * scale / (p2 * scale).sum()
    assert not proofs.kl_contraction_is_equality(q2, p2, T2)
    assert proofs.kl(q2 @ T2, p2) < proofs.kl(q2, p2) - 1e-9


def test_is_primitive_on_the_textbook_cases():
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert not proofs.is_primitive(swap)  # irreducible, period 2
    assert proofs.is_primitive(0.5 * np.eye(2) + 0.5 * swap)  # a self-loop makes it aperiodic
    assert not proofs.is_primitive(np.roll(np.eye(5), 1, axis=1))  # deterministic 5-cycle
    assert not proofs.is_primitive(np.eye(3))  # reducible
    assert proofs.is_primitive([[1.0]])
    # Wielandt's extremal example: primitive, but only T^((n-1)^2 + 1) is positive.
    n = 5
    wielandt = np.zeros((n, n))
    wielandt[np.arange(n - 1), np.arange(1, n)] = 1.0
    wielandt[n - 1, :2] = 0.5
    assert proofs.is_primitive(wielandt)
    power = np.linalg.matrix_power(wielandt, (n - 1) ** 2)
    assert (power == 0).any() and (power @ wielandt > 0).all()


@SETTINGS
@given(n=sizes, seed=seeds, fraction=st.floats(0.05, 0.95))
def test_random_and_cyclic_kernels_are_primitive(n, seed, fraction):
    rng = np.random.default_rng(seed)
    assert proofs.is_primitive(proofs.random_kernel(n, rng))
    p = proofs.random_distribution(n, rng)
    assert proofs.is_primitive(proofs.cyclic_kernel(p, fraction * p.min()))  # self-loops and a cycle


@SETTINGS
@given(p0=st.floats(0.55, 0.95))
def test_a_periodic_kernel_that_does_not_keep_p_never_settles(p0):
    """The deterministic 2-cycle: pT != p, its unique stationary law is uniform, and q_t never converges."""
    p = np.array([p0, 1 - p0])
    swap = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert not proofs.is_stationary(p, swap) and not proofs.is_primitive(swap)
    np.testing.assert_allclose(proofs.stationary_distribution(swap), [0.5, 0.5], atol=1e-12)
    traj = proofs.kl_trajectory(p, swap, p, 6)
    np.testing.assert_allclose(traj[0::2], 0.0, atol=1e-15)
    np.testing.assert_allclose(traj[1::2], proofs.kl(p[::-1], p), rtol=1e-12)
    assert proofs.kl(p[::-1], p) > proofs.kl([0.5, 0.5], p)  # it does not even approach KL(pi || p)
    # Made lazy (aperiodic), the same chain converges to the uniform law: KL(q_t || p) -> KL(pi || p).
    lazy = 0.5 * np.eye(2) + 0.5 * swap
    assert proofs.is_primitive(lazy)
    assert proofs.kl_trajectory(p, lazy, p, 60)[-1] == pytest.approx(proofs.kl([0.5, 0.5], p), abs=1e-12)
