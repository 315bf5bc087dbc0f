"""Training and evaluating a VAE on on-device mini-batches, and the two gradient estimators compared."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from tqdm.auto import tqdm

from flowedu import data

__all__ = ["train_vae", "evaluate_elbo", "gradient_samples"]


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
