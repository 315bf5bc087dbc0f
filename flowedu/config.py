"""Run modes, device choice and seeding, shared by every notebook.

``FLOWEDU_MODE`` selects the sizes a notebook trains at:

* ``quick`` -- the whole book runs on a laptop CPU in minutes on data that needs no network
  (the default when no CUDA GPU is present);
* ``full`` -- the sizes that reach the published numbers (the default with CUDA, e.g. Colab).
"""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch

MODES = ("quick", "full")
MODE_ENV = "FLOWEDU_MODE"
DATASET_ENV = "FLOWEDU_DATASET"


def mode() -> str:
    """The run mode: ``FLOWEDU_MODE`` if set, else ``"full"`` with CUDA and ``"quick"`` without.

    Raises:
        ValueError: if ``FLOWEDU_MODE`` is set to anything but ``quick`` or ``full``.
    """
    value = os.environ.get(MODE_ENV, "").strip().lower()
    if not value:
        return "full" if torch.cuda.is_available() else "quick"
    if value not in MODES:
        raise ValueError(f"{MODE_ENV} must be one of {', '.join(MODES)}, got {value!r}")
    return value


def is_quick() -> bool:
    """True in quick mode."""
    return mode() == "quick"


def by_mode(*, quick, full):
    """Return ``quick`` or ``full`` according to :func:`mode`.

    Example: ``n_epochs = by_mode(quick=5, full=20)``.
    """
    return quick if is_quick() else full


def device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dataset() -> str:
    """The default image data set: ``FLOWEDU_DATASET`` if set, else ``mnist`` (full) or ``digits`` (quick).

    Raises:
        ValueError: if ``FLOWEDU_DATASET`` names an unknown data set.
    """
    from flowedu.data import IMAGE_DATASETS  # local import: data imports config

    value = os.environ.get(DATASET_ENV, "").strip().lower()
    if not value:
        return by_mode(quick="digits", full="mnist")
    if value not in IMAGE_DATASETS:
        raise ValueError(f"{DATASET_ENV} must be one of {', '.join(IMAGE_DATASETS)}, got {value!r}")
    return value


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA) and return a CPU ``torch.Generator`` seeded alike.

    Args:
        seed: a non-negative integer below 2**63.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be in [0, 2**63), got {seed}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 - seeds the legacy global RNG that libraries use
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def setup(seed: int = 0, dataset: str | None = None) -> dict:
    """Seed everything and print the mode, device, data set and versions (every notebook's first cell).

    Args:
        seed: passed to :func:`seed_everything`.
        dataset: the data set this notebook uses; ``None`` means :func:`default_dataset`,
            ``"none"`` means the notebook uses no image data.

    Returns:
        A dict with keys ``mode``, ``device``, ``dataset``, ``generator``.
    """
    import flowedu

    seed_everything(seed)
    info = {
        "mode": mode(),
        "device": device(),
        "dataset": default_dataset() if dataset is None else dataset,
    }
    print(
        f"flowedu {flowedu.__version__} | mode: {info['mode']} | device: {info['device']} | "
        f"dataset: {info['dataset']}\n"
        f"torch {torch.__version__} | numpy {np.__version__} | python {platform.python_version()}"
    )
    info["generator"] = torch.Generator().manual_seed(seed)
    return info
