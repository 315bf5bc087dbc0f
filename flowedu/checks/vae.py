"""Chapter: book/vae.md — checks for the exercises of ``notebooks/vae.ipynb`` and ``notebooks/vae_training.ipynb``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.checks.core import check_close, leaves_rng_alone

__all__ = ["check_reparameterize", "check_elbo", "check_learning_rate_study"]


@leaves_rng_alone
def check_reparameterize(reparameterize: Callable) -> None:
    """Check ``reparameterize(mean, log_var, eps) -> z = mean + exp(½ log_var) * eps`` and its gradients.

    Cases include a leading sample dimension (eps: [k, batch, d]) and large log-variances. The gradient
    must flow to both ``mean`` and ``log_var``: ∂z/∂μ = 1 and ∂z/∂log σ² = ½ σ ε.
    """
    from flowedu.vae import reparameterize as reference

    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g)),
        (torch.randn(2, 5, generator=g, dtype=torch.float64), 4 * torch.randn(2, 5, generator=g, dtype=torch.float64),
         torch.randn(7, 2, 5, generator=g, dtype=torch.float64)),
        (torch.zeros(1, 2), torch.full((1, 2), -20.0), torch.ones(1, 2)),
    ]
    for number, (mean, log_var, eps) in enumerate(cases):
        mean_s, log_var_s = mean.clone().requires_grad_(True), log_var.clone().requires_grad_(True)
        z = reparameterize(mean_s, log_var_s, eps)
        check_close(z, reference(mean, log_var, eps), f"z (case {number})", rtol=1e-5, atol=1e-6)
        if not z.requires_grad:
            raise AssertionError(f"z (case {number}) does not depend on mean and log_var through autograd "
                                 "(did you detach, or sample with torch.distributions' .sample()?)")
        grad_mean, grad_log_var = torch.autograd.grad(z.sum(), (mean_s, log_var_s), allow_unused=True)
        if grad_mean is None or grad_log_var is None:
            raise AssertionError(f"case {number}: no gradient reaches {'mean' if grad_mean is None else 'log_var'}")
        k = eps.numel() // mean.numel()
        check_close(grad_mean, torch.full_like(mean, float(k)), f"dz/dmean (case {number})")
        expected = (0.5 * torch.exp(0.5 * log_var) * eps).reshape(-1, *mean.shape).sum(0)
        check_close(grad_log_var, expected, f"dz/dlog_var (case {number})", rtol=1e-5, atol=1e-6)
    print(f"reparameterize: all {len(cases)} cases agree with the reference, values and gradients.")


@leaves_rng_alone
def check_elbo(elbo: Callable) -> None:
    """Check ``elbo(model, x, eps) -> [batch]``, the one-sample Monte Carlo ELBO in nats,

        log p(x | z) + log p(z) - log q(z | x),   z = μ_φ(x) + σ_φ(x) ε,

    against :meth:`flowedu.vae.VAE.elbo` with ``analytic_kl=False``, for a standard normal and a
    mixture prior, Bernoulli and categorical likelihoods, and its gradient with respect to the encoder.
    """
    from flowedu.vae import (
        VAE,
        BernoulliDecoder,
        CategoricalDecoder,
        GaussianEncoder,
        MixturePrior,
        StandardNormalPrior,
    )

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    shape, d = (1, 4, 4), 3
    binary = (torch.rand(5, *shape, generator=g) < 0.4).float()
    levels = torch.randint(0, 17, (5, *shape), generator=g).float() / 16
    cases = [
        ("standard prior, Bernoulli", VAE(GaussianEncoder(shape, d, (8,)), BernoulliDecoder(d, shape, (8,)),
                                          StandardNormalPrior(d)), binary),
        ("mixture prior, Bernoulli", VAE(GaussianEncoder(shape, d, (8,)), BernoulliDecoder(d, shape, (8,)),
                                         MixturePrior(4, d)), binary),
        ("mixture prior, categorical", VAE(GaussianEncoder(shape, d, (8,)), CategoricalDecoder(d, shape, 17, (8,)),
                                           MixturePrior(3, d)), levels),
    ]
    for name, model, x in cases:
        eps = torch.randn(len(x), d, generator=g)
        got = elbo(model, x, eps)
        expected = model.elbo(x, eps=eps, analytic_kl=False)
        check_close(got, expected.detach(), f"elbo ({name})", rtol=1e-5, atol=1e-4)
        if not got.requires_grad:
            raise AssertionError(f"elbo ({name}) carries no gradient: the loss could not train the model")
        weight = model.encoder.net[0].weight
        (g_got,) = torch.autograd.grad(got.sum(), weight)
        (g_ref,) = torch.autograd.grad(expected.sum(), weight)
        check_close(g_got, g_ref, f"d elbo / d encoder weights ({name})", rtol=1e-4, atol=1e-4)
    print(f"elbo: all {len(cases)} cases agree with the reference, values and encoder gradients.")


@leaves_rng_alone
def check_learning_rate_study(study: Callable) -> None:
    """Check ``study(make_model, rates, train) -> {rate: train(make_model(), rate)}``, one fresh model per rate.

    ``make_model()`` returns a new untrained model; ``train(model, rate)`` trains it and returns its
    validation curve. The check uses stand-ins that record which model each rate was given: a study that
    creates the model once, before its loop, hands every rate the model the previous rates trained.
    """
    created, seen = [], []

    class Model:  # a stand-in that counts its training runs
        def __init__(self):
            self.runs = 0
            created.append(self)

    def train(model, rate):
        seen.append((rate, model, model.runs))
        model.runs += 1
        return [rate, float(model.runs)]

    rates = [0.1, 0.01, 0.001]
    result = study(Model, rates, train)
    if not isinstance(result, dict) or list(result) != rates:
        raise AssertionError(f"study must return a dict keyed by the rates in order {rates}, got {result!r}")
    if [rate for rate, _, _ in seen] != rates:
        raise AssertionError(f"train must be called once per rate, in order; it was called for "
                             f"{[rate for rate, _, _ in seen]}")
    reused = [rate for rate, _, runs in seen if runs > 0]
    if reused:
        raise AssertionError(f"rate(s) {reused} continued training a model that an earlier rate had already "
                             "trained: create the model inside the loop, once per rate")
    if len({id(model) for _, model, _ in seen}) != len(rates):
        raise AssertionError("each rate must get a model of its own")
    for rate, curve in result.items():
        if curve != [rate, 1.0]:
            raise AssertionError(f"result[{rate}] must be what train returned for that rate, got {curve!r}")
    print(f"learning-rate study: {len(rates)} rates, one fresh model each, results keyed by rate.")
