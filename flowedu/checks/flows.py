"""Chapter: book/flows.md — the checks that end the exercises of ``notebooks/flow_layers.ipynb``.

``check_flow_layer`` (any layer: round trip, log-dets, autograd Jacobian), ``check_base_distribution``
(a base with the interface a flow needs), ``check_normalizing_flow`` (a flow-based distribution's
``log_prob`` and ``sample``) and ``check_fit_density`` (a maximum-likelihood training loop). None of them
changes the caller's random numbers: they draw from local generators or inside ``fork_rng``.
"""

from __future__ import annotations

import math

import torch

from flowedu.checks.core import check_close, leaves_rng_alone
from flowedu.distributions.elementary import log_standard_normal
from flowedu.validate import integer

__all__ = ["check_flow_layer", "check_base_distribution", "check_normalizing_flow", "check_fit_density"]


def _flat(v) -> torch.Tensor:
    """A tensor ``[batch, dim]``, or a pair of them concatenated (``Split``'s output)."""
    if isinstance(v, (tuple, list)):
        return torch.cat([_flat(part) for part in v], dim=1)
    return v


def _like(flat: torch.Tensor, template):
    """Cut ``flat [batch, n]`` into the structure of ``template`` (a tensor or a pair)."""
    if isinstance(template, (tuple, list)):
        parts, start = [], 0
        for part in template:
            width = _flat(part).shape[1]
            parts.append(_like(flat[:, start : start + width], part))
            start += width
        return tuple(parts)
    return flat


def _index(v, i: int):
    return tuple(_index(p, i) for p in v) if isinstance(v, (tuple, list)) else v[i : i + 1]


def _call(fn, z, context):
    return fn(z) if context is None else fn(z, context)


def _check_output(name, out, z_flat, batch):
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise AssertionError(f"{name} must return a pair (z_new, log_det), got {type(out).__name__}")
    new, log_det = out
    new_flat = _flat(new)
    if not isinstance(log_det, torch.Tensor) or log_det.shape != (batch,):
        raise AssertionError(f"{name}: log_det must have shape [batch] = ({batch},), "
                             f"got {tuple(getattr(log_det, 'shape', ())) or type(log_det).__name__}")
    for label, t in (("z_new", new_flat), ("log_det", log_det)):
        if t.dtype != z_flat.dtype:
            raise AssertionError(f"{name}: {label} has dtype {t.dtype}, the input has {z_flat.dtype}")
        if t.device != z_flat.device:
            raise AssertionError(f"{name}: {label} is on {t.device}, the input is on {z_flat.device}")
    if new_flat.shape != z_flat.shape:
        raise AssertionError(f"{name}: z_new has {tuple(new_flat.shape)} numbers per batch, the input "
                             f"{tuple(z_flat.shape)} (a flow preserves the dimension)")
    if not torch.isfinite(new_flat).all() or not torch.isfinite(log_det).all():
        raise AssertionError(f"{name}: NaN or infinite values")
    return new, log_det


@leaves_rng_alone
def check_flow_layer(layer, z, context=None, n_jacobian: int = 4, rtol: float | None = None,
                     atol: float | None = None, verbose: bool = True) -> None:
    """Check a flow layer against the contract ``forward/inverse -> (z_new, log_det [batch])``.

    Checks, in order: output types, shapes, dtype and device of both directions; the round trip
    ``inverse(forward(z)) = z``; that the two log-dets cancel; that ``log_det`` equals
    ``log |det J|`` of the autograd Jacobian (``torch.linalg.slogdet``) for the first ``n_jacobian``
    samples, in both directions; and that a batch of one gives the same result as the full batch.

    Args:
        layer: the layer (``forward`` and ``inverse`` methods).
        z: ``[batch, dim]`` (or a pair of tensors, for ``Merge``) with batch >= 1; float64 gives the
            tightest check.
        context: ``[batch, context_dim]`` for conditional layers, else ``None``.
        n_jacobian: how many samples get the (slow, ``dim`` backward passes each) Jacobian check, >= 1.
        rtol, atol: tolerances; default 1e-6/1e-8 for float64 and 1e-4/1e-4 for float32.

    Raises:
        ValueError: for a malformed ``z`` or ``n_jacobian``.
        AssertionError: naming the first property that fails.
    """
    with torch.random.fork_rng(devices=[]):  # a layer that draws (dropout, noise) must not move the caller's RNG
        _check_flow_layer(layer, z, context, n_jacobian, rtol, atol, verbose)


