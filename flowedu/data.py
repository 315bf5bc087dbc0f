"""Data for the book: image data sets, on-device mini-batches and 2-D toy data.

Image data sets (``load_images``):

* ``digits`` -- scikit-learn's bundled 8x8 digits (17 grey levels), always offline;
* ``fashion-mnist`` -- Debian's ``dataset-fashion-mnist`` files when present, else torchvision;
* ``mnist``, ``cifar10`` -- torchvision downloads into a cache folder (``FLOWEDU_DATA`` overrides it).

Without network and without the files, loading raises :class:`DatasetUnavailableError`, whose message
names the data set, says that there is no network, and gives the remedy.
"""

from __future__ import annotations

import gzip
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from flowedu import config

IMAGE_DATASETS = config.IMAGE_DATASETS
SPLITS = ("train", "test")
BINARIZE = (None, "static", "dynamic")
DATA_ENV = "FLOWEDU_DATA"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# Seeds of the static binarization: one fixed Bernoulli draw per split, the same on every machine.
STATIC_BINARIZATION_SEED = {"train": 0, "test": 1}
# The 8x8 digits have no official split: a fixed permutation (seed 0), the last 297 images are the test set.
DIGITS_TEST_SIZE = 297

_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DatasetUnavailableError(RuntimeError):
    """A data set is neither on disk nor downloadable (for example on a machine without network)."""


def data_root() -> Path:
    """The cache folder for downloaded data: ``$FLOWEDU_DATA`` or ``~/.cache/flowedu``."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "flowedu"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Args:
        path: the file; a ``.gz`` suffix means gzip.

    Returns:
        The array with the shape and dtype stored in the header.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"path {str(path)!r} is not an IDX file (bad magic number)")
    ndim = raw[3]
    shape = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    data = np.frombuffer(raw, dtype=dtype, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"path {str(path)!r}: header promises shape {shape}, file holds {data.size} values")
    return data.reshape(shape).astype(dtype.newbyteorder("="))


def _find_idx(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _load_idx_pair(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    paths = [_find_idx(folder, stem) for stem in _IDX_FILES[split]]
    if None in paths:
        return None
    return read_idx(paths[0]), read_idx(paths[1])


def _shown(path: Path) -> str:
    """``path`` as a reader should see it: the home folder written ``~`` (no machine's user paths in the book)."""
    home = Path.home()
    return "~/" + str(path.relative_to(home)) if path.is_relative_to(home) else str(path)


def _unavailable(name: str, where: Path, error: Exception) -> DatasetUnavailableError:
    reason = str(error).splitlines()[0].replace(str(Path.home()), "~") if str(error) else ""
    return DatasetUnavailableError(
        f"The {name} data set is not on this machine and could not be downloaded "
        f"(no network? {type(error).__name__}: {reason}). "
        f"Remedy: place the data set's files in {_shown(where)} (or set {DATA_ENV} to a folder that holds them), "
        f"run where the internet is reachable (e.g. Colab), or use the offline data set 'digits' "
        f"(FLOWEDU_DATASET=digits, the default in FLOWEDU_MODE=quick)."
    )


# Where torchvision keeps each download under data_root(): MNIST's IDX files in <Class>/raw, CIFAR-10's
# python pickle batches in cifar-10-batches-py. flowedu reads these on-disk formats itself (so a folder
# copied from another machine works offline) and asks torchvision only to download them.
_TORCHVISION_CLASS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}


def read_cifar10_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read one batch of CIFAR-10's python version (a pickled dict with ``data`` and ``labels``).

    Args:
        path: e.g. ``.../cifar-10-batches-py/data_batch_1``.

    Returns:
        ``images`` uint8 ``[n, 32, 32, 3]`` (height, width, channel) and ``labels`` int64 ``[n]``.
    """
    import pickle

    path = Path(path)
    with path.open("rb") as f:
        batch = pickle.load(f, encoding="latin1")  # the format is a pickle; torchvision reads it the same way
    if not isinstance(batch, dict) or "data" not in batch or not ({"labels", "fine_labels"} & batch.keys()):
        raise ValueError(f"path {str(path)!r} is not a CIFAR batch (no 'data' and 'labels')")
    images = np.asarray(batch["data"], dtype=np.uint8)
    if images.ndim != 2 or images.shape[1] != 3 * 32 * 32:
        raise ValueError(f"path {str(path)!r}: data must be [n, 3072] bytes, got shape {images.shape}")
    labels = np.asarray(batch.get("labels", batch.get("fine_labels")), dtype=np.int64)
    if len(labels) != len(images):
        raise ValueError(f"path {str(path)!r}: {len(images)} images but {len(labels)} labels")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _on_disk_arrays(name: str, split: str) -> tuple[np.ndarray, np.ndarray] | None:
    """The data set's files as torchvision lays them out under :func:`data_root`, or None if absent."""
    root = data_root()
    if name == "cifar10":
        paths = [root / CIFAR10_FOLDER / stem for stem in CIFAR10_BATCHES[split]]
        if not all(p.is_file() for p in paths):
            return None
        parts = [read_cifar10_batch(p) for p in paths]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    return _load_idx_pair(root / _TORCHVISION_CLASS[name] / "raw", split)


