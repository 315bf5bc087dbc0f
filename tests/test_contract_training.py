"""One training-loop convention (``flowedu.loops``), tested once for every loop of the package.

Every loop is run through the same checks: the names (``steps`` or ``epochs`` for the count, ``generator=``
for the randomness, ``progress=``), the :class:`~flowedu.loops.History` it returns (with ``steps`` and
``seconds``), a stop at the first non-finite loss with a message naming that step (a NaN is injected at a
known step), the ``ValueError`` for a data set smaller than a batch (step-based loops, which cycle through
the data; the epoch-based loops then run one batch per epoch), and the same history for the same generator
seed (a different one for another seed).
"""

import copy
import inspect

import pytest
import torch
from torch import nn

from flowedu import flows, gan, hmc, loops, metrics, vae


class NaNFrom(nn.Module):
    """``module`` whose outputs become NaN from its ``n``-th call on."""

    def __init__(self, module, n):
        super().__init__()
        self.module, self.n, self.calls = module, n, 0

    def forward(self, *args):
        self.calls += 1
        out = self.module(*args)
        return out * float("nan") if self.calls >= self.n else out


class NaNFlow(nn.Module):
    """A flow whose ``log_prob`` is NaN from its ``n``-th call on (one call per ``fit_density`` step)."""

    def __init__(self, n):
        super().__init__()
        self.flow, self.n, self.calls = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2)), n, 0

    def log_prob(self, x):
        self.calls += 1
        out = self.flow.log_prob(x)
        return out * float("nan") if self.calls >= self.n else out


class NaNVAE(nn.Module):
    """A VAE whose ELBO is NaN from its ``n``-th call on (one call per ``train_vae`` step)."""

    def __init__(self, model, n):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def elbo(self, x):
        self.calls += 1
        out = self.model.elbo(x)
        return out * float("nan") if self.calls >= self.n else out


COUNTERS = []  # the NaN-injecting object of the last run, to count how far the loop went


def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _moons(n=64):
    return torch.randn(n, 2, generator=_gen(11)) * torch.tensor([1.0, 0.3]) + 1.0


def _vae():
    torch.manual_seed(0)
    return vae.VAE(vae.GaussianEncoder(6, 2, (8,)), vae.BernoulliDecoder(2, 6, (8,)), vae.StandardNormalPrior(2))


def _binary(n=40):
    return (torch.rand(n, 6, generator=_gen(12)) < 0.3).float()


def _gan_pair():
    torch.manual_seed(0)
    return gan.MLPGenerator(2, 2, hidden=8, n_hidden=1), gan.MLPCritic(2, hidden=8, n_hidden=1)


def _vae_gan_pair():
    return _vae(), gan.MLPCritic(6, hidden=8, n_hidden=1)


def _classifier():
    torch.manual_seed(0)
    return metrics.ClassifierFeatures((1, 8, 8), 3, feature_dim=4, width=2)


def _images(n=24):
    g = _gen(13)
    return torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def _target(theta):
    return -0.5 * ((theta - 1.0) ** 2).sum(-1)


# Each loop: how to call it (count, generator, nan_at, batch_size) -> History, the name of its count, the
# count used, the steps that count makes, the curve to compare, whether a batch can exceed the data.
def run_fit_density(count, generator, nan_at=None, batch_size=16):
    model = NaNFlow(nan_at or 10**9)
    COUNTERS.append(model)
    return flows.fit_density(model, _moons(), count, lr=1e-2, batch_size=batch_size, generator=generator,
                             progress=False)


def run_fit_elbo(count, generator, nan_at=None, batch_size=None):
    torch.manual_seed(0)
    flow = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2), flows.Translate(2))
    calls = []
    counter = type("Counter", (), {})()
    counter.__class__.calls = property(lambda self: len(calls))
    COUNTERS.append(counter)

    def target(theta):
        calls.append(1)
        out = _target(theta)
        return out * float("nan") if nan_at is not None and len(calls) >= nan_at else out

    return hmc.fit_elbo(flow, target, count, n_samples=8, lr=1e-2, progress=False, generator=generator)


def run_train_vae(count, generator, nan_at=None, batch_size=16):
    model = NaNVAE(_vae(), nan_at or 10**9)
    COUNTERS.append(model)
    torch.manual_seed(1)  # the ELBO's ε comes from the model, i.e. torch's global generator (see the report)
    return vae.train_vae(model, _binary(), epochs=count, batch_size=batch_size, generator=generator, progress=False)


def run_train_gan(count, generator, nan_at=None, batch_size=16):
    g, d = _gan_pair()
    if nan_at is not None:  # 3 critic calls per alternating step: the first call of step k is 3 (k - 1) + 1
        d = NaNFrom(d, 3 * (nan_at - 1) + 1)
        COUNTERS.append(d)
    return gan.train_gan(g, d, _moons(), count, batch_size=batch_size, lr=1e-3, generator=generator, progress=False)


def run_train_vae_gan(count, generator, nan_at=None, batch_size=16):
    model, d = _vae_gan_pair()
    if nan_at is not None:  # 3 critic calls per step
        d = NaNFrom(d, 3 * (nan_at - 1) + 1)
        COUNTERS.append(d)
    return gan.train_vae_gan(model, d, _binary(), count, batch_size=batch_size, generator=generator, progress=False)


def run_classifier(count, generator, nan_at=None, batch_size=8):
    clf = _classifier()
    if nan_at is not None:
        clf.net.head = NaNFrom(clf.net.head, nan_at)  # one head call per step
        COUNTERS.append(clf.net.head)
    x, y = _images()
    return clf.fit(x, y, epochs=count, batch_size=batch_size, generator=generator, progress=False)


