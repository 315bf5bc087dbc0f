"""Every ``flowedu.checks.check_*`` leaves the caller's global random state alone.

Each check is called with a correct answer that, on top of computing the right result, draws from the
global torch, NumPy and Python generators (as a student's function may). The test asserts that the three
global states (and CUDA's, where there is one) are the same before and after the check, so a notebook
draws the same random numbers whether or not a check ran. A new check without an entry in ``ANSWERS``
fails ``test_every_check_has_a_correct_answer_here``.
"""

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flowedu import checks, flows, gan, gk, hmc, proofs, vae
from flowedu.distributions import log_normal_diag


def _draw():
    """Move every global generator a student's code could touch."""
    torch.randn(3)
    np.random.standard_normal(3)  # noqa: NPY002 (the global state a student may draw from)
    random.random()


def noisy(function):
    """``function`` that also draws from the global generators (after computing its result)."""

    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        _draw()
        return result

    wrapped.__name__ = getattr(function, "__name__", "answer")
    return wrapped


class NoisyLayer(flows.FlowLayer):
    """A correct flow layer (an affine coupling) whose passes also draw from the global generators."""

    def __init__(self):
        super().__init__()
        self.layer = flows.AffineCoupling(2, 4, zero_init=False).double()

    def forward(self, z):
        return noisy(self.layer.forward)(z)

    def inverse(self, z):
        return noisy(self.layer.inverse)(z)


def _elbo(model, x, eps):
    mean, log_var = model.encoder(x)
    z = vae.reparameterize(mean, log_var, eps)
    _draw()
    return model.decoder.log_prob(x, z) + model.prior.log_prob(z) - log_normal_diag(z, mean, log_var)


def _fit(model, x, steps, lr, batch_size, generator):
    _draw()
    return flows.fit_density(model, x, steps, lr, batch_size, generator=generator, progress=False)["nll"]


def _study(make_model, rates, train):
    _draw()
    return {rate: train(make_model(), rate) for rate in rates}


def _reference_base():
    return torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2), torch.ones(2)), 1)


class NoisyNormal:
    """A correct N(0, I) base whose methods also draw from the global generators."""

    def __init__(self):
        self.base = flows.StandardNormal(2)

    def sample(self, sample_shape=()):
        return noisy(self.base.sample)(sample_shape)

    def log_prob(self, z):
        return noisy(self.base.log_prob)(z)


ANSWERS = {
    "check_close": lambda: checks.check_close(torch.ones(2), torch.ones(2)),
    "check_function": lambda: checks.check_function(noisy(torch.sin), torch.sin, [(torch.zeros(3),)]),
    "check_flow_layer": lambda layer: checks.check_flow_layer(
        layer, torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)), verbose=False),
    "check_base_distribution": lambda: checks.check_base_distribution(NoisyNormal(), _reference_base(),
                                                                      verbose=False),
    "check_normalizing_flow": lambda: checks.check_normalizing_flow(noisy(flows.NormalizingFlow), verbose=False),
    "check_fit_density": lambda: checks.check_fit_density(_fit, verbose=False),
    "check_r1_penalty": lambda: checks.check_r1_penalty(noisy(gan.r1_penalty)),
    "check_ema_update": lambda: checks.check_ema_update(noisy(gan.ema_update)),
    "check_fraction_far": lambda: checks.check_fraction_far(noisy(gan.fraction_far)),
    "check_vae_gan_objective": lambda: checks.check_vae_gan_objective(noisy(gan.vae_gan_objective)),
    "check_nll_from_logits": lambda: checks.check_nll_from_logits(
        noisy(lambda logits, labels: F.cross_entropy(logits, labels, reduction="none"))),
    "check_gk_quantile": lambda: checks.check_gk_quantile(noisy(gk.gk_quantile)),
    "check_gk_residuals": lambda: checks.check_gk_residuals(noisy(gk.gk_quantile_residuals)),
    "check_leapfrog": lambda: checks.check_leapfrog(noisy(hmc.leapfrog)),
    "check_hmc_accept": lambda: checks.check_hmc_accept(noisy(hmc.hmc_accept)),
    "check_elbo_terms": lambda: checks.check_elbo_terms(noisy(hmc.elbo_terms)),
    "check_kl_finite": lambda: checks.check_kl_finite(noisy(proofs.kl)),
    "check_metropolis_kernel": lambda: checks.check_metropolis_kernel(noisy(proofs.metropolis_kernel)),
    "check_reparameterize": lambda: checks.check_reparameterize(noisy(vae.reparameterize)),
    "check_elbo": lambda: checks.check_elbo(_elbo),
    "check_learning_rate_study": lambda: checks.check_learning_rate_study(_study),
    "check_flow_elbo": lambda: checks.check_flow_elbo(
        lambda model, x, k, generator: noisy(model.elbo)(x, k, generator)),
}

CHECKS = sorted(name for name in checks.__all__ if name.startswith("check_"))


def _states():
    cuda = [torch.cuda.get_rng_state(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return torch.get_rng_state(), cuda, np.random.get_state(), random.getstate()  # noqa: NPY002


def _assert_same(before, after):
    torch_before, cuda_before, numpy_before, python_before = before
    torch_after, cuda_after, numpy_after, python_after = after
    assert torch.equal(torch_before, torch_after), "the global torch generator moved"
    assert all(torch.equal(a, b) for a, b in zip(cuda_before, cuda_after, strict=True)), "a CUDA generator moved"
    assert numpy_before[0] == numpy_after[0] and np.array_equal(numpy_before[1], numpy_after[1]) and \
        numpy_before[2:] == numpy_after[2:], "NumPy's global generator moved"
    assert python_before == python_after, "Python's random module moved"


def test_every_check_has_a_correct_answer_here():
    assert set(CHECKS) == set(ANSWERS), (set(CHECKS) ^ set(ANSWERS))


def test_the_answers_do_move_the_global_generators():
    """Without the decorator the test below could not fail: the answers draw from all three generators."""
    torch.manual_seed(5)
    np.random.seed(5)  # noqa: NPY002
    random.seed(5)
    before = _states()
    noisy(lambda: None)()
    after = _states()
    assert not torch.equal(before[0], after[0])
    assert not np.array_equal(before[2][1], after[2][1]) or before[2][2] != after[2][2]
    assert before[3] != after[3]


@pytest.mark.parametrize("name", CHECKS)
def test_check_passes_a_correct_answer_and_leaves_the_rng_alone(name, capsys):
    check = getattr(checks, name)
    assert getattr(check, "leaves_rng_alone", False), f"{name} is not decorated with leaves_rng_alone"
    torch.manual_seed(1234)
    np.random.seed(1234)  # noqa: NPY002
    random.seed(1234)
    answer = ANSWERS[name]
    layer = NoisyLayer() if name == "check_flow_layer" else None  # built (global draws) before the snapshot
    before = _states()
    answer(layer) if layer is not None else answer()
    _assert_same(before, _states())
    # the state is also left alone when the check fails (it raises from inside the fork)
    if name not in ("check_close", "check_learning_rate_study"):
        torch.manual_seed(99)
        before = _states()
        with pytest.raises((AssertionError, ValueError, TypeError, RuntimeError, AttributeError, IndexError)):
            check(noisy(lambda *args, **kwargs: None))
        _assert_same(before, _states())