def _torchvision_arrays(name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[n, H, W]`` or ``[n, H, W, 3]`` and labels: from disk, else downloaded by torchvision."""
    found = _on_disk_arrays(name, split)
    if found is not None:
        return found
    try:
        import torchvision
    except ImportError as err:  # pragma: no cover - torchvision is in requirements.txt
        raise DatasetUnavailableError(
            f"The {name} data set needs torchvision to be downloaded: pip install torchvision (or use 'digits')."
        ) from err
    cls = getattr(torchvision.datasets, _TORCHVISION_CLASS[name])
    root = data_root()
    try:
        cls(str(root), train=split == "train", download=True)
    except Exception as err:  # urllib errors, RuntimeError from torchvision, OSError
        where = root / (CIFAR10_FOLDER if name == "cifar10" else f"{cls.__name__}/raw")
        raise _unavailable(name, where, err) from err
    found = _on_disk_arrays(name, split)
    if found is None:  # pragma: no cover - torchvision changed its layout
        raise DatasetUnavailableError(f"torchvision downloaded {name} into {root}, but not in the expected layout")
    return found


def _digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.images))
    cut = len(order) - DIGITS_TEST_SIZE
    index = order[:cut] if split == "train" else order[cut:]
    return digits.images[index], digits.target[index]


def _raw_images(name: str, split: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Images as an array ``[n, C, H, W]`` of grey levels, labels ``[n]``, and the largest level."""
    if name == "digits":
        images, labels = _digits_arrays(split)
        return images[:, None], labels, 16.0
    if name == "fashion-mnist":
        pair = _load_idx_pair(DEBIAN_FASHION_MNIST, split)
        images, labels = pair if pair is not None else _torchvision_arrays(name, split)
        return images[:, None], labels, 255.0
    images, labels = _torchvision_arrays(name, split)
    if name == "cifar10":
        return images.transpose(0, 3, 1, 2), labels, 255.0
    return images[:, None], labels, 255.0


def bernoulli_binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw binary pixels ``b ~ Bernoulli(x)`` from intensities ``x`` in [0, 1].

    Static binarization draws once (with a fixed seed); dynamic binarization draws afresh every
    time an image is used, e.g. ``batches(x, 64, binarize=True)``.

    Args:
        x: intensities ``[n, ...]`` in [0, 1].
        generator: a CPU ``torch.Generator``; ``None`` uses torch's global generator.

    Returns:
        A float tensor of zeros and ones, same shape, dtype and device as ``x``.
    """
    if not torch.is_floating_point(x):
        raise ValueError(f"x must be a floating-point tensor of intensities, got dtype {x.dtype}")
    if x.numel() and (x.min() < 0 or x.max() > 1 or torch.isnan(x).any()):
        raise ValueError("x must hold intensities in [0, 1]")
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (u < x).to(x.dtype)


def load_images(
    name: str | None = None,
    split: str = "train",
    binarize: str | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Load an image data set as tensors on ``device``.

    Args:
        name: one of ``digits``, ``fashion-mnist``, ``mnist``, ``cifar10``; ``None`` means
            :func:`flowedu.config.default_dataset` (``digits`` in quick mode, ``mnist`` in full mode).
        split: ``"train"`` or ``"test"``.
        binarize: ``None`` for intensities in [0, 1]; ``"static"`` for one fixed Bernoulli draw
            (seed ``STATIC_BINARIZATION_SEED[split]``); ``"dynamic"`` returns the intensities too,
            to be binarized afresh at every use with ``batches(..., binarize=True)``.
        device: where the tensors live; ``None`` means :func:`flowedu.config.device`.

    Returns:
        ``x``: float32 ``[n, C, H, W]`` in [0, 1] (``[n, 1, 8, 8]`` for digits, ``[n, 1, 28, 28]``
        for (fashion-)mnist, ``[n, 3, 32, 32]`` for cifar10); ``labels``: int64 ``[n]``.

    Raises:
        ValueError: for an unknown ``name``, ``split`` or ``binarize``.
        DatasetUnavailableError: when the data set is neither on disk nor downloadable.
    """
    name = config.default_dataset() if name is None else name
    if name not in IMAGE_DATASETS:
        raise ValueError(f"name must be one of {', '.join(IMAGE_DATASETS)}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of None, 'static', 'dynamic', got {binarize!r}")
    device = config.device() if device is None else torch.device(device)

    images, labels, top = _raw_images(name, split)
    x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / np.float32(top))
    if binarize == "static":
        generator = torch.Generator().manual_seed(STATIC_BINARIZATION_SEED[split])
        x = bernoulli_binarize(x, generator)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    return x.to(device), y.to(device)


