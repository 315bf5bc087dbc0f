"""The checks that end the flow exercises accept the reference answers, catch the usual wrong ones with a
message that names the problem, and leave the caller's random numbers alone."""

import pytest
import torch
from torch import nn

from flowedu import checks, data, flows

LOC, SCALE = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 3.0])


def reference_base():
    return torch.distributions.Independent(torch.distributions.Normal(LOC, SCALE), 1)


class DiagonalNormal:
    """The exercise's answer: a torch Normal with per-coordinate log_prob, summed over the last axis."""

    def __init__(self, loc, scale, sum_log_prob=True, sample_shape_bug=False):
        self.normal = torch.distributions.Normal(loc, scale)
        self.sum_log_prob, self.sample_shape_bug = sum_log_prob, sample_shape_bug

    def sample(self, sample_shape=()):
        shape = (sample_shape,) if isinstance(sample_shape, int) else tuple(sample_shape)
        if self.sample_shape_bug:  # draws one number per sample and repeats it in every coordinate
            return self.normal.sample(shape)[..., :1].expand(*shape, len(LOC)).contiguous()
        return self.normal.sample(shape)

    def log_prob(self, z):
        log_p = self.normal.log_prob(z)
        return log_p.sum(-1) if self.sum_log_prob else log_p


class Flow(nn.Module):
    """The exercise's answer, with switches for the usual mistakes."""

    def __init__(self, base, *layers, bug=None):
        super().__init__()
        self.base, self.flow, self.bug = base, flows.SequentialFlow(*layers), bug

    def log_prob(self, x):
        if self.bug == "forward":  # pushes data the generative way
            z, log_det = self.flow.forward(x)
        else:
            z, log_det = self.flow.inverse(x)
        if self.bug == "sign":
            return self.base.log_prob(z) - log_det
        if self.bug == "detach":
            return (self.base.log_prob(z) + log_det).detach()
        return self.base.log_prob(z) + log_det

    def sample(self, n):
        with torch.no_grad():
            z = self.base.sample((n,))
            return self.flow.inverse(z)[0] if self.bug == "sample_inverse" else self.flow.forward(z)[0]


def fit(model, x, steps, lr=1e-2, batch_size=256, generator=None, bug=None):
    """The exercise's answer (a plain Adam loop on the mean NLL), with switches for the usual mistakes."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    while len(history) < steps:
        for xb in data.batches(x, batch_size, generator=generator, drop_last=True):
            log_p = model.log_prob(xb)
            loss = -log_p.sum() if bug == "sum" else (log_p.mean() if bug == "sign" else -log_p.mean())
            if bug != "no_zero_grad":
                optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history.append(loss.item())
            if len(history) == steps or (bug == "epochs" and len(history) == steps // 2):
                return history
    return history


def test_reference_answers_pass_and_leave_the_rng_alone():
    layer, z = flows.AffineCoupling(2, 4, zero_init=False), torch.randn(4, 2)
    state = torch.get_rng_state()
    checks.check_base_distribution(DiagonalNormal(LOC, SCALE), reference_base(), verbose=False)
    checks.check_normalizing_flow(Flow, verbose=False)
    checks.check_normalizing_flow(flows.NormalizingFlow, verbose=False)
    checks.check_fit_density(fit, verbose=False)
    checks.check_fit_density(lambda m, x, s, lr, b, g: flows.fit_density(m, x, s, lr, b, generator=g,
                                                                         progress=False)["nll"], verbose=False)
    checks.check_flow_layer(layer, z, verbose=False)
    assert torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize(("base", "match"), [
    (DiagonalNormal(LOC, SCALE, sum_log_prob=False), "one value per sample"),
    (DiagonalNormal(LOC, SCALE * 2), "log_prob vs the reference"),
    (DiagonalNormal(LOC, SCALE, sample_shape_bug=True), "standard deviation|mean"),
])
def test_check_base_distribution_catches(base, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_base_distribution(base, reference_base(), verbose=False)


@pytest.mark.parametrize(("bug", "match"), [
    ("forward", "log_prob vs"), ("sign", "log_prob vs"), ("detach", "no gradient"),
    ("sample_inverse", "sample\\(10\\) vs"),
])
def test_check_normalizing_flow_catches(bug, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_normalizing_flow(lambda base, *layers: Flow(base, *layers, bug=bug), verbose=False)


@pytest.mark.parametrize(("bug", "match"), [
    ("sum", "first recorded loss"), ("sign", "first recorded loss|does not minimise"),
    ("no_zero_grad", "does not minimise"), ("epochs", "one NLL per step"),
])
def test_check_fit_density_catches(bug, match):
    with pytest.raises(AssertionError, match=match):
        checks.check_fit_density(lambda m, x, s, lr, b, g: fit(m, x, s, lr, b, g, bug=bug), verbose=False)


def test_check_arguments_are_validated():
    with pytest.raises(ValueError, match="reference must be a torch distribution"):
        checks.check_base_distribution(DiagonalNormal(LOC, SCALE), torch.distributions.Normal(LOC, SCALE))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 100"):
        checks.check_base_distribution(DiagonalNormal(LOC, SCALE), reference_base(), n_samples=10)
