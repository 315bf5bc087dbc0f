"""Chapter: book/intro.md — checks for ``notebooks/getting_started.ipynb``."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from flowedu.checks.core import check_function, leaves_rng_alone

__all__ = ["check_nll_from_logits"]


@leaves_rng_alone
def check_nll_from_logits(nll_from_logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> None:
    """Check a per-example categorical negative log-likelihood computed from logits.

    The reference is ``-log softmax(logits)[label]`` = ``F.cross_entropy(logits, labels, reduction="none")``.
    The cases include logits of size 1e3, where computing ``softmax`` first overflows.

    Args:
        nll_from_logits: ``(logits [batch, classes], labels [batch]) -> nll [batch]`` in nats.
    """
    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.randn(5, 10, generator=g), torch.randint(0, 10, (5,), generator=g)),
        (torch.randn(1, 3, generator=g, dtype=torch.float64), torch.tensor([2])),
        (1000 * torch.randn(4, 10, generator=g), torch.randint(0, 10, (4,), generator=g)),
        (torch.full((2, 4), -1000.0), torch.tensor([0, 3])),
    ]

    def reference(logits, labels):
        return F.cross_entropy(logits, labels, reduction="none")

    check_function(nll_from_logits, reference, cases, name="nll_from_logits", rtol=1e-5, atol=1e-4)
