"""Fréchet distance, Inception Score and the classifier feature network."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg

from flowedu.metrics import ClassifierFeatures, frechet_distance, frechet_distance_gaussians, inception_score


def _samples_with_moments(mean, cov, n, rng):
    """n samples whose sample mean and (unbiased) covariance are exactly ``mean`` and ``cov``."""
    z = rng.standard_normal((n, len(mean)))
    z -= z.mean(0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return z @ np.linalg.cholesky(cov).T + mean


def test_zero_for_identical_sets():
    x = np.random.default_rng(0).standard_normal((200, 8))
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(torch.as_tensor(x, dtype=torch.float32), x) == pytest.approx(0.0, abs=1e-4)


def test_closed_form_for_commuting_gaussians():
    rng = np.random.default_rng(1)
    mu_a, mu_b = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    var_a, var_b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = ((mu_a - mu_b) ** 2).sum() + ((np.sqrt(var_a) - np.sqrt(var_b)) ** 2).sum()  # 5 + 1 + 1 + 4 = 11
    assert expected == pytest.approx(11.0)
    a = _samples_with_moments(mu_a, np.diag(var_a), 500, rng)
    b = _samples_with_moments(mu_b, np.diag(var_b), 300, rng)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 6))
def test_matches_scipy_sqrtm_for_random_covariances(seed, d):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((d, d)), rng.standard_normal((d, d))
    cov_a, cov_b = a @ a.T + 0.1 * np.eye(d), b @ b.T + 0.1 * np.eye(d)
    mu_a, mu_b = rng.standard_normal(d), rng.standard_normal(d)
    reference = ((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance_gaussians(mu_a, cov_a, mu_b, cov_b) == pytest.approx(reference, rel=1e-7, abs=1e-9)


def test_singular_covariances_stay_finite_and_nonnegative():
    x = np.zeros((50, 4))
    x[:, 0] = np.random.default_rng(2).standard_normal(50)  # rank 1
    value = frechet_distance(x, x + 1e-3)
    assert np.isfinite(value) and value >= 0


def test_inception_score_bounds_and_extremes():
    n_classes = 10
    confident = np.eye(n_classes)[np.arange(1000) % n_classes]
    assert inception_score(confident, splits=10)[0] == pytest.approx(n_classes)
    uniform = np.full((100, n_classes), 1 / n_classes)
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    one_class = np.eye(n_classes)[np.zeros(100, dtype=int)]
    assert inception_score(one_class, splits=1)[0] == pytest.approx(1.0)
    random = np.random.default_rng(3).dirichlet(np.ones(n_classes), size=500)
    mean, std = inception_score(random, splits=5)
    assert 1.0 <= mean <= n_classes and std >= 0


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="feats_a"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="finite"):
        frechet_distance(np.full((3, 2), np.nan), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="probs"):
        inception_score(np.array([[0.5, 0.6]]))
    with pytest.raises(ValueError, match="splits"):
        inception_score(np.eye(3), splits=4)
    with pytest.raises(ValueError, match="image_shape"):
        ClassifierFeatures((2, 8, 8))


def test_classifier_learns_and_round_trips(tmp_path):
    from flowedu import data

    torch.manual_seed(0)
    x, y = data.load_images("digits", "train", device="cpu")
    x_test, y_test = data.load_images("digits", "test", device="cpu")
    clf = ClassifierFeatures(x.shape[1:], 10, feature_dim=32, width=8)
    history = clf.fit(x, y, epochs=4, progress=False)
    losses = history["loss"]
    assert len(losses) == 4 and losses[-1] < 0.5 * losses[0] and history["steps"] == 4 * -(-len(x) // 64)
    assert clf.accuracy(x_test, y_test) > 0.8
    path = tmp_path / "clf.pt"
    clf.save(path)
    loaded = ClassifierFeatures.load(path)
    torch.testing.assert_close(loaded.features(x_test[:20]), clf.features(x_test[:20]))
    assert clf.features(x_test[:5]).shape == (5, 32) and clf.probs(x_test[:5]).shape == (5, 10)


def test_frechet_distance_is_a_squared_w2_not_a_metric():
    # 1-D Gaussians: FD = (μa − μb)² + (σa − σb)² = W2². FD breaks the triangle inequality; its root does not.
    def fd(mu_a, s_a, mu_b, s_b):
        return frechet_distance_gaussians(np.array([mu_a]), np.array([[s_a**2]]),
                                          np.array([mu_b]), np.array([[s_b**2]]))

    assert fd(0.0, 1.0, 3.0, 2.0) == pytest.approx(9.0 + 1.0)
    a, b, c = (0.0, 0.1), (1.0, 0.1), (2.0, 0.1)
    assert fd(*a, *c) > fd(*a, *b) + fd(*b, *c)  # 4 > 1 + 1
    assert np.sqrt(fd(*a, *c)) <= np.sqrt(fd(*a, *b)) + np.sqrt(fd(*b, *c)) + 1e-12


class _FakeFID:
    """Stands in for torchmetrics' metric: records what it was given."""

    def __init__(self):
        self.real, self.fake, self.resets = [], [], 0

    def update(self, x, real):
        (self.real if real else self.fake).append(x.clone())

    def reset(self):  # reset_real_features=False: only the generated side
        self.fake, self.resets = [], self.resets + 1

    def compute(self):
        return torch.tensor(float(sum(len(x) for x in self.fake)))


def test_inception_fid_batches_grey_images_into_three_channels_and_keeps_the_real_side():
    from flowedu.metrics import InceptionFID

    real, fake = torch.rand(7, 1, 8, 8), torch.rand(5, 1, 8, 8) * 2
    fid = InceptionFID(_FakeFID(), real, batch_size=3)
    assert [len(x) for x in fid.metric.real] == [3, 3, 1] and fid.metric.real[0].shape[1] == 3
    assert fid(fake) == 5.0 and fid(fake[:2]) == 2.0 and fid.metric.resets == 2
    assert len(fid.metric.real) == 3 and all(x.max() <= 1 for x in fid.metric.fake)
    with pytest.raises(ValueError, match="x_fake"):
        fid(torch.rand(5, 2, 8, 8))


def test_load_inception_fid_says_what_is_missing():
    import importlib.util

    from flowedu.metrics import load_inception_fid

    if importlib.util.find_spec("torchmetrics") is not None:
        pytest.skip("torchmetrics is installed here")
    fid, reason = load_inception_fid(torch.rand(4, 1, 8, 8))
    assert fid is None and "torchmetrics" in reason and "pip install" in reason
