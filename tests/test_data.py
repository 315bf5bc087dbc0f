import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from flowedu import data

CPU = torch.device("cpu")


def write_idx(path, array):
    codes = {np.uint8: 0x08, np.int32: 0x0C, np.float32: 0x0D}
    code = codes[array.dtype.type]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + body)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_read_idx_round_trip(tmp_path, suffix, dtype):
    array = (np.arange(2 * 3 * 4) * 7 % 251).reshape(2, 3, 4).astype(dtype)
    path = tmp_path / f"a{suffix}"
    write_idx(path, array)
    np.testing.assert_array_equal(data.read_idx(path), array)


def test_read_idx_rejects_other_files(tmp_path):
    path = tmp_path / "junk"
    path.write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(path)
    path.write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">i", 10) + b"abc")
    with pytest.raises(ValueError, match="header promises"):
        data.read_idx(path)


def test_digits_splits_are_fixed_and_disjoint():
    x_train, y_train = data.load_images("digits", "train", device=CPU)
    x_test, y_test = data.load_images("digits", "test", device=CPU)
    assert x_train.shape == (1500, 1, 8, 8) and x_test.shape == (297, 1, 8, 8)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert x_train.min() == 0 and x_train.max() == 1
    # 17 grey levels: the intensities are multiples of 1/16
    torch.testing.assert_close(x_train * 16, (x_train * 16).round())
    assert set(y_test.tolist()) == set(range(10))
    train_rows = {tuple(r) for r in x_train.flatten(1).tolist()}
    # the digits set has a few duplicate images; almost all test images must be unseen
    assert sum(tuple(r) in train_rows for r in x_test.flatten(1).tolist()) < 5
    again, _ = data.load_images("digits", "test", device=CPU)
    assert torch.equal(again, x_test)


def test_static_binarization_is_fixed_and_keeps_the_mean():
    x, _ = data.load_images("digits", "train", device=CPU)
    b1, _ = data.load_images("digits", "train", binarize="static", device=CPU)
    b2, _ = data.load_images("digits", "train", binarize="static", device=CPU)
    assert torch.equal(b1, b2)
    assert set(b1.unique().tolist()) == {0.0, 1.0}
    # E[b] = x: the mean agrees within a few standard errors of n Bernoulli draws
    se = (x * (1 - x)).sum().sqrt() / x.numel()
    assert abs(b1.mean() - x.mean()) < 5 * se
    dynamic, _ = data.load_images("digits", "train", binarize="dynamic", device=CPU)
    assert torch.equal(dynamic, x)


def test_fashion_mnist_from_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28), dtype=np.uint8)
    labels = np.array([0, 1, 2, 3, 9], dtype=np.uint8)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path)
    x, y = data.load_images("fashion-mnist", "test", device=CPU)
    assert x.shape == (5, 1, 28, 28)
    torch.testing.assert_close(x[:, 0] * 255, torch.from_numpy(images).float())
    assert y.tolist() == labels.tolist()


@pytest.mark.skipif(not data.DEBIAN_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_debian_package():
    x, y = data.load_images("fashion-mnist", "test", device=CPU)
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert torch.bincount(y).tolist() == [1000] * 10


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_offline_download_explains_the_remedy(tmp_path, monkeypatch, name):
    """The real torchvision path, on a machine without network (or without the files)."""
    monkeypatch.setenv("FLOWEDU_DATA", str(tmp_path))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")

    def refuse(*args, **kwargs):
        raise OSError("Name or service not known")

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", refuse)  # no network even where there is some
    with pytest.raises(data.DatasetUnavailableError) as info:
        data.load_images(name, "test", device=CPU)
    message = str(info.value)
    assert name in message and "no network" in message and str(tmp_path) in message
    assert "digits" in message


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "imagenet"}, "name must be one of digits, fashion-mnist, mnist, cifar10"),
        ({"name": "digits", "split": "valid"}, "split must be one of train, test"),
        ({"name": "digits", "binarize": "threshold"}, "binarize must be one of"),
    ],
)
def test_load_images_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_images(**kwargs)


def test_batches_cover_every_example_once():
    x = torch.arange(10.0)[:, None]
    y = torch.arange(10)
    seen = []
    for xb, yb in data.batches((x, y), 3, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(xb[:, 0].long(), yb)
        seen += yb.tolist()
    assert sorted(seen) == list(range(10)) and seen != list(range(10))
    sizes = [len(b) for b in data.batches(x, 3, shuffle=False)]
    assert sizes == [3, 3, 3, 1]
    assert [len(b) for b in data.batches(x, 3, drop_last=True)] == [3, 3, 3]
    assert torch.equal(torch.cat(list(data.batches(x, 4, shuffle=False))), x)


def test_batches_dynamic_binarization_draws_afresh():
    x = torch.full((1000, 4), 0.3)
    g = torch.Generator().manual_seed(0)
    first = next(data.batches(x, 1000, shuffle=False, generator=g, binarize=True))
    second = next(data.batches(x, 1000, shuffle=False, generator=g, binarize=True))
    assert set(first.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(first, second)
    assert abs(first.mean().item() - 0.3) < 0.03


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((torch.zeros(4, 2), 0), "batch_size must be a positive integer"),
        ((torch.zeros(4, 2), 2.5), "batch_size must be a positive integer"),
        (((torch.zeros(4), torch.zeros(3)), 2), "same first dimension"),
        (([1, 2, 3], 2), "x must be a tensor"),
    ],
)
def test_batches_reject_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        list(data.batches(*args))


