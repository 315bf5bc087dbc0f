"""The one multilayer-perceptron builder of the package (VAE encoders and decoders, coupling networks)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from flowedu.validate import integer

__all__ = ["mlp"]


def mlp(sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU, zero_last: bool = False) -> nn.Sequential:
    """A multilayer perceptron ``sizes[0] -> ... -> sizes[-1]`` with ``activation`` between the layers.

    Args:
        sizes: the layer widths, input first and output last (at least two, each >= 1).
        activation: the non-linearity class put after every layer but the last.
        zero_last: set the last layer's weight and bias to zero (a coupling layer then starts as the
            identity map).
    """
    sizes = [integer(s, "sizes[i]", 1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least an input and an output size, got {sizes}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    if zero_last:
        nn.init.zeros_(layers[-1].weight)
        nn.init.zeros_(layers[-1].bias)
    return nn.Sequential(*layers)
