"""N(0, I): the one standard normal of the package (a flow's base, the VAE's standard prior), and ``draw``.

Chapters: book/flows.md (``flowedu.flows.StandardNormal``) and book/vae.md
(``flowedu.vae.StandardNormalPrior`` is the same class).
"""

from __future__ import annotations

import torch
from torch import nn

from flowedu import validate
from flowedu.distributions.elementary import log_standard_normal

__all__ = ["StandardNormal", "draw"]


def draw(kind: str, shape, generator: torch.Generator | None, dtype: torch.dtype, device) -> torch.Tensor:
    """Standard normal (``kind="randn"``) or uniform (``"rand"``) numbers of ``shape`` on ``device``.

    Drawn directly on ``device`` when ``generator`` is None or lives there (no host round trip on a GPU);
    drawn on the generator's device and moved otherwise, so a CPU generator gives the same numbers on
    every device.
    """
    sample = {"randn": torch.randn, "rand": torch.rand}[kind]
    device = torch.device(device)
    if generator is None or generator.device == device:
        return sample(shape, generator=generator, dtype=dtype, device=device)
    return sample(shape, generator=generator, dtype=dtype, device=generator.device).to(device)


class StandardNormal(nn.Module):
    """``N(0, I_dim)`` as a module, so that ``.to(device)`` and ``.double()`` move it with its model.

    The distribution contract of the package (``tests/test_contract_distributions.py``):
    ``sample(sample_shape=(), generator=None)`` returns ``[*sample_shape, dim]``; ``rsample`` is the same
    (there are no parameters to differentiate); ``log_prob(z: [..., dim])`` returns ``[...]`` in nats;
    ``dim`` (alias ``latent_dim``, what a VAE asks of its prior) and ``event_shape``.

    Args:
        dim: number of coordinates.
        copies: ``None``, or ``m >= 1``: the base of ``m`` independent flows side by side (planar layers
            with ``copies=m``); samples then have shape ``[*sample_shape, m, dim]`` and ``log_prob`` returns
            one value per copy, ``[..., m]``.
    """

    def __init__(self, dim: int, copies: int | None = None):
        super().__init__()
        self.dim = validate.integer(dim, "dim", 1)
        self.copies = validate.optional_integer(copies, "copies", 1)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # follows .to(device, dtype)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        state_dict.pop(prefix + "_anchor", None)  # state_dicts saved when the anchor was persistent
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def latent_dim(self) -> int:
        return self.dim

    @property
    def event_shape(self) -> tuple[int, ...]:
        return (self.dim,) if self.copies is None else (self.copies, self.dim)

    def sample(self, sample_shape=(), generator: torch.Generator | None = None) -> torch.Tensor:
        """``[*sample_shape, dim]`` (``[*sample_shape, copies, dim]`` with copies) on the module's device."""
        shape = (*validate.sample_shape(sample_shape), *self.event_shape)
        return draw("randn", shape, generator, self._anchor.dtype, self._anchor.device)

    rsample = sample

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """``log N(z; 0, I)`` summed over the last axis: ``[..., dim]`` -> ``[...]``."""
        if not isinstance(z, torch.Tensor) or z.dim() < 1 or z.shape[-1] != self.dim:
            got = tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__
            raise ValueError(f"z must have shape [..., {self.dim}], got {got}")
        return log_standard_normal(z)
