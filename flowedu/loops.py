"""The pieces every training loop of the book shares: an endless batch stream and a finiteness guard.

- :func:`batch_cycle` — mini-batches without end, a fresh random order each pass (the last partial batch
  dropped), refusing a data set smaller than one batch (which would otherwise loop forever, yielding nothing).
- :class:`LossLog` — per-step losses kept on the training device and read back in bulk, so a GPU is not made
  to wait for the host once per step; :meth:`LossLog.check` raises at the *first* non-finite step, by number.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from flowedu import data
from flowedu.validate import integer

__all__ = ["batch_cycle", "LossLog"]


def batch_cycle(x: torch.Tensor, batch_size: int, generator: torch.Generator | None = None,
                name: str = "x") -> Iterator[torch.Tensor]:
    """Mini-batches ``[batch_size, ...]`` of ``x`` without end, reshuffled each pass by ``generator``.

    Args:
        x: the data ``[n, ...]``.
        batch_size: examples per batch, ``1 <= batch_size <= n``.
        generator: CPU generator for the order (``None``: torch's global one).
        name: what ``x`` is called, for the message.

    Raises:
        ValueError: when ``batch_size`` is not an integer in ``[1, len(x)]`` (raised at the call, not at the
            first ``next``).
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or len(x) == 0:
        raise ValueError(f"{name} must be a non-empty tensor [n, ...], got {getattr(x, 'shape', type(x).__name__)}")
    batch_size = integer(batch_size, "batch_size", 1)
    if batch_size > len(x):
        raise ValueError(f"batch_size must be <= len({name}) = {len(x)}, got {batch_size}")

    def endless():
        while True:
            yield from data.batches(x, batch_size, generator=generator, drop_last=True)

    return endless()


class LossLog:
    """Named per-step losses ``[steps]`` on ``device``, filled with NaN until written.

    ``log.record(step, name=value, ...)`` stores detached 0-d tensors (no host sync);
    ``log.check(done, what)`` reads the first ``done`` steps back once and raises ``FloatingPointError``
    naming the first (1-based) step at which any loss is not finite; ``log.tolist()`` returns
    ``{name: [floats]}``.
    """

    def __init__(self, names, steps: int, device=None):
        steps = integer(steps, "steps", 1)
        self.losses = {name: torch.full((steps,), float("nan"), device=device) for name in names}

    def record(self, step: int, **values: torch.Tensor) -> None:
        """Store the losses of step ``step`` (0-based index)."""
        for name, value in values.items():
            self.losses[name][step] = value.detach()

    def check(self, done: int, what: str) -> None:
        """Raise at the first step (1-based) among the first ``done`` whose loss is not finite (one host read)."""
        finite = torch.stack([v[:done] for v in self.losses.values()]).isfinite().all(0)
        if not bool(finite.all()):
            first = int((~finite).nonzero()[0, 0]) + 1
            raise FloatingPointError(f"the losses became non-finite at step {first} ({what}); lower lr")

    def tolist(self) -> dict[str, list[float]]:
        return {name: value.cpu().tolist() for name, value in self.losses.items()}
