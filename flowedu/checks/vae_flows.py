"""Chapter: book/gk.md — checks for the flow-VAE exercise (``notebooks/vae_flows.ipynb``)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowedu.checks.core import check_close, leaves_rng_alone

__all__ = ["check_flow_elbo"]


@leaves_rng_alone
def check_flow_elbo(flow_elbo: Callable) -> None:
    """Check ``flow_elbo(model, x, k, generator) -> [batch]``, the k-sample flow-posterior ELBO in nats,

        mean over k of  log p(x | z_M) + log p(z_M) − log q_0(z_0 | x) + Σ_j log |det J_{f_j}|,

    against :meth:`flowedu.gk.FlowVAE.elbo` with the same random numbers (the student's function
    must draw through ``model.posterior_sample(x, k, generator)``), for a global planar flow with a
    standard normal prior, an amortised planar flow with a mixture prior, and RealNVP on a g-and-k
    posterior base with a g-and-k prior; also its gradient. The student's global random state is left
    as it was (the models are built inside ``torch.random.fork_rng``).
    """
    from flowedu.flows import PlanarFlow, SequentialFlow
    from flowedu.gk import AmortisedPlanar, FlowVAE, GandKPosteriorBase, GandKPrior, posterior_flow
    from flowedu.vae import BernoulliDecoder, GaussianEncoder, MixturePrior, StandardNormalPrior

    if not callable(flow_elbo):
        raise ValueError(f"flow_elbo must be callable, got {type(flow_elbo).__name__}")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 10, generator=g) < 0.5).double()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        cases = [
            FlowVAE(GaussianEncoder(10, 2, (8,)), BernoulliDecoder(2, 10, (8,)), StandardNormalPrior(2),
                    SequentialFlow(*[PlanarFlow(2, generator=g) for _ in range(3)])).double(),
            FlowVAE(GaussianEncoder(10, 3, (8,)), BernoulliDecoder(3, 10, (8,)), MixturePrior(4, 3, 1.0),
                    SequentialFlow(*[AmortisedPlanar(3, 6) for _ in range(2)])).double(),
            FlowVAE(GaussianEncoder(10, 2, (8,)), BernoulliDecoder(2, 10, (8,)), GandKPrior(2),
                    posterior_flow("realnvp", 2, n_couplings=2, coupling_hidden=4),
                    GandKPosteriorBase(2, 0.3)).double(),
        ]
        with torch.no_grad():  # move the g-and-k parts away from their Gaussian start
            cases[2].base.g.copy_(torch.tensor([1.0, -0.5]))
            cases[2].prior.transform.set_params([0.2, -0.1], [0.8, 1.3], [0.5, -1.0], [0.2, 0.1])
    for number, model in enumerate(cases):
        for k in (1, 5):
            actual = flow_elbo(model, x, k, torch.Generator().manual_seed(10 + k))
            expected = model.elbo(x, k, torch.Generator().manual_seed(10 + k))
            if isinstance(actual, torch.Tensor) and actual.shape == expected.shape:
                wrong = model.wrong_objective_prior_at_z0(x, k, torch.Generator().manual_seed(10 + k))
                if torch.allclose(actual, wrong) and not torch.allclose(expected, wrong):
                    raise AssertionError(f"case {number}, k={k}: you evaluated the prior at z_0; "
                                         "the ELBO of q_M needs log p(z_M)")
            check_close(actual, expected, f"flow ELBO (case {number}, k={k})", rtol=1e-6, atol=1e-8)
            if not actual.requires_grad:
                raise AssertionError(f"case {number}: the ELBO is detached from the model's parameters")
            grads = torch.autograd.grad(actual.sum(), list(model.parameters()), allow_unused=True)
            ref = torch.autograd.grad(expected.sum(), list(model.parameters()), allow_unused=True)
            for i, (a, b) in enumerate(zip(grads, ref, strict=True)):
                if (a is None) != (b is None):
                    raise AssertionError(f"case {number}: parameter {i} gets a gradient in one ELBO but not the other")
                if a is not None:
                    check_close(a, b, f"gradient of parameter {i} (case {number}, k={k})", rtol=1e-5, atol=1e-8)
    print(f"flow ELBO: all {2 * len(cases)} cases agree with FlowVAE.elbo, values and gradients.")