LOOPS = {
    # name: (runner, function, count name, count, steps it makes, curve, cycles through the data)
    "fit_density": (run_fit_density, flows.fit_density, "steps", 5, 5, "nll", True),
    "fit_elbo": (run_fit_elbo, hmc.fit_elbo, "steps", 5, 5, "elbo", None),  # no data set: draws its own
    "train_vae": (run_train_vae, vae.train_vae, "epochs", 2, 2 * 3, "train", False),
    "train_gan": (run_train_gan, gan.train_gan, "steps", 5, 5, "d_loss", True),
    "train_vae_gan": (run_train_vae_gan, gan.train_vae_gan, "steps", 5, 5, "neg_elbo", True),
    "ClassifierFeatures.fit": (run_classifier, metrics.ClassifierFeatures.fit, "epochs", 2, 2 * 3, "loss", False),
}


@pytest.mark.parametrize("name", LOOPS)
def test_names(name):
    function, count_name = LOOPS[name][1], LOOPS[name][2]
    parameters = inspect.signature(function).parameters
    assert count_name in parameters and "generator" in parameters and "progress" in parameters
    other = {"steps": "epochs", "epochs": "steps"}[count_name]
    assert other not in parameters, f"{name} has both steps and epochs"
    for old in ("n_steps", "n_epochs", "seed"):  # older spellings may stay, keyword-only or last, never first
        if old in parameters:
            assert list(parameters).index(old) > list(parameters).index("generator"), (name, old)
    annotation = inspect.signature(function).return_annotation
    assert annotation in (loops.History, "History"), (name, annotation)


@pytest.mark.parametrize("name", LOOPS)
def test_returns_a_history_with_steps_and_seconds(name):
    runner, _, _, count, steps, curve, _ = LOOPS[name]
    history = runner(count, _gen(0))
    assert isinstance(history, loops.History) and isinstance(history, dict)
    assert history["steps"] == history.steps == steps, (name, history["steps"])
    assert isinstance(history["seconds"], float) and history["seconds"] >= 0
    per_step = {"nll", "elbo", "d_loss", "neg_elbo"}
    assert len(history[curve]) == (steps if curve in per_step else count)
    assert all(isinstance(v, float) for v in history[curve])


@pytest.mark.parametrize("name", LOOPS)
def test_stops_at_the_first_non_finite_loss_naming_the_step(name):
    runner, _, _, count, steps, _, _ = LOOPS[name]
    nan_at = 3
    with pytest.raises(loops.NonFiniteLossError, match=f"step {nan_at}\\b") as info:
        runner(count if name not in ("train_vae", "ClassifierFeatures.fit") else 2, _gen(0), nan_at=nan_at)
    assert isinstance(info.value, FloatingPointError) and isinstance(info.value, RuntimeError)
    # on the CPU the loop stops at that step: the loss is checked before the update (after the whole step,
    # three critic calls, for the GAN loops, which record their losses after the updates)
    expected_calls = 3 * nan_at if name in ("train_gan", "train_vae_gan") else nan_at
    assert COUNTERS[-1].calls == expected_calls, (name, COUNTERS[-1].calls)


@pytest.mark.parametrize("name", [n for n in LOOPS if LOOPS[n][6] is True])
def test_a_data_set_smaller_than_a_batch_is_an_error(name):
    runner, _, _, count, _, _, _ = LOOPS[name]
    with pytest.raises(ValueError, match="batch_size"):
        runner(count, _gen(0), batch_size=10_000)


@pytest.mark.parametrize("name", [n for n in LOOPS if LOOPS[n][6] is False])
def test_epoch_loops_run_one_batch_per_epoch_when_the_batch_exceeds_the_data(name):
    runner, _, _, count, _, _, _ = LOOPS[name]
    assert runner(count, _gen(0), batch_size=10_000)["steps"] == count


@pytest.mark.parametrize("name", LOOPS)
def test_the_same_generator_seed_gives_the_same_history(name):
    runner, _, _, count, _, curve, _ = LOOPS[name]
    a, b, c = (runner(count, _gen(seed))[curve] for seed in (4, 4, 5))
    assert a == b
    assert a != c, f"{name}: the generator does not drive the loop's randomness"


def test_the_older_spellings_still_work():
    """``seed=`` (GAN loops, classifier) and ``n_epochs=`` (classifier) keep old calls working."""
    g, d = _gan_pair()
    h1 = gan.train_gan(g, d, _moons(), 3, batch_size=16, seed=4, progress=False)
    g, d = _gan_pair()
    h2 = gan.train_gan(g, d, _moons(), 3, batch_size=16, generator=_gen(4), progress=False)
    assert h1["d_loss"] == h2["d_loss"]
    x, y = _images()
    assert _classifier().fit(x, y, n_epochs=2, seed=1, progress=False)["loss"] == \
        _classifier().fit(x, y, epochs=2, generator=_gen(1), progress=False)["loss"]
    with pytest.raises(ValueError, match="not both"):
        gan.train_gan(*_gan_pair(), _moons(), 1, seed=1, generator=_gen(1), progress=False)


def test_loss_log_checks_in_bulk_off_the_cpu():
    log = loops.LossLog(("a",), 10, every=4)
    for step in range(10):
        log.record(step, a=torch.tensor(float("nan") if step == 5 else 1.0))
        if step + 1 < 8:
            log.maybe_check(step + 1, "test")  # checks after steps 4 (fine); the NaN at step 6 waits for 8
    with pytest.raises(loops.NonFiniteLossError, match="step 6 "):
        log.maybe_check(8, "test")
    assert copy.copy(log.checked) == 4
