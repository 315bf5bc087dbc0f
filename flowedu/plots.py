"""Small plotting helpers shared by the notebooks (matplotlib only)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import torch


def image_grid(x: torch.Tensor, nrow: int | None = None, pad: int = 1) -> torch.Tensor:
    """Tile images into one picture.

    Args:
        x: images ``[n, C, H, W]`` with C = 1 or 3, values in [0, 1].
        nrow: images per row (default: about sqrt(n)).
        pad: pixels of background between images (>= 0): 0 for grey images (white under the
            ``gray_r`` colour map that :func:`show_images` uses), 1 (white) for colour images.

    Returns:
        ``[rows * (H + pad) - pad, nrow * (W + pad) - pad, C]`` on the CPU, ready for ``imshow``.
    """
    if x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) == 0:
        raise ValueError(f"x must have shape [n, C, H, W] with n >= 1 and C in (1, 3), got {tuple(x.shape)}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    n, c, h, w = x.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    if nrow < 1:
        raise ValueError(f"nrow must be >= 1, got {nrow}")
    rows = math.ceil(n / nrow)
    background = 0.0 if c == 1 else 1.0
    grid = torch.full((c, rows * (h + pad) - pad, nrow * (w + pad) - pad), background)
    for i, image in enumerate(x.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, nrow)
        grid[:, r * (h + pad) : r * (h + pad) + h, col * (w + pad) : col * (w + pad) + w] = image
    return grid.permute(1, 2, 0)


def show_images(x: torch.Tensor, nrow: int | None = None, title: str | None = None, ax=None):
    """Show images ``[n, C, H, W]`` in [0, 1] as a grid (grey scale for C = 1). Returns the axes."""
    grid = image_grid(x, nrow).numpy()
    if ax is None:
        size = min(8.0, 1.0 + 0.6 * grid.shape[1] / x.shape[-1])
        _, ax = plt.subplots(figsize=(size, size * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray_r" if grid.shape[-1] == 1 else None,
              vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax
