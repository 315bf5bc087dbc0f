"""Checks for ``notebooks/dirac_gan.ipynb``: the R1 penalty and the EMA step."""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.checks.core import check_close, check_function

__all__ = ["check_r1_penalty", "check_ema_update"]


def check_r1_penalty(r1_penalty: Callable) -> None:
    """Check ``r1_penalty(critic, x_real, gamma) -> (γ/2) E‖∇_x D(x)‖²`` against flowedu's reference.

    Cases: the Dirac-GAN critic ``ψx`` (penalty ``(γ/2)ψ²``), a linear critic on [batch, 3] (the same
    penalty for every example), a non-linear critic on images [batch, 1, 4, 4], and a check that the
    result can be differentiated with respect to the critic's parameters (``create_graph=True``).
    """
    from flowedu.gan.penalties import r1_penalty as reference

    g = torch.Generator().manual_seed(0)
    psi = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    linear = torch.nn.Linear(3, 1).double()
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(8, 1)
    ).double()
    cases = [
        (lambda x: psi * x[:, 0], torch.zeros(1, 1, dtype=torch.float64), 0.1),
        (linear, torch.randn(5, 3, generator=g, dtype=torch.float64), 2.0),
        (conv, torch.randn(4, 1, 4, 4, generator=g, dtype=torch.float64), 1.0),
    ]
    check_function(r1_penalty, reference, cases, name="r1_penalty", rtol=1e-8, atol=1e-10)
    check_close(r1_penalty(cases[0][0], cases[0][1], 0.1), 0.05 * 0.7**2, "r1_penalty of the Dirac critic")
    value = r1_penalty(cases[2][0], cases[2][1], 1.0)
    if not value.requires_grad:
        raise AssertionError("r1_penalty: the result does not depend on the critic's parameters "
                             "(compute the input gradient with create_graph=True)")
    (grad,) = torch.autograd.grad(value, conv[0].weight)
    (expected,) = torch.autograd.grad(reference(cases[2][0], cases[2][1], 1.0), conv[0].weight)
    check_close(grad, expected, "gradient of r1_penalty w.r.t. the critic's weights", rtol=1e-6, atol=1e-9)
    print("r1_penalty: the penalty and its gradient agree with the reference.")


def check_ema_update(ema_update: Callable) -> None:
    """Check ``ema_update(average, value, beta) -> β·average + (1 − β)·value`` (no in-place change)."""
    from flowedu.gan.ema import ema_update as reference

    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)
    cases = [(a, b, 0.0), (a, b, 0.9), (a, b, 0.999), (torch.zeros(2), torch.ones(2), 0.5)]
    a_before = a.clone()
    check_function(ema_update, reference, cases, name="ema_update")
    if not torch.equal(a, a_before):
        raise AssertionError("ema_update: modified `average` in place; return a new tensor instead")
