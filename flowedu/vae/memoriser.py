"""Chapter: book/vae.md — a "model" that memorises its training set, the counterexample to judging a
generative model by its samples (Theis, van den Oord & Bethge 2016, arXiv:1511.01844).

A kernel density on the N training images x_1..x_N, over images of D pixels with L levels each:

    p(x) = (1/N) Σ_n Π_j [(1 - α) 1{x_j = x_nj} + α / L].

To sample, pick a training image uniformly and redraw each of its pixels, with probability α, uniformly
among the L levels. Its samples are (almost) training images; its test log-likelihood is exact (one
log-sum-exp over the training set) and poor, because a test image that is not a near-copy of a training
image pays log(α / L) for every pixel that differs.
"""

from __future__ import annotations

import math

import torch

from flowedu.validate import integer

__all__ = ["memoriser_log_likelihood", "memoriser_sample"]


def _check(alpha, n_levels) -> None:
    if not (isinstance(alpha, (int, float)) and 0 < alpha <= 1):
        raise ValueError(f"alpha must be a number in (0, 1], got {alpha!r}")
    n_levels = integer(n_levels, "n_levels", 2)


def _levels(x: torch.Tensor, n_levels: int, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty tensor [n, ...] of intensities")
    scaled = x.reshape(len(x), -1) * (n_levels - 1)
    levels = scaled.round()
    if (scaled - levels).abs().max() > 1e-3 or levels.min() < 0 or levels.max() > n_levels - 1:
        raise ValueError(f"{name} must hold intensities on the grid {{0, 1/{n_levels - 1}, ..., 1}}")
    return levels


@torch.no_grad()
def memoriser_log_likelihood(x: torch.Tensor, train: torch.Tensor, alpha: float, n_levels: int) -> torch.Tensor:
    """Exact log p(x) under the memorising kernel model, in nats.

    Args:
        x: [n, ...] intensities on the grid {0, 1/(L-1), ..., 1}.
        train: [N, ...] the memorised images, same grid and pixel count.
        alpha: the probability α of redrawing a pixel, in (0, 1].
        n_levels: L >= 2.

    Returns:
        [n] in nats.
    """
    _check(alpha, n_levels)
    a, b = _levels(x, n_levels, "x"), _levels(train, n_levels, "train")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"x and train must have the same number of pixels, got {a.shape[1]} and {b.shape[1]}")
    if n_levels <= 256:  # compare one byte per pixel: a quarter of the memory traffic of floats
        a, b = a.to(torch.uint8), b.to(torch.uint8)
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32  # (MPS has no float64)
    same = torch.stack([(row == b).sum(1) for row in a]).to(dtype)  # [n, N] pixels that agree
    log_same, log_diff = math.log(1 - alpha + alpha / n_levels), math.log(alpha / n_levels)
    log_k = same * log_same + (a.shape[1] - same) * log_diff  # log of each kernel
    return torch.logsumexp(log_k, 1) - math.log(len(train))


@torch.no_grad()
def memoriser_sample(train: torch.Tensor, alpha: float, n_levels: int, n: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """n draws from the memorising model: a uniform training image, each pixel redrawn with probability α.

    Args:
        train: [N, ...] intensities on the grid.
        alpha, n_levels: as in :func:`memoriser_log_likelihood`.
        n: number of samples (positive integer).
        generator: CPU generator (draws are moved to ``train``'s device).

    Returns:
        [n, ...] intensities on the grid, on ``train``'s device.
    """
    _check(alpha, n_levels)
    n = integer(n, "n", 1)
    levels = _levels(train, n_levels, "train")
    pick = torch.randint(len(train), (n,), generator=generator).to(train.device)
    redraw = (torch.rand(n, levels.shape[1], generator=generator) < alpha).to(train.device)
    new = torch.randint(n_levels, (n, levels.shape[1]), generator=generator).to(train.device, levels.dtype)
    out = torch.where(redraw, new, levels[pick])
    return (out / (n_levels - 1)).to(train.dtype).reshape(n, *train.shape[1:])