def _check_flow_layer(layer, z, context, n_jacobian, rtol, atol, verbose):
    z_flat = _flat(z)
    if not isinstance(z_flat, torch.Tensor) or z_flat.dim() != 2 or len(z_flat) < 1:
        raise ValueError(f"z must be a tensor [batch, dim] (or a pair of them) with batch >= 1, "
                         f"got {tuple(getattr(z_flat, 'shape', ())) or type(z).__name__}")
    n_jacobian = integer(n_jacobian, "n_jacobian", 1)
    double = z_flat.dtype == torch.float64
    rtol = (1e-6 if double else 1e-4) if rtol is None else rtol
    atol = (1e-8 if double else 1e-4) if atol is None else atol
    name = type(layer).__name__
    batch = len(z_flat)

    x, ld_fwd = _check_output(f"{name}.forward", _call(layer.forward, z, context), z_flat, batch)
    z_back, ld_inv = _check_output(f"{name}.inverse", _call(layer.inverse, x, context), z_flat, batch)
    check_close(_flat(z_back), z_flat, f"{name}: inverse(forward(z)) vs z", rtol, atol)
    check_close(ld_fwd + ld_inv, torch.zeros_like(ld_fwd), f"{name}: forward log_det + inverse log_det", rtol, atol)

    for direction, start, log_det in (("forward", z, ld_fwd), ("inverse", x, ld_inv)):
        fn = getattr(layer, direction)
        for i in range(min(n_jacobian, batch)):
            zi = _index(start, i)
            ci = None if context is None else context[i : i + 1]

            def f(v, zi=zi, ci=ci, fn=fn):
                return _flat(_call(fn, _like(v[None], zi), ci)[0])[0]

            jac = torch.autograd.functional.jacobian(f, _flat(zi)[0].detach())
            sign, logabsdet = torch.linalg.slogdet(jac)
            if sign == 0:
                raise AssertionError(f"{name}.{direction}: the Jacobian at sample {i} is singular")
            check_close(log_det[i], logabsdet, f"{name}.{direction}: log_det vs autograd slogdet (sample {i})",
                        rtol, atol)

    one, ld_one = _call(layer.forward, _index(z, 0), None if context is None else context[:1])
    check_close(_flat(one), _flat(x)[:1], f"{name}.forward on a batch of one", rtol, atol)
    check_close(ld_one, ld_fwd[:1], f"{name}.forward log_det on a batch of one", rtol, atol)
    if verbose:
        print(f"{name}: shapes, dtype, device, round trip, log-det cancellation and autograd slogdet "
              f"({min(n_jacobian, batch)} samples, both directions) all agree.")


def _shape_of(value) -> str:
    return str(tuple(value.shape)) if isinstance(value, torch.Tensor) else type(value).__name__


