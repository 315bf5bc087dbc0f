"""Small plotting helpers shared by the notebooks (matplotlib only): image grids and panels of them."""

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


def show_image_panels(panels: dict, nrow: int | None = None, panel_size: float = 4.0):
    """Show several image sets side by side, one grid per panel, titled by the dict's keys.

    Args:
        panels: ``{title: images [n, C, H, W] in [0, 1]}``, at least one entry.
        nrow: images per row in every grid (default: about sqrt(n)).
        panel_size: width of each panel in inches (> 0).

    Returns:
        The matplotlib figure.
    """
    if not isinstance(panels, dict) or not panels:
        raise ValueError("panels must be a non-empty dict {title: images}")
    if not panel_size > 0:
        raise ValueError(f"panel_size must be > 0, got {panel_size}")
    grids = [image_grid(x, nrow) for x in panels.values()]
    height = max(g.shape[0] / g.shape[1] for g in grids) * panel_size
    fig, axes = plt.subplots(1, len(panels), figsize=(panel_size * len(panels), height + 0.5), squeeze=False)
    for ax, (title, x) in zip(axes[0], panels.items(), strict=True):
        show_images(x, nrow, title=title, ax=ax)
    return fig
