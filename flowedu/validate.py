"""Argument checks shared by every chapter: one rule per kind of argument, one message style.

Every public function of flowedu validates its inputs with these helpers, so that the same kind of argument
is accepted (or refused) the same way everywhere:

- an integer is any ``numbers.Integral`` (Python ``int``, NumPy ``np.int64``, ...) but never a ``bool``,
  and is returned as a Python ``int``;
- a real number is anything ``float()`` accepts except ``bool`` and strings (``int``, ``float``, NumPy
  scalars, 0-d tensors), must be finite, and is returned as a Python ``float``;
- the message names the parameter and the allowed range, then the value received:
  ``ValueError: batch_size must be an integer >= 1, got 0``.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["integer", "optional_integer", "real", "sample_shape", "data_shape"]


def _range(low, low_closed: bool, high, high_closed: bool) -> str:
    """The allowed range in words: ``>= 1``, ``> 0``, ``in [0, 1)``, or ``""`` without bounds."""
    if low is not None and high is not None:
        return f"in {'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
    if low is not None:
        return f"{'>=' if low_closed else '>'} {low}"
    if high is not None:
        return f"{'<=' if high_closed else '<'} {high}"
    return ""


def integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[minimum, maximum]`` (either bound optional).

    Raises:
        ValueError: ``"{name} must be an integer >= {minimum}, got {value!r}"`` (or ``in [minimum, maximum]``,
            ``<= maximum``) for a bool, a non-integer or a value out of range.
    """
    if (isinstance(value, bool) or not isinstance(value, numbers.Integral)
            or (minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
        allowed = _range(minimum, True, maximum, True)
        raise ValueError(f"{name} must be an integer{' ' + allowed if allowed else ''}, got {value!r}")
    return int(value)


def optional_integer(value, name: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """``None``, or an integer as :func:`integer` checks it (the message says that ``None`` is allowed)."""
    if value is None:
        return None
    try:
        return integer(value, name, minimum, maximum)
    except ValueError:
        allowed = _range(minimum, True, maximum, True)
        raise ValueError(f"{name} must be None or an integer{' ' + allowed if allowed else ''}, "
                         f"got {value!r}") from None


def real(value, name: str, *, above: float | None = None, at_least: float | None = None,
         below: float | None = None, at_most: float | None = None) -> float:
    """Return ``value`` as a finite ``float`` within the given bounds (strict: ``above``/``below``;
    inclusive: ``at_least``/``at_most``).

    Raises:
        ValueError: ``"{name} must be finite and > 0, got {value!r}"`` (the range as the bounds say) for a
            bool, a string, something ``float()`` refuses, NaN, ±inf or a value out of range.
    """
    allowed = _range(above if above is not None else at_least, above is None,
                     below if below is not None else at_most, below is None) or "a number"
    message = f"{name} must be finite and {allowed}, got {value!r}"
    if isinstance(value, (bool, str)):
        raise ValueError(message)
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(message) from err
    if (not math.isfinite(number) or (above is not None and not number > above)
            or (at_least is not None and not number >= at_least) or (below is not None and not number < below)
            or (at_most is not None and not number <= at_most)):
        raise ValueError(message)
    return number


def _shape(value, minimum: int, allow_empty: bool) -> tuple[int, ...] | None:
    """``value`` (an integer or a sequence of them, each >= ``minimum``) as a tuple, or ``None`` if it is not."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = (value,)
    try:
        shape = tuple(value)
    except TypeError:
        return None
    if (not shape and not allow_empty) or any(
            isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < minimum for s in shape):
        return None
    return tuple(int(s) for s in shape)


def sample_shape(value, name: str = "sample_shape") -> tuple[int, ...]:
    """An integer ``n >= 0`` or a sequence of them, returned as a tuple (``5`` -> ``(5,)``, ``()`` -> ``()``)."""
    shape = _shape(value, 0, allow_empty=True)
    if shape is None:
        raise ValueError(f"{name} must be a non-negative integer or a tuple of them, got {value!r}")
    return shape


def data_shape(value, name: str = "data_shape") -> tuple[int, ...]:
    """A positive integer or a non-empty sequence of them (e.g. ``(1, 28, 28)``), returned as a tuple."""
    shape = _shape(value, 1, allow_empty=False)
    if shape is None:
        raise ValueError(f"{name} must be a positive integer or a tuple of them, e.g. (1, 28, 28), got {value!r}")
    return shape
