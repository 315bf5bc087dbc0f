"""Chapter: book/vae.md — training and evaluating a VAE on on-device mini-batches, and the two gradient
estimators compared."""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence

import torch
from tqdm.auto import tqdm

from flowedu import data
from flowedu.distributions.elementary import skip_value_checks
from flowedu.loops import History, LossLog, NonFiniteLossError
from flowedu.vae.model import VAE
from flowedu.vae.parts import (
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianEncoder,
    MixturePrior,
    StandardNormalPrior,
    VampPrior,
)
from flowedu.validate import integer

__all__ = ["train_vae", "evaluate_elbo", "gradient_samples", "make_vae", "load_vae_data", "OPTIMIZERS"]


def make_vae(data_shape, latent_dim: int, likelihood: str = "bernoulli", hidden: Sequence[int] = (400,),
             prior: str = "standard", n_components: int = 10, init_scale: float = 0.1) -> VAE:
    """The chapter's MLP VAE: encoder and decoder with the same hidden sizes (mirrored).

    Args:
        data_shape: shape of one example, e.g. ``(1, 28, 28)``.
        latent_dim: d.
        likelihood: ``"bernoulli"`` (binary pixels) or ``"categorical"`` (17 grey levels of the 8x8 digits).
        hidden: hidden sizes of the encoder; the decoder uses them reversed.
        prior: ``"standard"``, ``"mixture"`` (``n_components``, means ~ N(0, init_scale² I)) or ``"vamp"``
            (``n_components`` pseudo-inputs).
    """
    if likelihood not in ("bernoulli", "categorical"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'categorical', got {likelihood!r}")
    if prior not in ("standard", "mixture", "vamp"):
        raise ValueError(f"prior must be 'standard', 'mixture' or 'vamp', got {prior!r}")
    encoder = GaussianEncoder(data_shape, latent_dim, hidden)
    back = tuple(reversed(tuple(hidden)))
    decoder = (BernoulliDecoder(latent_dim, data_shape, back) if likelihood == "bernoulli"
               else CategoricalDecoder(latent_dim, data_shape, 17, back))
    if prior == "standard":
        p = StandardNormalPrior(latent_dim)
    elif prior == "mixture":
        p = MixturePrior(n_components, latent_dim, init_scale)
    else:
        p = VampPrior(encoder, n_components)
    return VAE(encoder, decoder, p)


def load_vae_data(name: str, n_val: int, device: torch.device | str | None = None) -> dict:
    """Train / validation / test images for the chapter, with the likelihood that fits them.

    ``digits`` keep their 17 grey levels (categorical likelihood). Any other data set is for a Bernoulli
    likelihood: training images stay intensities, to be binarized afresh at every use (dynamic
    binarization, ``train_vae(..., binarize=True)``); validation and test images are binarized once with a
    fixed seed (static), so every evaluation sees the same binary images.

    Args:
        name: a data set of :func:`flowedu.data.load_images`.
        n_val: validation images taken from the end of the training split, 1 <= n_val < n_train.

    Returns:
        dict with ``x_train, y_train, x_val, y_val, x_test, y_test``, ``likelihood`` and ``binarize``.
    """
    x, y = data.load_images(name, "train", device=device)
    n_val = integer(n_val, "n_val", 1, len(x) - 1)
    binary = name != "digits"
    x_test, y_test = data.load_images(name, "test", binarize="static" if binary else None, device=device)
    x_val = x[-n_val:]
    if binary:
        x_val = data.bernoulli_binarize(x_val, torch.Generator().manual_seed(2))
    return {"x_train": x[:-n_val], "y_train": y[:-n_val], "x_val": x_val, "y_val": y[-n_val:], "x_test": x_test,
            "y_test": y_test, "likelihood": "bernoulli" if binary else "categorical", "binarize": binary}


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, batch_size: int = 1000) -> float:
    """The mean one-sample ELBO over ``x`` [n, ...] in nats per example (the model is put in eval mode).

    The sum is kept on the device and read back once, so a GPU does not wait for the host per batch.
    """
    if not isinstance(x, torch.Tensor) or len(x) == 0:
        raise ValueError("x must be a non-empty tensor [n, ...]")
    was_training = model.training
    model.eval()
    total = torch.zeros((), device=x.device)  # float32: float64 is not available on every device (MPS)
    for xb in data.batches(x, batch_size, shuffle=False):
        total += model.elbo(xb).sum()
    model.train(was_training)
    return total.item() / len(x)


OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamax": torch.optim.Adamax,
    "sgd": torch.optim.SGD,
}


