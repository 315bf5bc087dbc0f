"""Chapter: book/proofs.md — finite-state Markov chains and the exact KL divergence.

On a finite set :math:`\\{0, \\dots, n-1\\}` a distribution is a probability vector ``p: [n]`` and a Markov
kernel is a row-stochastic matrix ``T: [n, n]`` with ``T[x, y] = T(y | x)``, the probability of moving
from ``x`` to ``y``. A distribution propagates as a row vector, ``q_{t+1} = q_t T``. Everything here is
exact (float64 NumPy, no sampling), so each theorem of ``book/proofs.md`` can be checked to rounding
error:

* :func:`kl` -- :math:`\\mathrm{KL}(q \\| p) = \\sum_x q(x) \\log(q(x)/p(x))` with :math:`0 \\log 0 = 0`;
* :func:`metropolis_kernel` -- satisfies detailed balance with respect to ``p`` (Metropolis et al.
  1953; Hastings 1970);
* :func:`cyclic_kernel` -- keeps ``p`` invariant without detailed balance (a constant probability
  flow around a cycle);
* :func:`kl_contraction_is_equality` -- the exact condition for :math:`\\mathrm{KL}(qT \\| p) =
  \\mathrm{KL}(q \\| p)`: the ratio ``q / p`` is constant on the predecessors of every state;
* :func:`is_primitive` -- irreducible and aperiodic, the hypothesis under which a chain forgets its
  start and converges to its unique stationary distribution.
"""

from __future__ import annotations

import numpy as np

from flowedu.validate import integer

__all__ = [
    "check_distribution",
    "check_kernel",
    "kl",
    "random_distribution",
    "random_kernel",
    "metropolis_kernel",
    "cyclic_kernel",
    "independent_kernel",
    "propagate",
    "kl_trajectory",
    "stationary_distribution",
    "is_primitive",
    "is_stationary",
    "satisfies_detailed_balance",
    "reversal_kernel",
    "kl_contraction_is_equality",
]

_TOL = 1e-10


def _as_matrix(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] == 0:
        raise ValueError(f"{name} must be a square [n, n] matrix with n >= 1, got shape {array.shape}")
    return array


