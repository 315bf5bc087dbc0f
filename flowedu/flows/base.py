"""The flow contract: layers, their composition, and a flow-based distribution (``book/flows.md``).

Every layer maps ``z: [batch, dim]`` to ``(z_new, log_det)`` in both directions, with one log-det per
sample (``[batch]``): ``log_det = log |det d z_new / d z|`` of the map that was applied. ``forward`` is the
generative direction (base sample to data, as in Rezende & Mohamed, 2015, arXiv:1505.05770), ``inverse``
the normalizing direction (data to base), which density estimation needs.
"""

from __future__ import annotations

import torch
from torch import nn

from flowedu import validate
from flowedu.distributions.elementary import log_standard_normal
from flowedu.validate import integer, optional_integer

__all__ = ["FlowLayer", "Inverse", "SequentialFlow", "StandardNormal", "NormalizingFlow"]


def check_input(z, dim: int, name: str = "z", copies: int | None = None) -> None:
    """Raise ``ValueError`` unless ``z`` is a floating tensor ``[batch, dim]`` (``[batch, copies, dim]``)."""
    shape = f"[batch, {dim}]" if copies is None else f"[batch, {copies}, {dim}]"
    if not isinstance(z, torch.Tensor) or not torch.is_floating_point(z):
        raise ValueError(f"{name} must be a floating-point tensor {shape}, got {type(z).__name__}")
    if tuple(z.shape[1:]) != ((dim,) if copies is None else (copies, dim)):
        raise ValueError(f"{name} must have shape {shape}, got {tuple(z.shape)}")


def zero_log_det(z: torch.Tensor) -> torch.Tensor:
    """``torch.zeros(len(z))`` on ``z``'s device and dtype (the log-det of a volume-preserving map)."""
    return torch.zeros(len(z), device=z.device, dtype=z.dtype)


class FlowLayer(nn.Module):
    """An invertible map with exact log-determinant in both directions.

    Subclasses implement ``forward(z) -> (f(z), log|det J_f(z)|)`` and
    ``inverse(x) -> (f^{-1}(x), log|det J_{f^{-1}}(x)|)``; the two log-dets cancel on a round trip.
    ``conditional`` layers also take ``context: [batch, context_dim]`` (amortised flows).
    """

    conditional = False

    def forward(self, z):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.forward")

    def inverse(self, z):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__}.inverse")


class Inverse(FlowLayer):
    """A layer with its two directions swapped: ``Inverse(f).forward = f.inverse``.

    Use it to put the cheap direction where it is needed: planar layers have a closed-form forward and
    a numerical inverse, so a planar flow for *density estimation* is built from ``Inverse(PlanarFlow(d))``
    (the closed form then runs from data to base, as ``log_prob`` needs).
    """

    def __init__(self, layer: FlowLayer):
        super().__init__()
        if not isinstance(layer, FlowLayer):
            raise ValueError(f"layer must be a FlowLayer, got {type(layer).__name__}")
        self.layer = layer
        self.conditional = layer.conditional

    def forward(self, z, *args, **kwargs):
        return self.layer.inverse(z, *args, **kwargs)

    def inverse(self, z, *args, **kwargs):
        return self.layer.forward(z, *args, **kwargs)


class SequentialFlow(FlowLayer):
    """The composition ``f_K o ... o f_1``; its log-det is the sum of the layers' log-dets.

    ``forward`` applies ``f_1`` first; ``inverse`` undoes ``f_K`` first. ``context`` (if given) is passed
    to the conditional layers.

    Args:
        *layers: ``FlowLayer`` instances, at least one.
    """

    def __init__(self, *layers: FlowLayer):
        super().__init__()
        if not layers:
            raise ValueError("layers must hold at least one FlowLayer, got none")
        for i, layer in enumerate(layers):
            if not isinstance(layer, FlowLayer):
                raise ValueError(f"layers[{i}] must be a FlowLayer, got {type(layer).__name__}")
        self.layers = nn.ModuleList(layers)
        self.conditional = any(layer.conditional for layer in layers)

    def _run(self, z, layers, direction: str, context=None):
        log_det = None
        for layer in layers:
            step = getattr(layer, direction)
            z, ld = step(z, context) if layer.conditional else step(z)
            log_det = ld if log_det is None else log_det + ld
        return z, log_det

    def forward(self, z, context=None):
        return self._run(z, self.layers, "forward", context)

    def inverse(self, z, context=None):
        return self._run(z, reversed(self.layers), "inverse", context)

    def trajectory(self, z, context=None) -> list:
        """``[z, f_1(z), f_2(f_1(z)), ...]``: the points after each layer (for layer-by-layer plots)."""
        points = [z]
        for layer in self.layers:
            z, _ = layer.forward(z, context) if layer.conditional else layer.forward(z)
            points.append(z)
        return points

    def __len__(self) -> int:
        return len(self.layers)


