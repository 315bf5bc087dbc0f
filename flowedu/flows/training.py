"""Chapter: book/flows.md — fitting a flow to data by maximum likelihood (density estimation).

Minimising the average negative log-likelihood -(1/n) sum_i log p(x_i) of data drawn from p_data
minimises the cross-entropy H(p_data, p) = H(p_data) + KL(p_data || p), so the test NLL is bounded
below by the data's entropy and the gap is the KL the model still misses. (For fitting a flow to an
unnormalised density, the reverse direction, see :func:`flowedu.hmc.vi.fit_elbo`.)
"""

from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm

from flowedu.loops import History, LossLog, batch_cycle
from flowedu.validate import integer, real

__all__ = ["fit_density"]


def fit_density(model, x: torch.Tensor, steps: int, lr: float = 1e-2, batch_size: int = 256,
                cosine: bool = True, generator: torch.Generator | None = None, desc: str = "fit",
                progress: bool = True) -> History:
    """Train ``model`` (anything with ``log_prob(x) -> [batch]``) with Adam on the mean NLL of ``x``.

    Mini-batches come from :func:`flowedu.loops.batch_cycle` (reshuffled each pass, last partial batch
    dropped), for exactly ``steps`` optimiser steps. Follows the loop convention of :mod:`flowedu.loops`.

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
        :class:`~flowedu.loops.History` ``{"nll": [training NLL per step, nats per example], "steps", "seconds"}``.

    Raises:
        NonFiniteLossError: at the first step whose NLL is not finite (before that step's update).
    """
    steps = integer(steps, "steps", 1)
    lr = real(lr, "lr", above=0)
    batch_size = integer(batch_size, "batch_size", 1, len(x))
    # foreach: one fused update for all parameter tensors (a 32-layer planar flow has 96 of them)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cosine else None
    log, batches, start = LossLog(("nll",), steps, x.device), batch_cycle(x, batch_size, generator), time.perf_counter()
    for step in tqdm(range(steps), desc=desc, leave=False, disable=not progress):
        loss = -model.log_prob(next(batches)).mean()
        log.record(step, nll=loss)
        log.maybe_check(step + 1, "fit_density: the NLL")  # every step on the CPU: no update from a NaN loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if schedule is not None:
            schedule.step()
    log.check(steps, "fit_density: the NLL")
    return History(nll=log.tolist()["nll"], steps=steps, seconds=time.perf_counter() - start)
