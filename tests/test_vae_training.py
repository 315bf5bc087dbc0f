"""train_vae: the same random stream as data.batches, early stopping with the best state restored,
optimisers, metrics during training, value checks done once per data set."""

import copy

import pytest
import torch

from flowedu import data
from flowedu.distributions import checking_values, log_bernoulli, skip_value_checks
from flowedu.vae import VAE, BernoulliDecoder, CategoricalDecoder, GaussianEncoder, StandardNormalPrior, train_vae
from flowedu.vae.training import OPTIMIZERS


def _vae(decoder="bernoulli", seed=0, d=2, hidden=(16,)):
    torch.manual_seed(seed)
    shape = (1, 4, 4)
    dec = BernoulliDecoder(d, shape, hidden) if decoder == "bernoulli" else CategoricalDecoder(d, shape, 17, hidden)
    return VAE(GaussianEncoder(shape, d, hidden), dec, StandardNormalPrior(d))


def _intensities(n, seed=0):
    return torch.rand(n, 1, 4, 4, generator=torch.Generator().manual_seed(seed))


def _binary(n, seed=0, p=0.3):
    return (_intensities(n, seed) < p).float()


def test_dynamic_binarization_draws_what_data_batches_draws():
    """On the CPU, train_vae's batches are exactly those of data.batches(..., binarize=True) (same generator)."""
    x = _intensities(96)
    model = _vae()
    reference = copy.deepcopy(model)
    torch.manual_seed(5)
    train_vae(model, x, epochs=2, lr=1e-2, batch_size=32, binarize=True, generator=torch.Generator().manual_seed(3),
              progress=False)
    torch.manual_seed(5)
    opt = torch.optim.Adam(reference.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(3)
    for _ in range(2):
        for xb in data.batches(x, 32, generator=g, binarize=True):
            loss = -reference.elbo(xb).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_dynamic_binarization_checks_the_intensities_once():
    with pytest.raises(ValueError, match=r"intensities in \[0, 1\]"):
        train_vae(_vae(), _intensities(8) * 2, epochs=1, binarize=True, progress=False)
    with pytest.raises(ValueError, match="floating-point"):
        train_vae(_vae(), torch.ones(8, 1, 4, 4, dtype=torch.long), epochs=1, binarize=True, progress=False)


def test_the_data_are_checked_once_and_the_batches_are_not():
    with pytest.raises(ValueError, match="only 0 and 1"):
        train_vae(_vae(), _intensities(8), epochs=1, progress=False)
    with pytest.raises(ValueError, match="on the grid"):
        train_vae(_vae("categorical"), _intensities(8), epochs=1, progress=False)
    grid = torch.randint(0, 17, (32, 1, 4, 4), generator=torch.Generator().manual_seed(0)).float() / 16
    history = train_vae(_vae("categorical"), grid, epochs=2, batch_size=8, progress=False)
    assert len(history["train"]) == 2
    # The per-batch checks are off only inside the training loop.
    assert checking_values()
    with skip_value_checks():
        assert not checking_values()
        log_bernoulli(torch.full((1, 3), 0.5), torch.zeros(1, 3))  # no check, no error
        with skip_value_checks():
            assert not checking_values()
        assert not checking_values()
    assert checking_values()
    with pytest.raises(ValueError, match="only 0 and 1"):
        log_bernoulli(torch.full((1, 3), 0.5), torch.zeros(1, 3))


def _overfitting_run(**kwargs):
    """A tiny training set, validation images the model never sees and a large learning rate: it overfits."""
    torch.manual_seed(11)
    model = _vae(d=4, hidden=(64,))
    x_train, x_val = _binary(24, seed=1, p=0.5), _binary(200, seed=2, p=0.5)
    history = train_vae(model, x_train, x_val, lr=2e-2, batch_size=8, generator=torch.Generator().manual_seed(0),
                        progress=False, **kwargs)
    return model, history


def test_early_stopping_stops_after_patience_and_restores_the_best_state():
    model, history = _overfitting_run(epochs=200, patience=5)
    best = history["best_epoch"]
    val = history["val"]
    assert best == 1 + min(range(len(val)), key=val.__getitem__)
    assert len(val) == best + 5 < 200, (best, len(val))  # stopped patience epochs after the best one
    assert all(v >= val[best - 1] for v in val[best:])
    # The restored parameters are those after epoch `best`: the same run stopped there by hand.
    reference, ref_history = _overfitting_run(epochs=best, restore_best=False)
    assert ref_history["val"] == val[:best]
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_without_restore_the_last_state_is_kept():
    model, history = _overfitting_run(epochs=200, patience=5, restore_best=False)
    reference, _ = _overfitting_run(epochs=len(history["val"]))
    for a, b in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_restore_best_without_patience_runs_every_epoch():
    _, history = _overfitting_run(epochs=30, restore_best=True)
    assert len(history["val"]) == 30 and history["best_epoch"] < 30


def test_early_stopping_needs_validation_data_and_a_positive_patience():
    with pytest.raises(ValueError, match="need validation data"):
        train_vae(_vae(), _binary(8), epochs=3, patience=2, progress=False)
    with pytest.raises(ValueError, match="need validation data"):
        train_vae(_vae(), _binary(8), epochs=3, restore_best=True, progress=False)
    with pytest.raises(ValueError, match="patience must be"):
        train_vae(_vae(), _binary(8), _binary(8), epochs=3, patience=0, progress=False)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_trains(name):
    model = _vae()
    x = _binary(128)
    history = train_vae(model, x, epochs=8, lr=1e-2 if name != "sgd" else 1e-3, batch_size=32, optimizer=name,
                        generator=torch.Generator().manual_seed(0), progress=False)
    assert history["train"][-1] < history["train"][0], history["train"]


def test_bad_settings_are_rejected():
    x = _binary(8)
    for kwargs, match in [({"optimizer": "adagrad"}, "optimizer must be"), ({"lr": float("nan")}, "lr must be"),
                          ({"lr": True}, "lr must be"), ({"batch_size": 0}, "batch_size must be"),
                          ({"metrics": {"val": len}}, "metrics must map"),
                          ({"metrics": {"m": 3}}, "metrics must map"),
                          ({"metrics": {"m": len}, "metric_epochs": [0]}, "metric_epochs")]:
        with pytest.raises(ValueError, match=match):
            train_vae(_vae(), x, epochs=1, progress=False, **kwargs)


def test_metrics_are_evaluated_at_the_chosen_epochs_in_eval_mode():
    seen = []

    def metric(model):
        seen.append(model.training)
        return float(len(seen))

    history = train_vae(_vae(), _binary(16), epochs=7, batch_size=8, metrics={"count": metric},
                        metric_epochs=[1, 3, 20], progress=False)
    assert history["metric_epochs"] == [1, 3, 7]  # the last epoch is always added
    assert history["count"] == [1.0, 2.0, 3.0] and seen == [False] * 3
    every = train_vae(_vae(), _binary(16), epochs=3, batch_size=8, metrics={"one": lambda m: 1.0}, progress=False)
    assert every["metric_epochs"] == [1, 2, 3] and every["one"] == [1.0] * 3


def test_a_diverging_loss_stops_training():
    model = _vae()
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(float("nan"))
    with pytest.raises(RuntimeError, match="lower lr"):
        train_vae(model, _binary(16), epochs=2, progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_dynamic_binarization_on_cuda_is_seeded_by_the_cpu_generator():
    x = _intensities(64).cuda()
    runs = []
    for _ in range(2):
        model = _vae().cuda()
        torch.manual_seed(0)
        train_vae(model, x, epochs=2, batch_size=16, binarize=True, generator=torch.Generator().manual_seed(1),
                  progress=False)
        runs.append([p.detach().cpu() for p in model.parameters()])
    for a, b in zip(*runs, strict=True):
        torch.testing.assert_close(a, b)


def test_a_divergence_can_be_recorded_instead_of_raised():
    model = _vae()
    with torch.no_grad():
        model.decoder.net[-1].bias.fill_(float("nan"))
    history = train_vae(model, _binary(16), _binary(8), epochs=3, raise_on_nan=False, progress=False)
    assert history["diverged"] == 1 and len(history["train"]) == 1 and history["val"] == []
    ok = train_vae(_vae(), _binary(16), epochs=2, progress=False)
    assert ok["diverged"] is None