class StandardNormal(nn.Module):
    """The base distribution ``N(0, I_dim)`` as a module, so that ``.to(device)`` moves it with the flow.

    ``sample(n)`` returns ``[n, dim]``; ``log_prob(z: [..., dim])`` returns ``[...]``.

    Args:
        dim: number of coordinates.
        copies: ``None``, or ``m >= 1``: the base of ``m`` independent flows side by side (planar layers
            with ``copies=m``); ``sample(n)`` then returns ``[n, m, dim]`` and ``log_prob`` ``[n, m]``.
    """

    def __init__(self, dim: int, copies: int | None = None):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        self.copies = optional_integer(copies, "copies", 1)
        self.register_buffer("_anchor", torch.zeros(()))

    def sample(self, sample_shape=()):
        shape = validate.sample_shape(sample_shape)
        if self.copies is not None:
            shape = (*shape, self.copies)
        return torch.randn(*shape, self.dim, device=self._anchor.device, dtype=self._anchor.dtype)

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or z.shape[-1:] != (self.dim,):
            raise ValueError(f"z must be a tensor [..., {self.dim}], got {getattr(z, 'shape', type(z))}")
        return log_standard_normal(z)


class NormalizingFlow(nn.Module):
    """A flow-based distribution ``x = f(z)``, ``z ~ base``, with ``torch.distributions`` semantics.

    Change of variables: ``log p(x) = log p_base(f^{-1}(x)) + log |det J_{f^{-1}}(x)|``.

    Args:
        base: anything with ``sample(sample_shape)`` and ``log_prob(z) -> [batch]`` (a torch
            distribution with event shape ``[dim]``, or :class:`StandardNormal`).
        *layers: ``FlowLayer`` instances applied to base samples in order (or one ``SequentialFlow``).
    """

    def __init__(self, base, *layers: FlowLayer):
        super().__init__()
        if not (hasattr(base, "sample") and hasattr(base, "log_prob")):
            raise ValueError(f"base must have sample and log_prob, got {type(base).__name__}")
        self.base = base
        self.flow = layers[0] if len(layers) == 1 and isinstance(layers[0], SequentialFlow) else SequentialFlow(*layers)

    def _base_sample(self, n):
        shape = (n,) if isinstance(n, int) and not isinstance(n, bool) else tuple(n)
        if len(shape) != 1 or isinstance(shape[0], bool) or not isinstance(shape[0], int) or shape[0] < 1:
            raise ValueError(f"n must be a positive integer (or a 1-tuple of one), got {n!r}")
        return self.base.sample(shape)

    def log_prob(self, x: torch.Tensor, context=None) -> torch.Tensor:
        """``log p(x)`` for ``x: [batch, dim]``; returns ``[batch]`` in nats (``[batch, m]`` for ``m`` copies)."""
        z, log_det = self.flow.inverse(x, context)
        return self.base.log_prob(z) + log_det

    def sample(self, n=1, context=None) -> torch.Tensor:
        """``n`` samples ``[n, dim]`` (no gradient, like ``torch.distributions``' ``sample``)."""
        with torch.no_grad():
            return self.flow(self._base_sample(n), context)[0]

    def rsample(self, n=1, context=None) -> torch.Tensor:
        """Reparameterized samples ``[n, dim]``: gradients flow into the layers' parameters."""
        return self.flow(self._base_sample(n), context)[0]

    def sample_and_log_prob(self, n=1, context=None):
        """Reparameterized ``x: [n, dim]`` and ``log q(x): [n]`` from one forward pass.

        ``log q(x) = log p_base(z) - log |det J_f(z)|``: what the reparameterized ELBO needs, without
        inverting the flow.
        """
        z = self._base_sample(n)
        x, log_det = self.flow(z, context)
        return x, self.base.log_prob(z) - log_det