def batches(
    x: torch.Tensor | tuple[torch.Tensor, ...],
    batch_size: int,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    binarize: bool = False,
) -> Iterator:
    """Iterate over mini-batches of on-device tensors by indexing (no DataLoader, no per-sample work).

    Args:
        x: a tensor ``[n, ...]``, or a tuple of tensors sharing the first dimension (e.g. images
            and labels); batches come back in the same form.
        batch_size: a positive integer.
        shuffle: draw a fresh random order (from ``generator``) for this pass.
        generator: a CPU ``torch.Generator`` for the order and for ``binarize``.
        drop_last: skip a final batch smaller than ``batch_size``.
        binarize: draw fresh binary pixels for the first tensor of every batch (dynamic
            binarization, see :func:`bernoulli_binarize`).

    Yields:
        ``x[idx]`` (or a tuple of them) with ``len(idx) <= batch_size``.
    """
    tensors = x if isinstance(x, tuple) else (x,)
    if not tensors or not all(isinstance(t, torch.Tensor) for t in tensors):
        raise ValueError("x must be a tensor or a non-empty tuple of tensors")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"x: all tensors must have the same first dimension, got {[len(t) for t in tensors]}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = tensors[0].device
    order = torch.randperm(n, generator=generator).to(device) if shuffle else None
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        if order is None:
            batch = [t[start : start + batch_size] for t in tensors]
        else:
            idx = order[start : start + batch_size]
            batch = [t[idx] for t in tensors]
        if binarize:
            batch[0] = bernoulli_binarize(batch[0], generator)
        yield batch[0] if not isinstance(x, tuple) else tuple(batch)


# ---------------------------------------------------------------------------------------------------
# 2-D toy data


def _moons_raw(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    from sklearn.datasets import make_moons

    points, _ = make_moons(n, noise=noise, random_state=int(rng.integers(2**31 - 1)))
    return points


def moons_moments(noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Population mean and standard deviation of scikit-learn's two moons with Gaussian ``noise``.

    The curves are (cos t, sin t) and (1 - cos t, 1/2 - sin t), t ~ U[0, pi], each with probability 1/2:
    mean (1/2, 1/4); variances 3/4 + noise^2 and 9/16 - 1/pi + noise^2.
    """
    mean = np.array([0.5, 0.25])
    var = np.array([0.75, 9 / 16 - 1 / np.pi]) + noise**2
    return mean, np.sqrt(var)


def _moons(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    mean, std = moons_moments(noise)
    return (_moons_raw(n, noise, rng) - mean) / std


def _arcs(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Two concentric upper half-rings, radii 1 and 2 (equally likely), shifted down by 0.8."""
    radius = rng.choice([1.0, 2.0], size=n)
    angle = rng.uniform(0.0, np.pi, size=n)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle) - 0.8], axis=1)
    return points + noise * rng.standard_normal((n, 2))


def _sine(n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """One period of a sine wave: z1 ~ U[-3, 3], z2 = sin(z1 * pi / 3) * 1.5."""
    z1 = rng.uniform(-3.0, 3.0, size=n)
    points = np.stack([z1, 1.5 * np.sin(z1 * np.pi / 3)], axis=1)
    return points + noise * rng.standard_normal((n, 2))


# name -> (sampler(n, noise, rng) -> [n, 2] array, default noise). Chapters register more sets here.
TOY2D: dict[str, tuple[Callable[[int, float, np.random.Generator], np.ndarray], float]] = {
    "moons": (_moons, 0.1),
    "arcs": (_arcs, 0.1),  # flows chapter
    "sine": (_sine, 0.1),  # flows chapter
}


def toy2d(
    name: str,
    n: int,
    noise: float | None = None,
    seed: int = 0,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Sample a 2-D toy data set.

    ``moons``: scikit-learn's ``make_moons`` (noise 0.1 by default, as in the Radboud flow
    assignment), each coordinate standardised with the population moments of
    :func:`moons_moments`, so that the distribution (and its entropy) does not depend on ``n``.
    ``arcs``: two concentric upper half-rings (radii 1 and 2) with Gaussian noise 0.1. ``sine``: one
    period of ``1.5 sin(pi z1 / 3)`` for ``z1 ~ U[-3, 3]``, noise 0.1 (both from the flows chapter).

    Args:
        name: a key of ``TOY2D``.
        n: number of points, a positive integer.
        noise: standard deviation of the Gaussian noise (>= 0); ``None`` for the set's default.
        seed: seed of this draw.
        device: where the tensor lives; ``None`` means :func:`flowedu.config.device`.

    Returns:
        float32 ``[n, 2]``.
    """
    if name not in TOY2D:
        raise ValueError(f"name must be one of {', '.join(TOY2D)}, got {name!r}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    sampler, default_noise = TOY2D[name]
    noise = default_noise if noise is None else float(noise)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise}")
    points = sampler(n, noise, np.random.default_rng(seed))
    device = config.device() if device is None else torch.device(device)
    return torch.as_tensor(points, dtype=torch.float32).to(device)
