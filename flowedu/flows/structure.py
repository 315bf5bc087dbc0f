"""Chapter: book/flows.md — Structural flows that move coordinates around: ``Split``, ``Merge``, ``Swap``, ``Permute``.

All are volume preserving (``log_det = 0``): a permutation matrix has determinant +-1. ``Split`` turns a
tensor into a pair ``(z_a, z_b)`` and ``Merge`` is its inverse, as in the Radboud flow assignment; a
check of these layers treats a pair as the concatenation of its parts.
"""

from __future__ import annotations

import torch

from flowedu.flows.base import FlowLayer, check_input, zero_log_det
from flowedu.validate import integer

__all__ = ["Split", "Merge", "Swap", "Permute"]


def _check_split(dim: int, split) -> int:
    integer(dim, "dim", 2)
    split = dim // 2 if split is None else split
    split = integer(split, "split", 1, dim - 1)
    return split


def _check_pair(pair, sizes, name="z"):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"{name} must be a pair (z_a [batch, {sizes[0]}], z_b [batch, {sizes[1]}])")
    for part, size, label in zip(pair, sizes, ("z_a", "z_b"), strict=True):
        check_input(part, size, f"{name}: {label}")
    if len(pair[0]) != len(pair[1]):
        raise ValueError(f"{name}: z_a and z_b must have the same batch size, got {len(pair[0])} and {len(pair[1])}")


class Split(FlowLayer):
    """``z: [batch, dim]`` -> ``((z[:, :split], z[:, split:]), log_det = 0)``; the inverse concatenates.

    Args:
        dim: number of coordinates (>= 2).
        split: size of the first part, in [1, dim - 1] (default ``dim // 2``).
    """

    def __init__(self, dim: int, split: int | None = None):
        super().__init__()
        self.split = _check_split(dim, split)
        self.dim = dim

    def forward(self, z):
        check_input(z, self.dim)
        return (z[:, : self.split], z[:, self.split :]), zero_log_det(z)

    def inverse(self, z):
        _check_pair(z, (self.split, self.dim - self.split))
        return torch.cat(tuple(z), dim=1), zero_log_det(z[0])


class Merge(Split):
    """The inverse of :class:`Split`: ``(z_a, z_b)`` -> ``cat(z_a, z_b)``, ``log_det = 0``."""

    def forward(self, z):
        return super().inverse(z)

    def inverse(self, z):
        return super().forward(z)


class Swap(FlowLayer):
    """``[z_a, z_b]`` -> ``[z_b, z_a]`` with ``z_a = z[:, :split]``; ``log_det = 0``.

    Between two couplings it lets the second transform the coordinates the first left alone.

    Args:
        dim: number of coordinates (>= 2).
        split: size of ``z_a``, in [1, dim - 1] (default ``dim // 2``).
    """

    def __init__(self, dim: int, split: int | None = None):
        super().__init__()
        self.split = _check_split(dim, split)
        self.dim = dim

    def forward(self, z):
        check_input(z, self.dim)
        return torch.cat((z[:, self.split :], z[:, : self.split]), dim=1), zero_log_det(z)

    def inverse(self, z):
        check_input(z, self.dim)
        k = self.dim - self.split
        return torch.cat((z[:, k:], z[:, :k]), dim=1), zero_log_det(z)


class Permute(FlowLayer):
    """A fixed permutation of the coordinates, ``f(z)_i = z_{perm[i]}``; ``log_det = 0``.

    Args:
        dim: number of coordinates.
        perm: a permutation of ``range(dim)``; ``None`` draws one from ``seed`` (reversal if ``dim`` = 2).
        seed: seed of the random permutation.
    """

    def __init__(self, dim: int, perm=None, seed: int = 0):
        super().__init__()
        self.dim = integer(dim, "dim", 1)
        if perm is None:
            perm = torch.randperm(dim, generator=torch.Generator().manual_seed(seed))
            if dim == 2:
                perm = torch.tensor([1, 0])
        perm = torch.as_tensor(perm, dtype=torch.long)
        if perm.shape != (dim,) or sorted(perm.tolist()) != list(range(dim)):
            raise ValueError(f"perm must be a permutation of range({dim}), got {perm.tolist()}")
        self.register_buffer("perm", perm)
        self.register_buffer("inverse_perm", torch.argsort(perm))

    def forward(self, z):
        check_input(z, self.dim)
        return z[:, self.perm], zero_log_det(z)

    def inverse(self, z):
        check_input(z, self.dim)
        return z[:, self.inverse_perm], zero_log_det(z)
