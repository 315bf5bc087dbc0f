"""flowedu.hmc.vi: the reparameterized ELBO of a flow, and its training loop."""

import math

import pytest
import torch

from flowedu import flows
from flowedu.hmc import vi

MEAN = torch.tensor([1.0, -2.0])
STD = torch.tensor([0.5, 2.0])


def target_log_prob(theta):
    """An unnormalised Gaussian: log Z = sum log(sqrt(2 pi) std) + 3."""
    return torch.distributions.Normal(MEAN, STD).log_prob(theta).sum(-1) + 3.0


def affine_flow():
    return flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2), flows.Translate(2))


def test_elbo_is_below_log_z_and_the_gap_is_the_kl():
    torch.manual_seed(0)
    flow = affine_flow()
    with torch.no_grad():
        _, terms = vi.elbo_terms(flow, target_log_prob, 200_000)
    # q = N(0, I), p = N(MEAN, diag STD^2): closed-form KL(q || p)
    kl = (torch.log(STD) + (1 + MEAN**2) / (2 * STD**2) - 0.5).sum().item()
    log_z = 3.0
    assert abs((log_z - terms.mean().item()) - kl) < 4 * terms.std().item() / math.sqrt(len(terms))


def test_fit_elbo_recovers_a_gaussian_target():
    torch.manual_seed(0)
    flow = affine_flow()
    run = vi.fit_elbo(flow, target_log_prob, steps=400, n_samples=64, lr=5e-2, progress=False)
    assert len(run["elbo"]) == run["steps"] == 400 and run["seconds"] > 0
    with torch.no_grad():
        _, terms = vi.elbo_terms(flow, target_log_prob, 20_000)
    assert 3.0 - terms.mean().item() < 0.01  # KL(q || p) after training
    assert run["elbo"][-1] > run["elbo"][0] + 1


def test_fit_elbo_stops_early_and_validates():
    flow = affine_flow()
    run = vi.fit_elbo(flow, target_log_prob, steps=100, progress=False, stop=lambda step: step == 7)
    assert run["steps"] == 7 and len(run["elbo"]) == 7
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        vi.fit_elbo(flow, target_log_prob, steps=0)
    with pytest.raises(ValueError, match="lr must be finite and > 0"):
        vi.fit_elbo(flow, target_log_prob, steps=1, lr=-1.0)
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1"):
        vi.elbo_terms(flow, target_log_prob, 0)
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0"):
        vi.fit_elbo(flow, target_log_prob, steps=1, weight_decay=-1e-5)
    with pytest.raises(FloatingPointError, match="non-finite at step"):
        vi.fit_elbo(flow, lambda t: t.sum(-1) * float("nan"), steps=3, progress=False)


def test_fit_elbo_with_annealing_still_reaches_the_target_and_validates():
    torch.manual_seed(0)
    flow = flows.NormalizingFlow(flows.StandardNormal(2), flows.Translate(2), flows.Scale(2))
    run = vi.fit_elbo(flow, target_log_prob, steps=400, n_samples=64, lr=5e-2, progress=False, anneal=100)
    assert len(run["elbo"]) == 400
    with torch.no_grad():
        _, terms = vi.elbo_terms(flow, target_log_prob, 20_000)
    assert 3.0 - terms.mean().item() < 0.02  # beta reached 1 at step 100: the fit is of p itself
    with pytest.raises(ValueError, match="anneal"):
        vi.fit_elbo(flow, target_log_prob, steps=1, anneal=0)


def test_weight_decay_pulls_the_parameters_towards_zero():
    # Same seed, same draws: with a large L2 penalty the fitted scale and shift are smaller.
    fitted = []
    for weight_decay in (0.0, 1.0):
        torch.manual_seed(0)
        flow = affine_flow()
        vi.fit_elbo(flow, target_log_prob, steps=300, n_samples=64, lr=5e-2, progress=False,
                    weight_decay=weight_decay)
        fitted.append(torch.cat([p.detach().flatten() for p in flow.parameters()]).norm().item())
    assert fitted[1] < 0.8 * fitted[0], fitted