@leaves_rng_alone
def check_base_distribution(base, reference, n_samples: int = 20_000, verbose: bool = True) -> None:
    """Check a base distribution against a reference with event shape ``[dim]`` (e.g. ``Independent(Normal)``).

    Checks that ``sample(n)`` and ``sample((n,))`` return ``[n, dim]``; that ``log_prob(z: [batch, dim])``
    returns one value per sample, ``[batch]`` (a per-coordinate ``[batch, dim]`` is the usual bug: added
    to a flow's ``log_det [batch]`` it fails, or silently broadcasts when ``batch == dim``), equal to the
    reference's; and that the sample mean and standard deviation match the reference's within five
    standard errors.

    Args:
        base: the distribution under test (``sample``, ``log_prob``).
        reference: a ``torch.distributions.Distribution`` with ``event_shape == (dim,)``.
        n_samples: draws for the moment check (>= 100).

    Raises:
        ValueError: for a malformed reference or ``n_samples``.
        AssertionError: naming the first property that fails.
    """
    if not isinstance(reference, torch.distributions.Distribution) or len(reference.event_shape) != 1:
        raise ValueError(f"reference must be a torch distribution with event shape [dim], got {reference!r}")
    n_samples = integer(n_samples, "n_samples", 100)
    dim = reference.event_shape[0]
    name = type(base).__name__
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for shape in (5, (5,)):
            x = base.sample(shape)
            if not isinstance(x, torch.Tensor) or x.shape != (5, dim):
                raise AssertionError(f"{name}.sample({shape!r}) must return [5, {dim}], got {_shape_of(x)}")
        z = reference.sample((7,)) + torch.randn(7, dim, dtype=reference.mean.dtype)
        log_p = base.log_prob(z)
        if not isinstance(log_p, torch.Tensor) or log_p.shape != (7,):
            raise AssertionError(f"{name}.log_prob(z [7, {dim}]) must return one value per sample, [7], got "
                                 f"{_shape_of(log_p)} (sum the per-coordinate log-densities over the last axis)")
        check_close(log_p, reference.log_prob(z), f"{name}.log_prob vs the reference", 1e-5, 1e-5)
        draws = base.sample((n_samples,)).to(reference.mean.dtype)
    mean, std = reference.mean, reference.stddev
    tolerance = 5 * std / math.sqrt(n_samples)
    if ((draws.mean(0) - mean).abs() > tolerance).any():
        raise AssertionError(f"{name}.sample: mean {draws.mean(0).tolist()}, the reference's {mean.tolist()}")
    if ((draws.std(0) - std).abs() > 5 * std / math.sqrt(2 * n_samples) + 1e-12).any():
        raise AssertionError(f"{name}.sample: standard deviation {draws.std(0).tolist()}, "
                             f"the reference's {std.tolist()}")
    if verbose:
        print(f"{name}: sample shapes, log_prob (shape and values) and sample moments agree with the reference.")


class _FixedBase:
    """N(0, I) with a ``sample`` that returns known points, so a check can follow them through a flow."""

    def __init__(self, points: torch.Tensor):
        self.points = points

    def sample(self, sample_shape=()):
        n = sample_shape if isinstance(sample_shape, int) else math.prod(tuple(sample_shape))
        return self.points[:n].clone()

    def log_prob(self, z):
        return log_standard_normal(z)