def test_bernoulli_binarize_rejects_non_intensities():
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        data.bernoulli_binarize(torch.tensor([0.5, 1.5]))
    with pytest.raises(ValueError, match="floating-point"):
        data.bernoulli_binarize(torch.tensor([0, 1]))


def test_moons_are_standardised_by_their_population_moments():
    x = data.toy2d("moons", 200_000, seed=0, device=CPU).double()
    assert x.shape == (200_000, 2) and x.dtype == torch.float64
    torch.testing.assert_close(x.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.01, rtol=0)
    torch.testing.assert_close(x.std(0), torch.ones(2, dtype=torch.float64), atol=0.01, rtol=0)
    mean, std = data.moons_moments(0.0)
    np.testing.assert_allclose(std**2, [0.75, 9 / 16 - 1 / np.pi])


def test_toy2d_is_seeded_and_validates():
    assert torch.equal(data.toy2d("moons", 50, seed=3, device=CPU), data.toy2d("moons", 50, seed=3, device=CPU))
    assert not torch.equal(data.toy2d("moons", 50, seed=3, device=CPU), data.toy2d("moons", 50, seed=4, device=CPU))
    with pytest.raises(ValueError, match="name must be one of"):
        data.toy2d("spiral", 10)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        data.toy2d("moons", 0)
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        data.toy2d("moons", 10, noise=-0.1)


@pytest.fixture
def offline_data_root(tmp_path, monkeypatch):
    """A FLOWEDU_DATA folder holding MNIST and CIFAR-10 stand-ins in torchvision's on-disk layout."""
    import fixture_data

    fixture_data.write_all(tmp_path)
    monkeypatch.setenv("FLOWEDU_DATA", str(tmp_path))

    def refuse(*args, **kwargs):  # reading from disk must never try the network
        raise AssertionError("load_images tried to download a data set that is on disk")

    import urllib.request

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tmp_path


def test_mnist_is_read_from_torchvisions_raw_idx_files(offline_data_root):
    import fixture_data

    x, y = data.load_images("mnist", "train", device=CPU)
    assert x.shape == (fixture_data.MNIST_SIZES["train"], 1, 28, 28) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9 and y.max() == 9
    raw = data.read_idx(offline_data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte")
    x_test, _ = data.load_images("mnist", "test", binarize="static", device=CPU)
    assert x_test.shape == (len(raw), 1, 28, 28) and set(x_test.unique().tolist()) == {0.0, 1.0}


def test_cifar10_is_read_from_its_python_pickle_batches(offline_data_root):
    import fixture_data

    x, y = data.load_images("cifar10", "train", device=CPU)
    assert x.shape == (5 * fixture_data.CIFAR_PER_BATCH, 3, 32, 32) and y.shape == (len(x),)
    images, labels = data.read_cifar10_batch(offline_data_root / "cifar-10-batches-py" / "data_batch_1")
    assert images.shape == (fixture_data.CIFAR_PER_BATCH, 32, 32, 3)
    # channel-major rows: the first 1024 bytes are the red plane, row by row
    with (offline_data_root / "cifar-10-batches-py" / "data_batch_1").open("rb") as f:
        import pickle

        rows = pickle.load(f, encoding="latin1")["data"]
    assert np.array_equal(images[0, :, :, 0].ravel(), rows[0, :1024])
    torch.testing.assert_close(x[0, 1] * 255, torch.from_numpy(images[0, :, :, 1]).float())
    assert labels.tolist() == y[: len(labels)].tolist()
    x_test, _ = data.load_images("cifar10", "test", device=CPU)
    assert len(x_test) == fixture_data.CIFAR_TEST


def test_a_file_that_is_not_a_cifar_batch_is_rejected(tmp_path):
    import pickle

    path = tmp_path / "data_batch_1"
    with path.open("wb") as f:
        pickle.dump({"pixels": [1, 2, 3]}, f)
    with pytest.raises(ValueError, match="not a CIFAR batch"):
        data.read_cifar10_batch(path)


def test_the_unavailable_message_shows_no_home_folder(tmp_path, monkeypatch):
    """The book prints this message: it must not carry the build machine's user paths."""
    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path))
    monkeypatch.delenv("FLOWEDU_DATA", raising=False)
    error = data._unavailable("mnist", data.data_root() / "MNIST" / "raw", OSError(f"cannot write {tmp_path}/x"))
    assert str(tmp_path) not in str(error)
    assert "~/.cache/flowedu/MNIST/raw" in str(error) and "~/x" in str(error)
