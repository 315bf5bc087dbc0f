"""Chapter: book/vae.md — elementary log-densities in nats: diagonal Gaussian, Bernoulli (from logits),
categorical, and the closed-form KL of a diagonal Gaussian to N(0, I).

Each function sums over the *event* dimension (the last one; for ``log_categorical`` the last but one,
the last holding the classes) and broadcasts over the rest, so ``x: [batch, dim]`` gives ``[batch]``
and ``x: [k, batch, dim]`` gives ``[k, batch]``. The formulas are derived in ``book/vae.md``.

Checks of the *values* of the data (binary pixels, classes in range) read the tensor back to the host,
which makes a GPU wait at every call. A training loop that has checked its whole data set once can
switch them off for its mini-batches with ``with skip_value_checks():`` (shapes are always checked).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

__all__ = ["log_normal_diag", "log_standard_normal", "log_bernoulli", "log_categorical", "kl_normal_standard",
           "skip_value_checks", "checking_values"]

LOG_2PI = math.log(2 * math.pi)
_CHECK_VALUES = [True]


def checking_values() -> bool:
    """Whether the value checks of the data are on (they are, except inside :func:`skip_value_checks`)."""
    return _CHECK_VALUES[-1]


@contextlib.contextmanager
def skip_value_checks() -> Iterator[None]:
    """Skip the value checks of the data (0/1 pixels, classes in range) inside the block.

    For a loop whose caller has already checked the whole data set once: the per-batch checks would
    each make a GPU wait for the host. Shapes are still checked. Nests; restores the previous state.
    """
    _CHECK_VALUES.append(False)
    try:
        yield
    finally:
        _CHECK_VALUES.pop()


def _check_tensor(value, name: str) -> None:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.dim() < 1:
        raise ValueError(f"{name} must have at least one dimension (the event dimension), got a scalar")


def _check_broadcast(a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    try:
        torch.broadcast_shapes(a.shape, b.shape)
    except RuntimeError as err:
        raise ValueError(f"{names} must broadcast, got shapes {tuple(a.shape)} and {tuple(b.shape)}") from err


def log_normal_diag(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, diag(exp(log_var))), summed over the last dimension.

    log N(x; μ, diag σ²) = -½ Σ_j [log 2π + log σ_j² + (x_j - μ_j)² / σ_j²].

    Args:
        x: [..., dim].
        mean: [..., dim], broadcastable with ``x``.
        log_var: [..., dim], the log-variances log σ², broadcastable with ``x``.

    Returns:
        [...] in nats.
    """
    for value, name in ((x, "x"), (mean, "mean"), (log_var, "log_var")):
        _check_tensor(value, name)
    _check_broadcast(x, mean, "x and mean")
    _check_broadcast(x, log_var, "x and log_var")
    return -0.5 * (LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)


def log_standard_normal(x: torch.Tensor) -> torch.Tensor:
    """log N(x; 0, I) = -½ Σ_j x_j² - (dim / 2) log 2π, summed over the last dimension.

    The one N(0, I) log-density of the package (:class:`flowedu.distributions.StandardNormal`, the flows'
    base and the VAE's standard prior, the g-and-k densities, the checks).

    Args:
        x: [..., dim].

    Returns:
        [...] in nats.
    """
    _check_tensor(x, "x")
    return -0.5 * (x**2).sum(-1) - 0.5 * x.shape[-1] * LOG_2PI


def log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; p = sigmoid(logits)), summed over the last dimension, computed from logits.

    log p(x) = Σ_j [x_j ℓ_j - softplus(ℓ_j)], which equals Σ_j [x_j log p_j + (1 - x_j) log(1 - p_j)]
    with p = sigmoid(ℓ), but never takes the log of a probability that rounded to 0 or 1.

    Args:
        x: [..., dim] of zeros and ones (binary pixels; binarize intensities first).
        logits: [..., dim], broadcastable with ``x``.

    Returns:
        [...] in nats (always <= 0).
    """
    _check_tensor(x, "x")
    _check_tensor(logits, "logits")
    _check_broadcast(x, logits, "x and logits")
    if checking_values() and x.numel() and ((x != 0) & (x != 1)).any():
        raise ValueError("x must hold only 0 and 1 (binary pixels); binarize intensities first")
    return (x * logits - F.softplus(logits)).sum(-1)


def log_categorical(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Categorical(x; softmax(logits)), summed over the dimension of the variables.

    log p(x) = Σ_j [ℓ_{j, x_j} - log Σ_c exp(ℓ_{j, c})] (log-softmax, stable for any logits).

    Args:
        x: [..., dim], integer classes in [0, n_classes).
        logits: [..., dim, n_classes]; its leading dimensions broadcast with those of ``x``.

    Returns:
        [...] in nats.
    """
    _check_tensor(x, "x")
    _check_tensor(logits, "logits")
    if logits.dim() < 2:
        raise ValueError(f"logits must have shape [..., dim, n_classes], got {tuple(logits.shape)}")
    if torch.is_floating_point(x) or torch.is_complex(x) or x.dtype == torch.bool:
        raise ValueError(f"x must hold integer classes, got dtype {x.dtype}")
    n_classes = logits.shape[-1]
    if checking_values() and x.numel() and (x.min() < 0 or x.max() >= n_classes):
        raise ValueError(f"x must hold classes in [0, {n_classes}), got values in [{int(x.min())}, {int(x.max())}]")
    _check_broadcast(x, logits[..., 0], "x and logits[..., 0]")
    shape = torch.broadcast_shapes(x.shape, logits.shape[:-1])
    log_p = torch.log_softmax(logits, dim=-1).expand(*shape, n_classes)
    return log_p.gather(-1, x.expand(shape).unsqueeze(-1)).squeeze(-1).sum(-1)


def kl_normal_standard(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, diag exp(log_var)) ‖ N(0, I)) in closed form, summed over the last dimension.

    KL = ½ Σ_j (σ_j² + μ_j² - 1 - log σ_j²)  (Kingma & Welling 2014, appendix B).

    Args:
        mean: [..., dim].
        log_var: [..., dim], broadcastable with ``mean``.

    Returns:
        [...] in nats (>= 0).
    """
    _check_tensor(mean, "mean")
    _check_tensor(log_var, "log_var")
    _check_broadcast(mean, log_var, "mean and log_var")
    return 0.5 * (torch.exp(log_var) + mean**2 - 1.0 - log_var).sum(-1)