@leaves_rng_alone
def check_normalizing_flow(flow_class, verbose: bool = True) -> None:
    """Check a class ``flow_class(base, *layers)`` against :class:`flowedu.flows.NormalizingFlow`.

    Builds both from the same layers (a scaling, an affine coupling, a swap) and a base whose samples are
    known, then checks: ``log_prob(x) = log p_base(f^{-1}(x)) + log |det J_{f^{-1}}(x)|`` in value and shape
    ``[batch]``, with a gradient that reaches the layers' parameters; ``sample(n)`` returns ``[n, dim]`` and
    equals the layers applied *forward* to the base's samples; and the density integrates to 1 on a grid.

    Args:
        flow_class: the class under test, called as ``flow_class(base, *layers)``.

    Raises:
        AssertionError: naming the first property that fails.
    """
    from flowedu import flows
    from flowedu.distributions import grid_log_normalizer

    name = getattr(flow_class, "__name__", type(flow_class).__name__)
    g = torch.Generator().manual_seed(0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        layers = [flows.Scale(2, torch.tensor([2.0, 0.5])), flows.AffineCoupling(2, 8, zero_init=False),
                  flows.Swap(2), flows.AffineCoupling(2, 8, zero_init=False)]
    layers = [layer.double() for layer in layers]
    base = _FixedBase(torch.randn(64, 2, dtype=torch.float64, generator=g))
    candidate = flow_class(base, *layers)
    reference = flows.NormalizingFlow(base, *layers)
    x = 2 * torch.randn(16, 2, dtype=torch.float64, generator=g)
    log_p = candidate.log_prob(x)
    if not isinstance(log_p, torch.Tensor) or log_p.shape != (16,):
        raise AssertionError(f"{name}.log_prob(x [16, 2]) must return [16], got {_shape_of(log_p)}")
    with torch.no_grad():
        expected = reference.log_prob(x)
    check_close(log_p, expected, f"{name}.log_prob vs log p_base(f^-1(x)) + log|det J_f^-1(x)|", 1e-8, 1e-8)
    scale = layers[0].log_scale
    scale.grad = None
    if not log_p.requires_grad:
        raise AssertionError(f"{name}.log_prob: no gradient reaches the layers' parameters (training needs it; "
                             f"no detach, no torch.no_grad in log_prob)")
    log_p.sum().backward()
    if scale.grad is None or not torch.isfinite(scale.grad).all() or scale.grad.abs().sum() == 0:
        raise AssertionError(f"{name}.log_prob: no gradient reaches the layers' parameters (training needs it)")
    scale.grad = None
    with torch.random.fork_rng(devices=[]):
        samples = candidate.sample(10)
    if not isinstance(samples, torch.Tensor) or samples.shape != (10, 2):
        raise AssertionError(f"{name}.sample(10) must return [10, 2], got {_shape_of(samples)}")
    with torch.no_grad():
        pushed = reference.flow.forward(base.points[:10])[0]
    check_close(samples, pushed, f"{name}.sample(10) vs the layers applied forward to the base's samples", 1e-8, 1e-8)
    log_z = grid_log_normalizer(lambda v: candidate.log_prob(v).detach(), bounds=((-12, 12), (-12, 12)), n=300)
    if abs(log_z) > 1e-2:
        raise AssertionError(f"{name}: the density integrates to exp({log_z:.4f}) on a grid, not 1")
    if verbose:
        print(f"{name}: log_prob (value, shape, gradient), sample and normalisation agree with the reference.")


@leaves_rng_alone
def check_fit_density(fit, verbose: bool = True) -> None:
    """Check a training loop ``fit(model, x, steps, lr, batch_size, generator) -> [per-step NLL]``.

    Fits ``x = s z + t`` (``Scale`` then ``Translate`` on ``N(0, I)``) to 4,000 points from ``N(3, 0.5² I)``
    for 300 steps at ``lr = 0.05``, batch 256, and checks: one finite history entry per step; the first one
    is the mean NLL of a batch under the untrained model (nats per example, not a sum); and the trained
    model's NLL on the data is within 0.05 nat of the entropy ``log(2πe) + 2 log 0.5`` (maximum likelihood
    found the Gaussian), with ``s`` and ``t`` near 0.5 and 3.

    Args:
        fit: the training loop under test.

    Raises:
        AssertionError: naming the first property that fails.
    """
    from flowedu import flows

    name = getattr(fit, "__name__", type(fit).__name__)
    g = torch.Generator().manual_seed(0)
    x = 3.0 + 0.5 * torch.randn(4000, 2, generator=g)
    model = flows.NormalizingFlow(flows.StandardNormal(2), flows.Scale(2), flows.Translate(2))
    with torch.no_grad():
        nll_start = -model.log_prob(x).mean().item()
    steps = 300
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        history = fit(model, x, steps, 5e-2, 256, torch.Generator().manual_seed(1))
    history = list(history) if isinstance(history, (list, tuple)) else history
    if not isinstance(history, list) or len(history) != steps:
        raise AssertionError(f"{name} must return a list with one NLL per step ({steps}), got "
                             f"{len(history) if hasattr(history, '__len__') else type(history).__name__} entries")
    if not all(isinstance(v, float) and math.isfinite(v) for v in history):
        raise AssertionError(f"{name}: the history must hold finite Python floats (loss.item())")
    if abs(history[0] - nll_start) > 1.0:
        raise AssertionError(f"{name}: the first recorded loss is {history[0]:.4g}, but the untrained model's "
                             f"mean NLL is {nll_start:.4g} nats per example (record the mean over the batch, "
                             f"before the step)")
    entropy = math.log(2 * math.pi * math.e) + 2 * math.log(0.5)
    with torch.no_grad():
        nll = -model.log_prob(x).mean().item()
        scale, shift = model.flow.layers[0].log_scale.exp(), model.flow.layers[1].shift
    if not nll < entropy + 0.05:
        raise AssertionError(f"{name}: after {steps} steps the NLL is {nll:.4f}, the entropy {entropy:.4f}: the loop "
                             f"does not minimise the mean NLL (sign, zero_grad, optimizer.step?)")
    if (scale - 0.5).abs().max() > 0.05 or (shift - 3.0).abs().max() > 0.1:
        raise AssertionError(f"{name}: learned s = {scale.tolist()}, t = {shift.tolist()}, expected about 0.5 and 3")
    if verbose:
        print(f"{name}: {steps} steps, history in nats per example, NLL {nll:.4f} vs entropy {entropy:.4f}: "
              f"maximum likelihood found N(3, 0.5² I).")
