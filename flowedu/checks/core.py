"""The comparison every check is built on (a student's result against flowedu's reference), and the
decorator every check wears so that it leaves the student's random numbers alone."""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["check_close", "check_function", "leaves_rng_alone"]


def leaves_rng_alone(check: Callable) -> Callable:
    """Decorate a check so that the caller's global random state is the same before and after it.

    The check runs inside ``torch.random.fork_rng`` (the CPU generator, and every CUDA device's when
    CUDA is available), and Python's ``random`` and NumPy's global states are saved and restored around
    it, whether it returns or raises. A notebook therefore draws the same random numbers whether or not
    a check ran, even when the student's function under test draws from the global generators.
    The wrapped function carries ``leaves_rng_alone = True`` (a test asserts it of every check).
    """

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        python_state, numpy_state = random.getstate(), np.random.get_state()  # noqa: NPY002 (the global state is what we protect)
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
        try:
            with torch.random.fork_rng(devices=devices):
                return check(*args, **kwargs)
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)  # noqa: NPY002

    wrapper.leaves_rng_alone = True
    return wrapper


def _as_tensor(value, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach()
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise AssertionError(f"{name} must be a tensor (or convertible to one), got {type(value).__name__}") from err


@leaves_rng_alone
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


@leaves_rng_alone
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
