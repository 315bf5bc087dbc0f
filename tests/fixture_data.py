"""Small stand-ins for MNIST and CIFAR-10 in their real on-disk formats, for offline tests.

MNIST and CIFAR-10 are downloaded by torchvision on machines with internet (Colab). Here there is no
network, so the full-mode code path is tested on files written in exactly the layout torchvision
leaves behind, and read by flowedu's real loading code (``flowedu.data.load_images``):

* ``<root>/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`` -- IDX files (big-endian header,
  uint8 payload), the images being scikit-learn's 8x8 digits scaled to 20x20 and centred in 28x28
  with a random shift of up to 2 pixels, as MNIST centres its digits;
* ``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` -- pickled dicts with
  ``data`` ([n, 3072] uint8, channel-major rows) and ``labels``, as CIFAR-10's python version.

Usage: ``python tests/fixture_data.py DIR`` writes both under DIR (then ``FLOWEDU_DATA=DIR``).
"""

from __future__ import annotations

import pickle
import struct
import sys
from pathlib import Path

import numpy as np

MNIST_SIZES = {"train": 12_000, "t10k": 2_000}
CIFAR_PER_BATCH = 400
CIFAR_TEST = 500


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format (magic 0x0000 08 <ndim>, big-endian int32 shape)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.tobytes())


def _digit_images(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = rng.integers(0, len(digits.images), size=n)
    small = torch.from_numpy(digits.images[index] / 16.0).float()[:, None]
    big = torch.nn.functional.interpolate(small, size=(20, 20), mode="bilinear", align_corners=False)[:, 0]
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    shifts = rng.integers(-2, 3, size=(n, 2))
    for i in range(n):
        r, c = 4 + shifts[i, 0], 4 + shifts[i, 1]
        images[i, r : r + 20, c : c + 20] = np.clip(big[i].numpy() * 255, 0, 255).astype(np.uint8)
    return images, digits.target[index].astype(np.uint8)


def write_mnist(root: Path, seed: int = 0) -> Path:
    """MNIST/raw under ``root``, as torchvision lays it out. Returns the raw folder."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for prefix, n in MNIST_SIZES.items():
        images, labels = _digit_images(n, rng)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return raw


def _cifar_batch(n: int, rng: np.random.Generator, label: str) -> dict:
    labels = rng.integers(0, 10, size=n)
    # One colour per class plus texture, so a classifier has something to learn.
    colours = np.linspace(30, 225, 30).reshape(10, 3)
    images = colours[labels][:, :, None] + rng.normal(0, 40, size=(n, 3, 1024))
    data = np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)
    return {"batch_label": label, "labels": labels.tolist(), "data": data,
            "filenames": [f"fixture_{label}_{i}.png" for i in range(n)]}


def write_cifar10(root: Path, seed: int = 0) -> Path:
    """cifar-10-batches-py under ``root``, as torchvision leaves it. Returns that folder."""
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(1, 6):
        with (folder / f"data_batch_{i}").open("wb") as f:
            pickle.dump(_cifar_batch(CIFAR_PER_BATCH, rng, f"training batch {i} of 5"), f, protocol=2)
    with (folder / "test_batch").open("wb") as f:
        pickle.dump(_cifar_batch(CIFAR_TEST, rng, "testing batch 1 of 1"), f, protocol=2)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with (folder / "batches.meta").open("wb") as f:
        pickle.dump({"label_names": names, "num_cases_per_batch": CIFAR_PER_BATCH, "num_vis": 3072}, f, protocol=2)
    return folder


def write_all(root: Path) -> None:
    write_mnist(root)
    write_cifar10(root)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/fixture_data.py DIR")
    write_all(Path(sys.argv[1]))
    print(f"MNIST and CIFAR-10 stand-ins written under {sys.argv[1]}")
