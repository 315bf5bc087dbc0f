"""Chapter: book/gan.md — Exponential moving average (EMA) of parameters, the "generator averaging" of GAN training.

``θ̄_t = β θ̄_{t−1} + (1 − β) θ_t`` (Yazıcı et al. 2019, arXiv:1806.04498; β = 0.999 is a common
choice for image GANs). The average is used for evaluation only: training continues on θ.

For an iterate whose error behaves like ``r^t`` (turning by ω per step), the EMA's error behaves like
``max(r, β)^t``: for ``r < β`` it lags (decays like ``β^t``), for ``r > β`` it follows the iterate at the
ratio :func:`ema_gain` (derived in ``book/gan.md``).
"""

from __future__ import annotations

import cmath
import copy
import math

import torch

from flowedu.validate import real

__all__ = ["ema_update", "ema_gain", "EMA"]


def ema_update(average: torch.Tensor, value: torch.Tensor, beta: float) -> torch.Tensor:
    """One EMA step ``β · average + (1 − β) · value`` (a new tensor; nothing is modified in place).

    Args:
        average: the running average θ̄_{t−1}, any shape.
        value: the new value θ_t, same shape.
        beta: the decay β in [0, 1); β = 0 returns ``value``.

    Returns:
        θ̄_t, same shape as ``value``.
    """
    beta = real(beta, "beta", at_least=0, below=1)
    if average.shape != value.shape:
        raise ValueError(
            f"average and value must have the same shape, got {tuple(average.shape)} and {tuple(value.shape)}"
        )
    return beta * average + (1.0 - beta) * value


def ema_gain(beta: float, r: float = 1.0, omega: float = 0.0) -> float:
    """The limit of ``|EMA error| / |iterate error|`` for an iterate ``p_t = r^t e^{iωt} p_0`` with ``r > β``.

    With ``z = r e^{iω}``, the EMA started at ``p_0`` is ``p̄_t = β^t p_0 + (1 − β) z (z^t − β^t) / (z − β)``.
    For ``r > β`` the ``β^t`` terms die out relative to ``z^t`` and ``p̄_t / p_t → (1 − β) / (1 − β/z)``,
    whose modulus is returned: below 1 when the rotation ω is large enough (the average is closer to
    the centre than the iterate), above 1 without rotation (ω = 0: ``r(1 − β)/(r − β) > 1`` for
    ``r < 1``, the average lags). For ``r < β`` there is no finite limit: the EMA's error decays like
    ``β^t`` while the iterate's decays like ``r^t``. For ``r = 1`` this is the filter factor
    ``(1 − β)/|1 − β e^{−iω}|`` of an orbit at a fixed radius.

    Args:
        beta: the EMA's β in [0, 1).
        r: the iterate's contraction per step, ``r > β`` (finite).
        omega: its turning angle per step in radians.

    Returns:
        The ratio, a positive float.
    """
    beta = real(beta, "beta", at_least=0, below=1)
    r, omega = float(r), float(omega)
    if not (math.isfinite(r) and r > beta):
        raise ValueError(f"r must be a finite number > beta = {beta} (for r < beta the EMA error decays like "
                         f"beta^t and the ratio has no limit), got {r}")
    if not math.isfinite(omega):
        raise ValueError(f"omega must be finite, got {omega}")
    return (1 - beta) / abs(1 - (beta / r) * cmath.exp(-1j * omega))


class EMA:
    """Keep an exponential moving average of a module's parameters in a frozen copy.

    ``ema = EMA(generator, beta=0.999)``; after every optimiser step ``ema.update(generator)``;
    evaluate with ``ema.module``. Buffers (e.g. batch-norm statistics) are copied, not averaged.
    The average starts at the module's current parameters.

    Args:
        module: the ``nn.Module`` to average.
        beta: decay β in [0, 1).
    """

    def __init__(self, module: torch.nn.Module, beta: float = 0.999):
        if not isinstance(module, torch.nn.Module):
            raise ValueError(f"module must be a torch.nn.Module, got {type(module).__name__}")
        self.beta = real(beta, "beta", at_least=0, below=1)
        self.module = copy.deepcopy(module).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.n_updates = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        """Move the average one step toward ``module``'s current parameters."""
        own, new = list(self.module.parameters()), list(module.parameters())
        if len(own) != len(new) or any(a.shape != b.shape for a, b in zip(own, new, strict=True)):
            raise ValueError("module must have the same parameter shapes as the averaged module")
        # [ema-update] (book/gan.md shows the lines from here on)
        # θ̄ ← β θ̄ + (1 − β) θ for every parameter
        for avg, p in zip(own, new, strict=True):
            avg.copy_(ema_update(avg, p.detach(), self.beta))
        # buffers (batch-norm statistics) are copied, not averaged
        for avg_b, b in zip(self.module.buffers(), module.buffers(), strict=True):
            avg_b.copy_(b)
        self.n_updates += 1

    def state_dict(self) -> dict:
        """The averaged module's state dict (save it with ``torch.save``)."""
        return self.module.state_dict()
