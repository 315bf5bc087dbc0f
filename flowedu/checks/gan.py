"""Chapter: book/gan.md — checks for the R1 penalty and the EMA step (``dirac_gan``), the
VAE-GAN objective per example (``gan_images``), the support check of samples (``gan_moons``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.checks.core import check_close, check_function, leaves_rng_alone

__all__ = ["check_r1_penalty", "check_ema_update", "check_vae_gan_objective", "check_fraction_far"]


@leaves_rng_alone
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


@leaves_rng_alone
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


@leaves_rng_alone
def check_fraction_far(fraction_far: Callable) -> None:
    """Check ``fraction_far(points, reference, radius)``: the fraction of ``points`` farther than ``radius``
    from every point of ``reference``, against flowedu's reference.

    Cases: a hand-made one (a point at exactly ``radius`` is *not* farther), a sample against itself
    (0), and random 2-D and 5-D samples. The random numbers come from a local generator.
    """
    from flowedu.gan.evaluation import fraction_far as reference

    g = torch.Generator().manual_seed(0)
    hand = (torch.tensor([[0.05, 0.0], [0.5, 0.0], [1.0, 0.3], [3.0, 3.0]]), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    a2, b2 = torch.randn(300, 2, generator=g), torch.randn(200, 2, generator=g) + 0.5
    a5, b5 = torch.randn(100, 5, generator=g), torch.randn(400, 5, generator=g)
    cases = [(*hand, 0.25), (*hand, 0.5), (a2, a2, 0.01), (a2, b2, 0.2), (b2, a2, 0.2), (a5, b5, 1.5)]
    check_function(lambda a, b, r: torch.as_tensor(float(fraction_far(a, b, r)), dtype=torch.float64),
                   lambda a, b, r: torch.as_tensor(reference(a, b, r), dtype=torch.float64),
                   cases, name="fraction_far", rtol=0, atol=1e-12)


@leaves_rng_alone
def check_vae_gan_objective(vae_gan_objective: Callable) -> None:
    """Check ``vae_gan_objective(neg_elbo, adv, adv_weight)`` = ``mean_b(−ELBO_b) + w · mean_b Σ_p ℓ_bp``.

    Cases: one adversarial loss per image (``adv`` ``[B]``), a per-pixel map (``[B, 1, 4, 4]``), weight 0,
    and the course's batch-summed form, which must *not* be what is computed. Values and the gradient
    with respect to both inputs are compared with flowedu's reference. Local random numbers only.
    """
    from flowedu.gan.vae_gan import vae_gan_objective as reference

    g = torch.Generator().manual_seed(0)
    neg_elbo = 80 + 10 * torch.rand(8, generator=g, dtype=torch.float64)
    per_image = torch.rand(8, generator=g, dtype=torch.float64)
    per_pixel = torch.rand(8, 1, 4, 4, generator=g, dtype=torch.float64)
    cases = [(neg_elbo, per_image, 10.0), (neg_elbo, per_pixel, 0.5), (neg_elbo, per_image, 0.0)]
    check_function(vae_gan_objective, reference, cases, name="vae_gan_objective", rtol=1e-10, atol=1e-10)
    a, b = neg_elbo.clone().requires_grad_(True), per_pixel.clone().requires_grad_(True)
    grads = torch.autograd.grad(vae_gan_objective(a, b, 0.5), (a, b))
    expected = torch.autograd.grad(reference(a, b, 0.5), (a, b))
    for name, got, want in zip(("neg_elbo", "adv"), grads, expected, strict=True):
        check_close(got, want, f"gradient of vae_gan_objective w.r.t. {name}", rtol=1e-10, atol=1e-12)
    print("vae_gan_objective: values and gradients agree with the reference (both terms per example).")
