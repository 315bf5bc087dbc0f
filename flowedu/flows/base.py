"""Chapter: book/flows.md — the flow contract: layers, their composition, and a flow-based distribution.

Every layer maps ``z: [batch, dim]`` to ``(z_new, log_det)`` in both directions, with one log-det per
sample (``[batch]``): ``log_det = log |det d z_new / d z|`` of the map that was applied. ``forward`` is the
generative direction (base sample to data, as in Rezende & Mohamed, 2015, arXiv:1505.05770), ``inverse``
the normalizing direction (data to base), which density estimation needs.
"""

from __future__ import annotations

import torch
from torch import nn

from flowedu import validate
from flowedu.distributions.standard_normal import StandardNormal

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


class NormalizingFlow(nn.Module):
    """A flow-based distribution ``x = f(z)``, ``z ~ base``, with ``torch.distributions`` semantics.

    Change of variables: ``log p(x) = log p_base(f^{-1}(x)) + log |det J_{f^{-1}}(x)|``.

    The distribution contract of the package (``tests/test_contract_distributions.py``): ``sample`` and
    ``rsample(sample_shape=(), context=None, generator=None)`` return ``[*sample_shape, dim]``;
    ``log_prob(x: [..., dim])`` returns ``[...]`` (the leading axes are flattened into one batch for the
    layers and restored); ``dim`` and ``latent_dim``. So a flow is a VAE prior as it stands
    (``VAE(encoder, decoder, NormalizingFlow(StandardNormal(d), ...))``) and a posterior base of
    :class:`flowedu.gk.FlowVAE` (``base=NormalizingFlow(...)``).

    Args:
        base: anything with ``sample(sample_shape)`` and ``log_prob(z) -> [batch]`` (a torch
            distribution with event shape ``[dim]``, or :class:`StandardNormal`); a ``generator`` is passed
            to ``base.sample`` only when one is given.
        *layers: ``FlowLayer`` instances applied to base samples in order (or one ``SequentialFlow``).
    """

    def __init__(self, base, *layers: FlowLayer):
        super().__init__()
        if not (hasattr(base, "sample") and hasattr(base, "log_prob")):
            raise ValueError(f"base must have sample and log_prob, got {type(base).__name__}")
        self.base = base
        self.flow = layers[0] if len(layers) == 1 and isinstance(layers[0], SequentialFlow) else SequentialFlow(*layers)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """The base's event shape: ``(dim,)``, or ``(copies, dim)`` for independent copies."""
        return tuple(getattr(self.base, "event_shape", ()))

    @property
    def dim(self) -> int:
        event = self.event_shape
        if not event:
            raise AttributeError(f"the base {type(self.base).__name__} has no event_shape, so dim is unknown")
        return event[-1]

    @property
    def latent_dim(self) -> int:
        return self.dim

    def _core(self) -> int:
        """How many trailing axes the layers see per example (1, or 2 with copies)."""
        return len(self.event_shape) or 1

    def _base_sample(self, sample_shape, generator):
        shape = validate.sample_shape(sample_shape)
        z = self.base.sample(shape) if generator is None else self.base.sample(shape, generator=generator)
        return z, shape

    def push_forward(self, z: torch.Tensor, context=None):
        """``(x, log q(x))`` for given base points ``z: [..., dim]``: ``x = f(z)``,
        ``log q(x) = log p_base(z) - log |det J_f(z)|``; both keep ``z``'s leading shape."""
        core = z.shape[z.dim() - self._core():]
        lead = z.shape[:z.dim() - self._core()]
        flat = z.reshape(-1, *core)  # the layers take one batch axis
        x, log_det = self.flow(flat, context)
        log_q = self.base.log_prob(flat) - log_det
        return x.reshape(tuple(lead) + tuple(x.shape[1:])), log_q.reshape(tuple(lead) + tuple(log_q.shape[1:]))

    def log_prob(self, x: torch.Tensor, context=None) -> torch.Tensor:
        """``log p(x)`` in nats for ``x: [..., dim]``; returns ``[...]``.

        (``[..., m]`` for ``m`` independent copies.)
        """
        event = self.event_shape
        if (not isinstance(x, torch.Tensor) or x.dim() < self._core()
                or (event and tuple(x.shape[x.dim() - len(event):]) != event)):
            shape = ", ".join(map(str, event)) if event else "dim"
            raise ValueError(f"x must have shape [..., {shape}], got {getattr(x, 'shape', type(x).__name__)}")
        lead = x.shape[:x.dim() - self._core()]
        z, log_det = self.flow.inverse(x.reshape(-1, *x.shape[x.dim() - self._core():]), context)
        log_p = self.base.log_prob(z) + log_det
        return log_p.reshape(tuple(lead) + tuple(log_p.shape[1:]))

    def rsample(self, sample_shape=(), context=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterized samples ``[*sample_shape, dim]``: gradients flow into the layers' parameters."""
        z, shape = self._base_sample(sample_shape, generator)
        x, _ = self.flow(z.reshape(-1, *z.shape[len(shape):]), context)  # the layers take one batch axis
        return x.reshape(tuple(shape) + tuple(x.shape[1:]))

    def sample(self, sample_shape=(), context=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Samples ``[*sample_shape, dim]`` (no gradient, like ``torch.distributions``' ``sample``)."""
        with torch.no_grad():
            return self.rsample(sample_shape, context, generator)

    def sample_and_log_prob(self, sample_shape=(), context=None, generator: torch.Generator | None = None):
        """Reparameterized ``x: [*sample_shape, dim]`` and ``log q(x): [*sample_shape]``.

        One forward pass: ``log q(x) = log p_base(z) - log |det J_f(z)|``, what the
        reparameterized ELBO needs, without inverting the flow.
        """
        z, _ = self._base_sample(sample_shape, generator)
        # x = f(z) and log q(x) = log p_base(z) - log |det J_f(z)|, from the same forward pass
        return self.push_forward(z, context)
