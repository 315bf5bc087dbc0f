"""The flow-VAE exercise check accepts the reference and rejects the prior-at-z_0 objective of the flow-VAE project."""

import pytest
import torch

from flowedu.checks import check_flow_elbo


def test_check_flow_elbo_accepts_the_reference():
    check_flow_elbo(lambda model, x, k, generator: model.elbo(x, k, generator))


def test_check_flow_elbo_rejects_the_prior_at_z0():
    with pytest.raises(AssertionError, match="z_0"):
        check_flow_elbo(lambda model, x, k, generator: model.wrong_objective_prior_at_z0(x, k, generator))


def test_check_flow_elbo_rejects_a_missing_log_det():
    def no_log_det(model, x, k, generator):
        _, zk, log_q0, _ = model.posterior_sample(x, k, generator)
        return (model.decoder.log_prob(x, zk) + model.prior.log_prob(zk) - log_q0).mean(0)

    with pytest.raises(AssertionError):
        check_flow_elbo(no_log_det)
    with pytest.raises(ValueError, match="flow_elbo"):
        check_flow_elbo(3)


def test_check_flow_elbo_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_flow_elbo(lambda model, x, k, generator: model.elbo(x, k, generator))
    assert torch.equal(torch.rand(3), expected)