def _binarizer(x_train: torch.Tensor, generator: torch.Generator | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Dynamic binarization of mini-batches drawn on the data's device, the intensities checked once.

    On the CPU the draws come from ``generator`` itself, exactly as ``data.batches(..., binarize=True)``
    draws them. On another device they come from a generator on that device, seeded once from
    ``generator`` (or from torch's global generator of that device when ``generator`` is None), so no
    batch waits for the host.
    """
    if not torch.is_floating_point(x_train):
        raise ValueError(f"x_train must hold floating-point intensities to binarize, got dtype {x_train.dtype}")
    if x_train.numel() and (x_train.min() < 0 or x_train.max() > 1 or torch.isnan(x_train).any()):
        raise ValueError("x_train must hold intensities in [0, 1] to be binarized (binarize=True)")
    device = x_train.device
    if device.type == "cpu":
        draw_generator = generator
    elif generator is None:
        draw_generator = None
    else:
        draw_generator = torch.Generator(device=device)
        draw_generator.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator)))

    def binarize(xb: torch.Tensor) -> torch.Tensor:
        u = torch.rand(xb.shape, generator=draw_generator, dtype=xb.dtype, device=device)
        return (u < xb).to(xb.dtype)

    return binarize


def train_vae(model, x_train: torch.Tensor, x_val: torch.Tensor | None = None, epochs: int = 10,
              lr: float = 1e-3, batch_size: int = 64, binarize: bool = False,
              generator: torch.Generator | None = None, progress: bool = True, optimizer: str = "adam",
              patience: int | None = None, restore_best: bool | None = None,
              metrics: Mapping[str, Callable[[torch.nn.Module], float]] | None = None,
              metric_epochs: Collection[int] | None = None, raise_on_nan: bool = True) -> History:
    """Maximise the ELBO by mini-batch gradient ascent; returns the per-epoch curves in nats per example.

    Early stopping: with ``patience`` the loop stops once the validation loss -ELBO has not improved for
    ``patience`` epochs, and (``restore_best``, the default then) the parameters of the epoch with the
    best validation loss are put back. The last epoch's parameters are rarely the best ones once the
    model starts to overfit.

    On a GPU the loop never waits for the host inside an epoch: the data's values are checked once
    (not per batch), binarization draws on the device, and the loss is read back once per epoch.

    Args:
        model: a :class:`~flowedu.vae.VAE` (any ``nn.Module`` with ``elbo(x) -> [batch]``).
        x_train: [n, ...] training data on the model's device.
        x_val: optional [m, ...] validation data (already binarized if the likelihood needs it).
        epochs: the most epochs to run (positive integer).
        lr: learning rate, > 0.
        batch_size: positive integer.
        binarize: dynamic binarization: a fresh Bernoulli draw of every training batch.
        generator: CPU generator for the batch order and the binarization.
        progress: show a tqdm bar over epochs.
        optimizer: ``"adam"``, ``"adamax"`` or ``"sgd"`` (plain SGD, no momentum), each with PyTorch's
            defaults apart from ``lr``.
        patience: stop after this many epochs without a lower validation loss (needs ``x_val``);
            ``None`` runs all ``epochs``.
        restore_best: restore the parameters of the best validation epoch at the end (needs ``x_val``);
            ``None`` means "when ``patience`` is set".
        metrics: optional ``{name: f(model) -> float}`` evaluated after the epochs in ``metric_epochs``
            (in eval mode), e.g. an importance-weighted bound on a fixed subset.
        metric_epochs: 1-based epochs at which ``metrics`` are evaluated (the last epoch run is always
            added); ``None`` means every epoch.
        raise_on_nan: raise at the first non-finite loss (default; after that very step on the CPU, at the
            end of its epoch on a GPU, naming the step either way); with ``False`` the loop finishes that
            epoch, stops and returns the history, whose ``train`` then ends with that epoch's value and
            whose ``diverged`` is the epoch (for showing a divergence rather than preventing it).

    Returns:
        :class:`~flowedu.loops.History` ``{"train": [...], "val": [...], "best_epoch": int or None,
        "diverged": int or None, "metric_epochs": [...], <metric name>: [...], "steps": int, "seconds": float}``
        (the loop convention of :mod:`flowedu.loops`): ``train`` is the mean -ELBO over each epoch's
        batches while training, ``val`` the validation -ELBO after each epoch (empty without ``x_val``),
        ``best_epoch`` the 1-based epoch of the lowest ``val``.

    Raises:
        NonFiniteLossError: (a ``RuntimeError``) at the first NaN or infinite loss, naming its step and epoch
            (lower the learning rate), unless ``raise_on_nan`` is False.
    """
    epochs = integer(epochs, "epochs", 1)
    batch_size = integer(batch_size, "batch_size", 1)  # larger than the data: one batch per epoch
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, got {optimizer!r}")
    if patience is not None:
        integer(patience, "patience", 1)
    if restore_best is None:
        restore_best = patience is not None
    if (patience is not None or restore_best) and x_val is None:
        raise ValueError("patience and restore_best need validation data x_val")
    metrics = dict(metrics or {})
    reserved = ("train", "val", "best_epoch", "diverged", "metric_epochs", "steps", "seconds")
    if any(name in reserved or not callable(f) for name, f in metrics.items()):
        raise ValueError(f"metrics must map new names (not {'/'.join(reserved)}) to callables")
    if metric_epochs is not None:
        metric_epochs = {integer(e, "metric_epochs[i]", 1) for e in metric_epochs}

    # Check the data once; the per-batch value checks would each make a GPU wait for the host.
    decoder = getattr(model, "decoder", None)
    binarize_batch = _binarizer(x_train, generator) if binarize else None
    checked = binarize_batch is not None or callable(getattr(decoder, "check_data", None))
    if binarize_batch is None and checked:
        decoder.check_data(x_train)

    opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr)
    history: dict = {"train": [], "val": [], "best_epoch": None, "diverged": None, "metric_epochs": [],
                     **{name: [] for name in metrics}}
    best_val, best_state = math.inf, None
    per_epoch = -(-len(x_train) // batch_size)
    log, step, start = LossLog(("loss",), epochs * per_epoch, x_train.device), 0, time.perf_counter()
    bar = tqdm(range(1, epochs + 1), desc=f"VAE {optimizer} lr={lr:g}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        total = torch.zeros((), device=x_train.device)
        with skip_value_checks() if checked else contextlib.nullcontext():
            for xb in data.batches(x_train, batch_size, generator=generator):
                if binarize_batch is not None:
                    xb = binarize_batch(xb)
                loss = -model.elbo(xb).mean()
                log.record(step, loss=loss)
                step += 1
                if raise_on_nan:
                    log.maybe_check(step, f"VAE, epoch {epoch}")  # every step on the CPU: no NaN update
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.detach() * len(xb)
        history["train"].append(total.item() / len(x_train))  # one read-back per epoch
        if not math.isfinite(history["train"][-1]):
            if raise_on_nan:
                log.check(step, f"VAE, epoch {epoch}, lr={lr:g}")
                raise NonFiniteLossError(f"the loss became {history['train'][-1]} in epoch {epoch} (lr={lr:g}): "
                                         "lower lr")
            history["diverged"] = epoch
            break
        if x_val is not None:
            history["val"].append(-evaluate_elbo(model, x_val))
            if history["val"][-1] < best_val:
                best_val, history["best_epoch"] = history["val"][-1], epoch
                if restore_best:
                    best_state = copy.deepcopy(model.state_dict())
        stop = patience is not None and epoch - (history["best_epoch"] or 0) >= patience
        if metrics and (metric_epochs is None or epoch in metric_epochs or epoch == epochs or stop):
            model.eval()
            history["metric_epochs"].append(epoch)
            with torch.no_grad():
                for name, f in metrics.items():
                    history[name].append(float(f(model)))
        val = f"{history['val'][-1]:.2f}" if x_val is not None else "-"
        bar.set_postfix(train=f"{history['train'][-1]:.2f}", val=val)
        if stop:
            break
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return History(history, steps=step, seconds=time.perf_counter() - start)


def gradient_samples(f: Callable[[torch.Tensor], torch.Tensor], mean: torch.Tensor, log_var: torch.Tensor, n: int,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n single-sample estimates of ∇_μ E_{z ~ N(μ, diag σ²)}[f(z)] by the two estimators.

    * score function (REINFORCE): f(z) ∇_μ log q(z) = f(z) (z - μ) / σ²;
    * reparameterization: ∇_μ f(μ + σ ε) = ∇f(z).

    Both are unbiased; their variances differ (``book/vae.md``).

    Args:
        f: z [n, d] -> [n], differentiable, each output depending only on its own row.
        mean: μ, [d].
        log_var: log σ², [d].
        n: number of draws, >= 2.

    Returns:
        ``(score, reparam)``, each [n, d].
    """
    n = integer(n, "n", 2)
    if mean.dim() != 1 or mean.shape != log_var.shape:
        raise ValueError(f"mean and log_var must both have shape [d], got {tuple(mean.shape)}, {tuple(log_var.shape)}")
    mean, log_var = mean.detach(), log_var.detach()
    eps = torch.randn(n, len(mean), generator=generator, dtype=mean.dtype).to(mean.device)
    z = (mean + torch.exp(0.5 * log_var) * eps).requires_grad_(True)
    values = f(z)
    if values.shape != (n,):
        raise ValueError(f"f must map z [n, d] to [n], got shape {tuple(values.shape)}")
    (grad,) = torch.autograd.grad(values.sum(), z)
    score = values.detach()[:, None] * (z.detach() - mean) * torch.exp(-log_var)
    return score, grad
