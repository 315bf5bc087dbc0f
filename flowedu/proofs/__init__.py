"""Chapter: book/proofs.md — the computations that check the book's theorems, exactly where possible.

* :mod:`flowedu.proofs.markov` -- finite Markov chains, the exact KL divergence, detailed balance,
  stationarity, KL contraction and its equality case, primitivity;
* :mod:`flowedu.proofs.planar` -- the planar layer's invertibility boundary (wᵀû > -1 vs >= -1) and
  the exact condition under which the ‖w‖ bug in û breaks it;
* :mod:`flowedu.proofs.importance` -- why the limit of the importance-weighted bound needs a finite
  bound somewhere, not bounded weights.

The notebook is ``notebooks/proofs_numeric.ipynb``; the linear-Gaussian model it tests the ELBO and
the multi-sample bounds on is ``flowedu.distributions.linear_gaussian``.
"""

import importlib

from flowedu.proofs.markov import (
    check_distribution,
    check_kernel,
    cyclic_kernel,
    independent_kernel,
    is_primitive,
    is_stationary,
    kl,
    kl_contraction_is_equality,
    kl_trajectory,
    metropolis_kernel,
    propagate,
    random_distribution,
    random_kernel,
    reversal_kernel,
    satisfies_detailed_balance,
    stationary_distribution,
)

# The torch-based parts load on first use (``flowedu.proofs.BoundedWeightsExample`` or
# ``from flowedu.proofs import ...`` both work), so that the NumPy-only chain code, which the chapter
# page draws its figure with, imports in a fraction of a second.
_LAZY = {
    "BoundedWeightsExample": "flowedu.proofs.importance",
    "NORM_BUG_SAFE_RANGE": "flowedu.proofs.planar",
    "kappa_with_norm_bug": "flowedu.proofs.planar",
    "norm_bug_breaks_invertibility": "flowedu.proofs.planar",
    "norm_bug_threshold": "flowedu.proofs.planar",
    "planar_collision": "flowedu.proofs.planar",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "BoundedWeightsExample",
    "NORM_BUG_SAFE_RANGE",
    "check_distribution",
    "check_kernel",
    "cyclic_kernel",
    "independent_kernel",
    "is_primitive",
    "is_stationary",
    "kappa_with_norm_bug",
    "kl",
    "kl_contraction_is_equality",
    "kl_trajectory",
    "metropolis_kernel",
    "norm_bug_breaks_invertibility",
    "norm_bug_threshold",
    "planar_collision",
    "propagate",
    "random_distribution",
    "random_kernel",
    "reversal_kernel",
    "satisfies_detailed_balance",
    "stationary_distribution",
]
