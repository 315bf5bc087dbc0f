"""The comparison every check is built on: a student's result against flowedu's reference."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

__all__ = ["check_close", "check_function"]


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise AssertionError(f"{name} must be a tensor (or convertible to one), got {type(value).__name__}") from err


def check_close(actual, expected, name: str = "result", rtol: float = 1e-5, atol: float = 1e-6) -> None:
    """Assert that ``actual`` equals ``expected`` in shape and, within tolerances, in value.

    Args:
        actual: the student's value (tensor, array or number).
        expected: the reference value.
        name: what the value is, for the message (e.g. ``"log_det"``).
        rtol, atol: non-negative tolerances, as in ``torch.allclose``.

    Raises:
        ValueError: for negative tolerances.
        AssertionError: naming the first difference: shape, non-finite values, or the largest error.
    """
    if rtol < 0 or atol < 0:
        raise ValueError(f"rtol and atol must be >= 0, got rtol={rtol}, atol={atol}")
    actual_t, expected_t = _as_tensor(actual, name), _as_tensor(expected, "expected")
    if actual_t.shape != expected_t.shape:
        raise AssertionError(f"{name}: shape {tuple(actual_t.shape)}, expected {tuple(expected_t.shape)}")
    actual_t, expected_t = actual_t.double().cpu(), expected_t.double().cpu()
    if not torch.isfinite(actual_t).all() and torch.isfinite(expected_t).all():
        raise AssertionError(f"{name}: has NaN or infinite entries where the reference is finite")
    if not torch.allclose(actual_t, expected_t, rtol=rtol, atol=atol, equal_nan=True):
        error = (actual_t - expected_t).abs()
        worst = int(torch.nan_to_num(error, nan=float("inf")).argmax())
        raise AssertionError(
            f"{name}: largest difference {error.flatten()[worst].item():.3g} at flat index {worst} "
            f"(got {actual_t.flatten()[worst].item():.6g}, expected {expected_t.flatten()[worst].item():.6g})"
        )


def check_function(
    candidate: Callable,
    reference: Callable,
    cases: Sequence[tuple],
    name: str | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Call ``candidate`` and ``reference`` on each argument tuple in ``cases`` and compare the results.

    Args:
        candidate: the student's function.
        reference: flowedu's reference function.
        cases: a non-empty sequence of argument tuples.
        name: what is checked, for the messages (default: the candidate's name).

    Raises:
        ValueError: if ``cases`` is empty.
        AssertionError: at the first case whose results differ (see :func:`check_close`).
    """
    if not cases:
        raise ValueError("cases must hold at least one argument tuple")
    name = name or getattr(candidate, "__name__", "function")
    for number, args in enumerate(cases):
        check_close(candidate(*args), reference(*args), f"{name} (case {number})", rtol=rtol, atol=atol)
    print(f"{name}: all {len(cases)} cases agree with the reference.")
