"""Training and evaluating a VAE on on-device mini-batches, and the two gradient estimators compared."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from flowedu import data
from flowedu.vae.model import VAE
from flowedu.vae.parts import (
    BernoulliDecoder,
    CategoricalDecoder,
    GaussianEncoder,
    MixturePrior,
    StandardNormalPrior,
    VampPrior,
)

__all__ = ["train_vae", "evaluate_elbo", "gradient_samples", "make_vae", "load_vae_data"]


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
    if isinstance(n_val, bool) or not isinstance(n_val, int) or not 1 <= n_val < len(x):
        raise ValueError(f"n_val must be an integer in [1, {len(x)}), got {n_val!r}")
    binary = name != "digits"
    x_test, y_test = data.load_images(name, "test", binarize="static" if binary else None, device=device)
    x_val = x[-n_val:]
    if binary:
        x_val = data.bernoulli_binarize(x_val, torch.Generator().manual_seed(2))
    return {"x_train": x[:-n_val], "y_train": y[:-n_val], "x_val": x_val, "y_val": y[-n_val:], "x_test": x_test,
            "y_test": y_test, "likelihood": "bernoulli" if binary else "categorical", "binarize": binary}


@torch.no_grad()
def evaluate_elbo(model, x: torch.Tensor, batch_size: int = 1000) -> float:
    """The mean one-sample ELBO over ``x`` [n, ...] in nats per example (the model is put in eval mode)."""
    if not isinstance(x, torch.Tensor) or len(x) == 0:
        raise ValueError("x must be a non-empty tensor [n, ...]")
    was_training = model.training
    model.eval()
    total = sum(model.elbo(xb).sum().item() for xb in data.batches(x, batch_size, shuffle=False))
    model.train(was_training)
    return total / len(x)


def train_vae(model, x_train: torch.Tensor, x_val: torch.Tensor | None = None, epochs: int = 10,
              lr: float = 1e-3, batch_size: int = 64, binarize: bool = False,
              generator: torch.Generator | None = None, progress: bool = True) -> dict[str, list[float]]:
    """Maximise the ELBO with Adam; returns the per-epoch curves of the loss -ELBO (nats per example).

    Args:
        model: a :class:`~flowedu.vae.VAE` (anything with ``elbo(x) -> [batch]`` and parameters).
        x_train: [n, ...] training data on the model's device.
        x_val: optional [m, ...] validation data (already binarized if the likelihood needs it).
        epochs, batch_size: positive integers.
        lr: Adam's learning rate, > 0.
        binarize: dynamic binarization: a fresh Bernoulli draw of every training batch.
        generator: CPU generator for the batch order and the binarization.
        progress: show a tqdm bar over epochs.

    Returns:
        ``{"train": [...], "val": [...]}``: mean -ELBO per epoch (train: averaged over the epoch's
        batches while training; val: evaluated after the epoch; empty without ``x_val``).

    Raises:
        RuntimeError: if the loss becomes NaN or infinite (lower the learning rate).
    """
    for value, name in ((epochs, "epochs"), (batch_size, "batch_size")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {lr!r}")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    history: dict[str, list[float]] = {"train": [], "val": []}
    bar = tqdm(range(epochs), desc=f"VAE lr={lr:g}", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        total = torch.zeros((), device=x_train.device)
        for xb in data.batches(x_train, batch_size, generator=generator, binarize=binarize):
            loss = -model.elbo(xb).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(xb)
        history["train"].append(total.item() / len(x_train))
        if not math.isfinite(history["train"][-1]):
            raise RuntimeError(f"the loss became {history['train'][-1]} in epoch {epoch + 1} (lr={lr:g}): lower lr")
        if x_val is not None:
            history["val"].append(-evaluate_elbo(model, x_val))
        val = f"{history['val'][-1]:.2f}" if x_val is not None else "-"
        bar.set_postfix(train=f"{history['train'][-1]:.2f}", val=val)
    model.eval()
    return history


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
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2, got {n!r}")
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
