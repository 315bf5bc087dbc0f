"""``check_flow_layer``: the test harness of the flow chapter (``notebooks/flow_layers.ipynb``)."""

from __future__ import annotations

import torch

from flowedu.checks.core import check_close

__all__ = ["check_flow_layer"]


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
    z_flat = _flat(z)
    if not isinstance(z_flat, torch.Tensor) or z_flat.dim() != 2 or len(z_flat) < 1:
        raise ValueError(f"z must be a tensor [batch, dim] (or a pair of them) with batch >= 1, "
                         f"got {tuple(getattr(z_flat, 'shape', ())) or type(z).__name__}")
    if isinstance(n_jacobian, bool) or not isinstance(n_jacobian, int) or n_jacobian < 1:
        raise ValueError(f"n_jacobian must be a positive integer, got {n_jacobian!r}")
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