def check_distribution(p, name: str = "p", atol: float = 1e-8) -> np.ndarray:
    """Validate a probability vector and return it as float64.

    Args:
        p: [n], finite, non-negative entries summing to 1 (within ``atol``).
        name: the parameter's name, used in the error message.

    Raises:
        ValueError: naming ``name`` and what is wrong (shape, NaN, negative entry, sum).
    """
    array = np.asarray(p, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty vector [n], got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must have finite entries, got {array}")
    if array.min() < 0:
        raise ValueError(f"{name} must have entries >= 0, got min {array.min():.3g}")
    if abs(array.sum() - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1, got {array.sum():.12g}")
    return array


def check_kernel(T, name: str = "T", atol: float = 1e-8) -> np.ndarray:
    """Validate a Markov kernel (row-stochastic matrix, ``T[x, y] = T(y | x)``) and return it as float64.

    Args:
        T: [n, n], finite, non-negative, each row summing to 1 (within ``atol``).

    Raises:
        ValueError: naming ``name`` and the first row that is not a distribution.
    """
    matrix = _as_matrix(name, T)
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must have finite entries")
    if matrix.min() < 0:
        raise ValueError(f"{name} must have entries >= 0, got min {matrix.min():.3g}")
    sums = matrix.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
    if bad.size:
        raise ValueError(f"{name} must be row-stochastic (rows sum to 1), row {bad[0]} sums to {sums[bad[0]]:.12g}")
    return matrix


def _same_size(p: np.ndarray, T: np.ndarray, p_name: str = "p", t_name: str = "T") -> None:
    if T.shape[0] != p.size:
        raise ValueError(f"{t_name} must be [{p.size}, {p.size}] to match {p_name}, got {T.shape}")


def kl(q, p) -> float:
    """Exact KL divergence between two distributions on a finite set, in nats.

    :math:`\\mathrm{KL}(q \\| p) = \\sum_{x: q(x) > 0} q(x) \\log \\frac{q(x)}{p(x)}`, with :math:`0 \\log 0 = 0`
    and the value :math:`+\\infty` when some ``q(x) > 0`` has ``p(x) = 0``.

    Args:
        q, p: [n] probability vectors.

    Returns:
        A float >= 0 (``inf`` if ``q`` is not absolutely continuous with respect to ``p``).
    """
    q = check_distribution(q, "q")
    p = check_distribution(p, "p")
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {q.shape} and {p.shape}")
    # [kl]
    support = q > 0  # terms with q(x) = 0 contribute 0 (0 log 0 = 0)
    if np.any(p[support] == 0):
        return float("inf")  # q(x) > 0 = p(x): not absolutely continuous
    value = float(np.sum(q[support] * (np.log(q[support]) - np.log(p[support]))))
    return max(value, 0.0)  # >= 0 exactly (Gibbs): clip rounding errors
    # [/kl]


def random_distribution(n: int, rng: np.random.Generator, concentration: float = 1.0) -> np.ndarray:
    """A Dirichlet(concentration, ..., concentration) draw on ``n`` states, every entry > 0.

    Args:
        n: number of states, >= 1.
        rng: a NumPy ``Generator``.
        concentration: > 0; small values give peaked distributions.

    Returns:
        [n] probability vector with strictly positive entries.
    """
    n = integer(n, "n", 1)
    if not concentration > 0:
        raise ValueError(f"concentration must be > 0, got {concentration}")
    p = rng.dirichlet(np.full(int(n), float(concentration)))
    p = np.maximum(p, 1e-12)  # Dirichlet draws with small concentration can underflow to 0
    return p / p.sum()


def random_kernel(n: int, rng: np.random.Generator, concentration: float = 1.0) -> np.ndarray:
    """A random Markov kernel on ``n`` states: each row an independent Dirichlet draw (all entries > 0).

    Such a kernel keeps its own stationary distribution invariant but, almost surely, no other given
    ``p``: it is the book's kernel that does *not* keep ``p`` invariant. All its entries are positive, so
    it is primitive (irreducible and aperiodic, :func:`is_primitive`) and every chain converges to that
    stationary distribution.

    Returns:
        [n, n] row-stochastic matrix.
    """
    n = integer(n, "n", 1)
    return np.stack([random_distribution(n, rng, concentration) for _ in range(int(n))])


def metropolis_kernel(p, proposal) -> np.ndarray:
    """Metropolis--Hastings kernel for target ``p`` with proposal ``Q`` (Metropolis et al. 1953; Hastings 1970).

    For ``y != x``: :math:`T(y|x) = Q(y|x) \\min\\left(1, \\frac{p(y) Q(x|y)}{p(x) Q(y|x)}\\right)`; the
    rejected mass stays at ``x``: :math:`T(x|x) = 1 - \\sum_{y \\ne x} T(y|x)`. Then
    :math:`p(x) T(y|x) = \\min(p(x) Q(y|x), p(y) Q(x|y))` is symmetric in ``(x, y)``: detailed balance.

    Args:
        p: [n] target with every entry > 0.
        proposal: [n, n] row-stochastic ``Q[x, y] = Q(y | x)`` with ``Q[x, y] > 0`` iff ``Q[y, x] > 0``.

    Returns:
        [n, n] row-stochastic kernel ``T`` with ``p[x] T[x, y] == p[y] T[y, x]``.
    """
    p = check_distribution(p)
    if p.min() <= 0:
        raise ValueError(f"p must have every entry > 0, got min {p.min():.3g}")
    Q = check_kernel(proposal, "proposal")
    _same_size(p, Q, t_name="proposal")
    if np.any((Q > 0) != (Q.T > 0)):
        raise ValueError("proposal must satisfy Q[x, y] > 0 iff Q[y, x] > 0 (else the ratio is undefined)")
    # [metropolis]
    flow = p[:, None] * Q  # p(x) Q(y|x)
    # off the diagonal, T(y|x) = min{p(x) Q(y|x), p(y) Q(x|y)} / p(x)
    T = np.minimum(flow, flow.T) / p[:, None]
    np.fill_diagonal(T, 0.0)
    # the rejected mass stays at x
    T[np.diag_indices_from(T)] = np.clip(1.0 - T.sum(axis=1), 0.0, None)
    return T
    # [/metropolis]


def cyclic_kernel(p, flow: float) -> np.ndarray:
    """A kernel that keeps ``p`` invariant *without* detailed balance: a constant flux around a cycle.

    From state ``x`` move to ``x + 1 (mod n)`` with probability γ / p(x), else stay:
    C(x+1 | x) = γ / p(x), C(x | x) = 1 - γ / p(x) (``ex-cyclic-kernel``, with γ the ``flow``). The mass
    entering ``y`` is p(y) (1 - γ / p(y)) + p(y-1) γ / p(y-1) = p(y), so pC = p. For ``n >= 3`` the
    probability flux ``x -> x+1`` is γ and the reverse flux is 0: detailed balance fails.

    Args:
        p: [n] target, n >= 2, every entry > 0.
        flow: the flux γ, in ``(0, min p]``.

    Returns:
        [n, n] row-stochastic kernel ``C`` with ``p @ C == p``.
    """
    p = check_distribution(p)
    if p.size < 2:
        raise ValueError(f"p must have at least 2 states for a cycle, got {p.size}")
    if p.min() <= 0:
        raise ValueError(f"p must have every entry > 0, got min {p.min():.3g}")
    if not 0 < flow <= p.min():
        raise ValueError(f"flow must be in (0, min p] = (0, {p.min():.6g}], got {flow}")
    # [cyclic]
    n = p.size
    T = np.diag(1.0 - flow / p)  # C(x | x) = 1 - gamma / p(x)
    # C(x + 1 | x) = gamma / p(x), with state n - 1 followed by state 0
    T[np.arange(n), (np.arange(n) + 1) % n] += flow / p
    return T
    # [/cyclic]


def independent_kernel(p) -> np.ndarray:
    """The kernel that ignores its state, ``T(y|x) = p(y)`` (every row equals ``p``): one step reaches ``p``.

    This is the "T = const" case of the proof that comes with the PKU MCMC problem set (``book/intro.md``,
    "About the sources"); it gives *strict* contraction (to 0) for every ``q != p``.
    """
    p = check_distribution(p)
    return np.tile(p, (p.size, 1))


def propagate(q0, T, n_steps: int) -> np.ndarray:
    """The marginals of a chain started at ``q0``: :math:`q_t = q_0 T^t` for ``t = 0..n_steps``.

    Args:
        q0: [n] initial distribution.
        T: [n, n] kernel.
        n_steps: >= 0.

    Returns:
        [n_steps + 1, n]; row ``t`` is ``q_t``.
    """
    q = check_distribution(q0, "q0")
    T = check_kernel(T)
    _same_size(q, T, "q0")
    n_steps = integer(n_steps, "n_steps", 0)
    out = np.empty((int(n_steps) + 1, q.size))
    out[0] = q
    for t in range(1, int(n_steps) + 1):
        out[t] = out[t - 1] @ T
        out[t] /= out[t].sum()  # keep rounding from drifting off the simplex
    return out


def kl_trajectory(q0, T, p, n_steps: int) -> np.ndarray:
    """:math:`\\mathrm{KL}(q_0 T^t \\| p)` for ``t = 0..n_steps``: ``[n_steps + 1]``."""
    p = check_distribution(p)
    return np.array([kl(q, p) for q in propagate(q0, T, n_steps)])


def stationary_distribution(T) -> np.ndarray:
    """A stationary distribution ``pi`` of ``T`` (``pi T = pi``), from the left eigenvector of eigenvalue 1.

    Unique when ``T`` is irreducible (periodic or not); otherwise one of the stationary distributions is
    returned. Uniqueness is not convergence: ``q_0 T^t -> pi`` for every ``q_0`` needs ``T`` aperiodic too
    (:func:`is_primitive`).
    """
    T = check_kernel(T)
    values, vectors = np.linalg.eig(T.T)
    v = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    v = np.abs(v)  # an eigenvector of eigenvalue 1 of an irreducible kernel has one sign
    return v / v.sum()


def is_primitive(T) -> bool:
    """True if ``T`` is irreducible and aperiodic: some power ``T^m`` has every entry > 0.

    On a finite set this is the hypothesis of the convergence theorem: then ``T`` has a unique
    stationary ``pi`` and ``q_0 T^t -> pi`` for every ``q_0``. By Wielandt's bound it suffices to look at
    ``m >= (n - 1)^2 + 1``; once a power of a kernel is positive, every higher power is (each row of ``T``
    has a positive entry), so repeated squaring of the sparsity pattern decides it exactly.

    Args:
        T: [n, n] kernel.
    """
    T = check_kernel(T)
    n = T.shape[0]
    pattern = (T > 0).astype(np.int64)
    power = 1
    while power < (n - 1) ** 2 + 1:
        pattern = np.minimum(pattern @ pattern, 1)
        power *= 2
    return bool(pattern.all())


def is_stationary(p, T, atol: float = _TOL) -> bool:
    """True if ``p T = p`` (the kernel keeps ``p`` invariant), within ``atol`` in every entry."""
    p, T = check_distribution(p), check_kernel(T)
    _same_size(p, T)
    return bool(np.allclose(p @ T, p, rtol=0.0, atol=atol))


def satisfies_detailed_balance(p, T, atol: float = _TOL) -> bool:
    """True if ``p(x) T(y|x) = p(y) T(x|y)`` for all pairs: the flux matrix ``diag(p) T`` is symmetric."""
    p, T = check_distribution(p), check_kernel(T)
    _same_size(p, T)
    flux = p[:, None] * T
    return bool(np.allclose(flux, flux.T, rtol=0.0, atol=atol))


def reversal_kernel(p, T) -> np.ndarray:
    """The time reversal (``p``-adjoint) of ``T``: :math:`T^*(x|y) = p(x) T(y|x) / p(y)`.

    It is a kernel exactly when ``p T = p``, and equals ``T`` exactly under detailed balance. The general
    proof of KL contraction is Jensen's inequality under :math:`T^*(\\cdot|y)`.

    Args:
        p: [n] with every entry > 0, invariant for ``T``.
        T: [n, n] kernel.

    Returns:
        [n, n] row-stochastic ``T_star[y, x] = T*(x | y)``.
    """
    p, T = check_distribution(p), check_kernel(T)
    _same_size(p, T)
    if p.min() <= 0:
        raise ValueError(f"p must have every entry > 0, got min {p.min():.3g}")
    if not is_stationary(p, T, atol=1e-8):
        raise ValueError("T must keep p invariant (p T = p) for its reversal to be a kernel")
    T_star = (p[:, None] * T).T / p[:, None]
    return T_star / T_star.sum(axis=1, keepdims=True)


def kl_contraction_is_equality(q, p, T, rtol: float = 1e-9) -> bool:
    """The exact equality condition of :math:`\\mathrm{KL}(qT \\| p) \\le \\mathrm{KL}(q \\| p)` for ``pT = p``.

    Equality holds iff the ratio :math:`r = q/p` is constant on the predecessors of every state:
    :math:`r(x) = r(x')` whenever :math:`T(y|x) > 0` and :math:`T(y|x') > 0` for some ``y`` (then the
    common value is :math:`(qT)(y)/p(y)`). Jensen's inequality for the strictly convex
    :math:`t \\log t` under :math:`T^*(\\cdot|y)` is an equality exactly when ``r`` is constant on its
    support, :math:`\\{x : T(y|x) > 0\\}`.

    Args:
        q: [n] distribution; p: [n] with every entry > 0; T: [n, n] kernel with ``p T = p``.
        rtol: relative tolerance for "constant".

    Returns:
        True when equality holds.
    """
    q, p, T = check_distribution(q, "q"), check_distribution(p), check_kernel(T)
    _same_size(p, T)
    if q.shape != p.shape:
        raise ValueError(f"q and p must have the same shape, got {q.shape} and {p.shape}")
    if p.min() <= 0:
        raise ValueError(f"p must have every entry > 0, got min {p.min():.3g}")
    if not is_stationary(p, T, atol=1e-8):
        raise ValueError("T must keep p invariant (p T = p); the contraction theorem assumes it")
    # [equality]
    ratio = q / p  # r = q / p
    for y in range(p.size):
        predecessors = ratio[T[:, y] > 0]  # r on pred(y) = {x : T(y|x) > 0}
        if predecessors.size == 0:
            continue
        spread = predecessors.max() - predecessors.min()
        if spread > rtol * max(1.0, predecessors.max()):
            return False  # r is not constant on pred(y): Jensen is strict at y
    return True
    # [/equality]
