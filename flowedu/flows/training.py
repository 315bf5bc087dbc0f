"""Chapter: ``book/flows.md`` -- fitting a flow to data by maximum likelihood (density estimation).

Minimising the average negative log-likelihood -(1/n) sum_i log p(x_i) of data drawn from p_data
minimises the cross-entropy H(p_data, p) = H(p_data) + KL(p_data || p), so the test NLL is bounded
below by the data's entropy and the gap is the KL the model still misses. (For fitting a flow to an
unnormalised density, the reverse direction, see :func:`flowedu.vi.fit_elbo`.)
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from flowedu import data
from flowedu.validate import integer, real

__all__ = ["fit_density"]


def fit_density(model, x: torch.Tensor, steps: int, lr: float = 1e-2, batch_size: int = 256,
                cosine: bool = True, generator: torch.Generator | None = None, desc: str = "fit",
                progress: bool = True) -> dict:
    """Train ``model`` (anything with ``log_prob(x) -> [batch]``) with Adam on the mean NLL of ``x``.

    Mini-batches come from :func:`flowedu.data.batches` (reshuffled each pass, last partial batch
    dropped), for exactly ``steps`` optimiser steps.

    Args:
        model: e.g. a ``flowedu.flows.NormalizingFlow``; trained in place.
        x: training data ``[n, dim]`` with n >= ``batch_size``.
        steps: number of Adam steps (>= 1).
        lr: learning rate (> 0); decayed to 0 along a cosine if ``cosine``.
        batch_size: examples per step (>= 1).
        generator: CPU generator for the batch order (None: torch's global one).
        desc: label of the progress bar.
        progress: show a ``tqdm`` bar.

    Returns:
        ``{"nll": [training NLL per step, nats per example], "seconds": wall time}``.
    """
    steps = integer(steps, "steps", 1)
    lr = real(lr, "lr", above=0)
    batch_size = integer(batch_size, "batch_size", 1, len(x))
    # foreach: one fused update for all parameter tensors (a 32-layer planar flow has 96 of them)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cosine else None
    history, start = [], time.perf_counter()
    with tqdm(total=steps, desc=desc, leave=False, disable=not progress) as bar:
        while len(history) < steps:
            for xb in data.batches(x, batch_size, generator=generator, drop_last=True):
                loss = -model.log_prob(xb).mean()
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"the NLL is not finite at step {len(history) + 1}; lower lr")
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                history.append(loss.item())
                bar.update()
                if len(history) == steps:
                    break
    return {"nll": history, "seconds": time.perf_counter() - start}
