"""Chapter: book/gan.md — Gradient penalties on a critic (discriminator): R1 and the WGAN gradient penalty.

Both act on the input gradient ``∇_x D(x)`` of the critic, computed by autograd with
``create_graph=True`` so that the penalty itself can be differentiated with respect to the critic's
parameters. The notation follows ``book/gan.md``: critic ``D_ψ``, generator ``G_θ``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.validate import real

__all__ = ["r1_penalty", "gradient_penalty", "input_gradient"]


def _check_batch(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not torch.is_floating_point(x) or x.dim() < 1 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty floating-point tensor [batch, ...], got {x!r:.60}")


def input_gradient(critic: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The input gradient ``∇_x D(x)`` of every example, differentiable with respect to the critic.

    Args:
        critic: ``x [batch, ...] -> D(x) [batch]`` or ``[batch, 1]``, one score per example.
        x: points ``[batch, ...]``.

    Returns:
        ``[batch, ...]``, the gradient of ``D(x_i)`` with respect to ``x_i`` (the examples do not
        interact, so the gradient of the sum is the per-example gradient).
    """
    _check_batch(x, "x")
    x = x.detach().requires_grad_(True)
    scores = critic(x)
    if scores.numel() != len(x):
        raise ValueError(f"critic must return one score per example, got {tuple(scores.shape)} for batch {len(x)}")
    (grad,) = torch.autograd.grad(scores.sum(), x, create_graph=True)
    return grad


def r1_penalty(critic: Callable[[torch.Tensor], torch.Tensor], x_real: torch.Tensor, gamma: float) -> torch.Tensor:
    """R1 penalty (Mescheder, Geiger & Nowozin 2018, arXiv:1801.04406): ``(γ/2) E_{p_D} ‖∇_x D(x)‖²``.

    Penalises the critic's input gradient **on real data only**. Note the factor 1/2: with it, the
    Dirac-GAN's critical coefficient is ``γ = 2 f'(0)`` (``γ = 1`` for the GAN loss); implementations
    that drop the 1/2 have their critical value at half of that.

    Args:
        critic: ``x [batch, ...] -> D(x) [batch]`` (or ``[batch, 1]``).
        x_real: real examples ``[batch, ...]``.
        gamma: the coefficient γ >= 0.

    Returns:
        A scalar tensor, differentiable with respect to the critic's parameters.
    """
    gamma = real(gamma, "gamma", at_least=0)
    grad = input_gradient(critic, x_real)
    return 0.5 * gamma * grad.flatten(1).pow(2).sum(1).mean()


def gradient_penalty(
    critic: Callable[[torch.Tensor], torch.Tensor],
    x_real: torch.Tensor,
    x_fake: torch.Tensor,
    lam: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017, arXiv:1704.00028): ``λ E_{x̂} (‖∇_x D(x̂)‖ − 1)²``.

    ``x̂ = ε x_real + (1 − ε) x_fake`` with ``ε ~ U[0, 1]`` drawn per example. It pushes the gradient
    norm toward 1 (a soft 1-Lipschitz constraint) rather than toward 0, which is why a critic that is
    flat on the data is not an attracting equilibrium: in the Dirac-GAN the field jumps by 4λ across
    ψ = 0 and pushes every nearby critic away from flat (``book/gan.md``). The norm's gradient at a
    zero input gradient is taken as 0 (autograd's convention).

    Args:
        critic: ``x [batch, ...] -> D(x) [batch]`` (or ``[batch, 1]``).
        x_real, x_fake: ``[batch, ...]`` of the same shape.
        lam: the coefficient λ >= 0.
        generator: CPU ``torch.Generator`` for ε.

    Returns:
        A scalar tensor, differentiable with respect to the critic's parameters.
    """
    lam = real(lam, "lam", at_least=0)
    _check_batch(x_real, "x_real")
    _check_batch(x_fake, "x_fake")
    if x_real.shape != x_fake.shape:
        shapes = f"{tuple(x_real.shape)} and {tuple(x_fake.shape)}"
        raise ValueError(f"x_real and x_fake must have the same shape, got {shapes}")
    shape = (len(x_real),) + (1,) * (x_real.dim() - 1)
    eps = torch.rand(shape, generator=generator, dtype=x_real.dtype).to(x_real.device)
    x_hat = eps * x_real.detach() + (1 - eps) * x_fake.detach()
    grad = input_gradient(critic, x_hat)
    return lam * (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
