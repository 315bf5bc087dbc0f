"""Chapter: book/hmc.md — argument checks shared by the chapter's modules (one message style)."""

from __future__ import annotations

import math
import numbers

import torch


def check_count(value, name: str, minimum: int) -> int:
    """An integer >= ``minimum`` (any ``numbers.Integral`` but bool), returned as ``int``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(value, name: str) -> float:
    """A finite number > 0, returned as ``float``."""
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}") from err
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be finite and > 0, got {number}")
    return number


def check_step_size(step_size, theta: torch.Tensor) -> torch.Tensor | float:
    """eps > 0: a number, or one per chain ``[chains]`` (returned as ``[chains, 1]`` to broadcast)."""
    if isinstance(step_size, torch.Tensor) and step_size.dim() > 0:
        if step_size.shape != theta.shape[:1]:
            raise ValueError(f"step_size must be a number or have shape [chains] = {tuple(theta.shape[:1])}, "
                             f"got {tuple(step_size.shape)}")
        if not (torch.isfinite(step_size).all() and (step_size > 0).all()):
            raise ValueError("step_size must be finite and > 0 for every chain")
        return step_size[:, None]
    return check_positive(step_size, "step_size")


def check_state(theta: torch.Tensor, name: str = "theta") -> None:
    """A floating tensor ``[chains, dim]`` with chains, dim >= 1."""
    if not isinstance(theta, torch.Tensor) or theta.dim() != 2 or theta.shape[0] < 1 or theta.shape[1] < 1:
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"{name} must be a tensor of shape [chains, dim] with chains, dim >= 1, got {shape}")
