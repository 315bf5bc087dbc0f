"""The one training-loop convention of the book, and the pieces every loop shares.

The convention (``tests/test_contract_training.py`` runs every loop through it): ``steps`` counts optimiser
steps and ``epochs`` passes over the data, meaning the same in every loop; ``generator=`` is the CPU
``torch.Generator`` for all the randomness a loop draws (batch order, noise, binarization); ``progress=``
shows a ``tqdm.auto`` bar (the book build silences them with ``TQDM_DISABLE=1``); every loop returns a
:class:`History`; every loop stops at the first non-finite loss with :class:`NonFiniteLossError` naming that
step; and a data set smaller than one batch is a ``ValueError``, not an endless loop. The loops:
``flowedu.flows.fit_density``, ``flowedu.hmc.fit_elbo``, ``flowedu.vae.train_vae``, ``flowedu.gan.train_gan``,
``flowedu.gan.train_vae_gan`` and ``flowedu.metrics.ClassifierFeatures.fit``.

- :class:`History` — what every loop returns: a ``dict`` of curves by name, plus ``"steps"`` and ``"seconds"``.
- :func:`batch_cycle` — mini-batches without end, a fresh random order each pass (the last partial batch
  dropped), refusing a data set smaller than one batch (which would otherwise loop forever, yielding nothing).
- :class:`LossLog` — per-step losses kept on the training device and read back in bulk, so a GPU is not made
  to wait for the host once per step; :meth:`LossLog.check` raises at the *first* non-finite step, by number.
  On the CPU (where reading a number costs nothing) loops check after every step, so they stop at the first
  bad step itself; on a GPU every ``LossLog.every`` steps, and the message still names the first bad step.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from flowedu import data
from flowedu.validate import integer

__all__ = ["History", "NonFiniteLossError", "batch_cycle", "LossLog", "seeded_generator"]


def seeded_generator(generator: torch.Generator | None, seed: int | None = None, default_seed: int = 0):
    """The loop's generator: ``generator`` itself, else a fresh CPU generator seeded with ``seed`` (the older
    ``seed=`` argument of the GAN loops, kept as an alias) or ``default_seed``."""
    if generator is not None and seed is not None:
        raise ValueError("give generator or seed, not both")
    if generator is not None:
        if not isinstance(generator, torch.Generator):
            raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
        return generator
    return torch.Generator().manual_seed(integer(seed if seed is not None else default_seed, "seed", 0))


class NonFiniteLossError(FloatingPointError, RuntimeError):
    """A training loss became NaN or infinite; the message names the first (1-based) step at which it did.

    Both a ``FloatingPointError`` and a ``RuntimeError``, so code written for either keeps catching it."""


class History(dict):
    """What every training loop returns: ``{curve name: [floats], ..., "steps": int, "seconds": float}``.

    A plain ``dict`` (``history["nll"]``, ``history["val"]`` work as before) whose ``"steps"`` is the number of
    optimiser steps taken and ``"seconds"`` the loop's wall time.
    """

    def __init__(self, *args, steps: int, seconds: float, **curves):
        super().__init__(*args, **curves)
        self["steps"], self["seconds"] = int(steps), float(seconds)

    @property
    def steps(self) -> int:
        return self["steps"]

    @property
    def seconds(self) -> float:
        return self["seconds"]


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

    def __init__(self, names, steps: int, device=None, every: int | None = None):
        steps = integer(steps, "steps", 1)
        # float64: a float32 loss is stored exactly, a float64 one is not rounded
        self.losses = {name: torch.full((steps,), float("nan"), dtype=torch.float64, device=device) for name in names}
        on_cpu = torch.device(device if device is not None else "cpu").type == "cpu"
        self.every = integer(every, "every", 1) if every is not None else (1 if on_cpu else 100)
        self.checked = 0

    def maybe_check(self, done: int, what: str) -> None:
        """:meth:`check` after every ``every``-th step (every step on the CPU)."""
        if done % self.every == 0:
            self.check(done, what)

    def record(self, step: int, **values: torch.Tensor) -> None:
        """Store the losses of step ``step`` (0-based index)."""
        for name, value in values.items():
            self.losses[name][step] = value.detach()

    def check(self, done: int, what: str) -> None:
        """Raise :class:`NonFiniteLossError` at the first step (1-based) among the first ``done`` whose loss is
        not finite (one host read; the steps already checked are not read again)."""
        start = min(self.checked, done)
        finite = torch.stack([v[start:done] for v in self.losses.values()]).isfinite().all(0)
        if not bool(finite.all()):
            first = start + int((~finite).nonzero()[0, 0]) + 1
            raise NonFiniteLossError(f"the losses became non-finite at step {first} ({what}); lower lr")
        self.checked = done

    def tolist(self, done: int | None = None) -> dict[str, list[float]]:
        """``{name: [floats]}`` of the first ``done`` steps (default: all)."""
        return {name: value[:done].cpu().tolist() for name, value in self.losses.items()}
