"""Image-generation metrics (``book/gan.md``): Fréchet distance of features and the Inception Score, with a
small classifier as the feature network when Inception is not available.

* Fréchet distance (Heusel et al. 2017, arXiv:1706.08500): the *squared* 2-Wasserstein distance
  between the Gaussians fitted to two sets of features,
  ``FD = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2}) = W_2(N(μ_a, Σ_a), N(μ_b, Σ_b))²`` (so it is
  not itself a metric: its square root is). With Inception-v3 pool features it is *the* FID; with
  another network it is a different number on a different scale.
* Inception Score (Salimans et al. 2016, arXiv:1606.03498): ``IS = exp(E_x KL(p(y|x) ‖ p(y)))``, in
  ``[1, n_classes]``.
* :func:`load_inception_fid` gives torchmetrics' Inception FID where it can run (torchmetrics with
  torch-fidelity installed, and the Inception weights downloadable), and otherwise the reason why not.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from flowedu.loops import History, LossLog, seeded_generator
from flowedu.validate import integer

__all__ = [
    "frechet_distance",
    "frechet_distance_gaussians",
    "inception_score",
    "ClassifierFeatures",
    "InceptionFID",
    "load_inception_fid",
]

INCEPTION_INSTALL = "pip install 'torchmetrics[image]'"  # brings torch-fidelity, which holds the Inception network


def _as_float64(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    x = np.asarray(x, dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite (it has NaN or infinite entries)")
    return x


def _trace_sqrt_product(cov_a: np.ndarray, cov_b: np.ndarray) -> float:
    """``Tr((Σ_a Σ_b)^{1/2})`` through ``Σ_a^{1/2} Σ_b Σ_a^{1/2}``.

    That matrix is symmetric positive semi-definite and similar to
    ``Σ_a Σ_b`` (it has the same eigenvalues).
    """
    w, v = np.linalg.eigh(cov_a)
    # Σ_a^{1/2}, with negative round-off clipped to 0
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    middle = root_a @ cov_b @ root_a  # Σ_a^{1/2} Σ_b Σ_a^{1/2}
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())  # Σ_i √λ_i


def frechet_distance_gaussians(mu_a, cov_a, mu_b, cov_b) -> float:
    """``‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})`` in float64.

    The matrix square root is taken through the symmetric positive semi-definite
    ``Σ_a^{1/2} Σ_b Σ_a^{1/2}``, whose eigenvalues are those of ``Σ_a Σ_b``; negative rounding
    errors are clipped to 0. (``scipy.linalg.sqrtm(Σ_a Σ_b)`` of a non-symmetric product can return
    a complex result with spurious imaginary parts.)

    Args:
        mu_a, mu_b: means ``[d]``; cov_a, cov_b: symmetric PSD covariances ``[d, d]``.

    Returns:
        The squared 2-Wasserstein distance between ``N(μ_a, Σ_a)`` and ``N(μ_b, Σ_b)`` (>= 0).
    """
    mu_a, mu_b = _as_float64(mu_a, "mu_a"), _as_float64(mu_b, "mu_b")
    cov_a, cov_b = _as_float64(cov_a, "cov_a"), _as_float64(cov_b, "cov_b")
    d = mu_a.shape[0] if mu_a.ndim == 1 else -1
    if mu_a.ndim != 1 or mu_b.shape != (d,) or cov_a.shape != (d, d) or cov_b.shape != (d, d):
        raise ValueError(
            f"mu_a, mu_b must be [d] and cov_a, cov_b [d, d], "
            f"got {mu_a.shape}, {mu_b.shape}, {cov_a.shape}, {cov_b.shape}"
        )
    for name, cov in (("cov_a", cov_a), ("cov_b", cov_b)):
        if not np.allclose(cov, cov.T, rtol=1e-8, atol=1e-10 * max(1.0, np.abs(cov).max())):
            raise ValueError(f"{name} must be symmetric")
    # [frechet] (book/gan.md shows the lines from here on)
    # Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^{1/2})
    trace_term = np.trace(cov_a) + np.trace(cov_b) - 2 * _trace_sqrt_product(cov_a, cov_b)
    value = float(((mu_a - mu_b) ** 2).sum() + trace_term)  # + ‖μ_a − μ_b‖²
    return max(value, 0.0)  # clip a negative rounding error


def frechet_distance(feats_a, feats_b) -> float:
    """The Fréchet distance (a squared W_2) between two sets of features (FID when the features are Inception's).

    Means and unbiased covariances are computed in float64.

    Args:
        feats_a: ``[n_a, d]``; feats_b: ``[n_b, d]`` (tensors or arrays), each with at least 2 rows.

    Returns:
        A float >= 0; 0 for identical sets.
    """
    a, b = _as_float64(feats_a, "feats_a"), _as_float64(feats_b, "feats_b")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"feats_a and feats_b must be [n, d] with the same d, got {a.shape} and {b.shape}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"feats_a and feats_b need at least 2 rows each, got {len(a)} and {len(b)}")
    return frechet_distance_gaussians(a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], -1),
                                      b.mean(0), np.cov(b, rowvar=False).reshape(b.shape[1], -1))


def inception_score(probs, splits: int = 10) -> tuple[float, float]:
    """Inception Score ``exp(E_x KL(p(y|x) ‖ p(y)))`` with ``p(y)`` the mean prediction of each split.

    Args:
        probs: class probabilities ``[n, n_classes]`` (rows >= 0 summing to 1).
        splits: number of equal splits, 1 <= splits <= n (Salimans et al. use 10).

    Returns:
        ``(mean, std)`` over the splits; each split's score lies in ``[1, n_classes]``.
    """
    p = _as_float64(probs, "probs")
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"probs must be [n, n_classes], got shape {p.shape}")
    if (p < 0).any() or not np.allclose(p.sum(1), 1.0, atol=1e-4):
        raise ValueError("probs must have non-negative rows that sum to 1")
    splits = integer(splits, "splits", 1, len(p))
    scores = []
    for part in np.array_split(p, int(splits)):
        marginal = part.mean(0, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(part > 0, part * (np.log(part) - np.log(marginal)), 0.0).sum(1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


class _SmallCNN(nn.Module):
    def __init__(self, image_shape, n_classes, feature_dim, width):
        super().__init__()
        c = image_shape[0]
        self.body = nn.Sequential(
            nn.Conv2d(c, width, 3, padding=1), nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(8 * width, feature_dim), nn.ReLU(),
        )
        self.head = nn.Linear(feature_dim, n_classes)


class ClassifierFeatures:
    """A small CNN classifier as the feature network of a "Fréchet classifier distance" and IS.

    Inception-v3 weights need a download; on the offline data of quick mode we train this network on
    the same data instead. ``features(x)`` are its penultimate activations ``[n, feature_dim]``,
    ``probs(x)`` its class probabilities ``[n, n_classes]``. Numbers computed with it are **not**
    Inception FID/IS and are not comparable with published ones.

    Args:
        image_shape: (C, H, W) of the inputs (intensities in [0, 1]).
        n_classes: number of classes (>= 2).
        feature_dim: width of the feature layer.
        width: channels of the first convolution.
        device: where the network lives.
    """

    def __init__(self, image_shape, n_classes: int = 10, feature_dim: int = 64, width: int = 16, device=None):
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape[1:]) < 4:
            raise ValueError(f"image_shape must be (C, H, W) with C in (1, 3) and H, W >= 4, got {tuple(image_shape)}")
        for name, value, low in (("n_classes", n_classes, 2), ("feature_dim", feature_dim, 1), ("width", width, 1)):
            integer(value, name, low)
        self.image_shape, self.n_classes = shape, n_classes
        self.config = {"image_shape": shape, "n_classes": n_classes, "feature_dim": feature_dim, "width": width}
        self.net = _SmallCNN(shape, n_classes, feature_dim, width).to(device or "cpu")
        self.device = next(self.net.parameters()).device

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(f"x must have shape [n, {', '.join(map(str, self.image_shape))}], got {tuple(x.shape)}")
        return x.to(self.device, torch.float32)

    def fit(self, x: torch.Tensor, y: torch.Tensor, epochs: int | None = None, batch_size: int = 64,
            lr: float = 3e-3, generator: torch.Generator | None = None, progress: bool = True, *,
            n_epochs: int | None = None, seed: int | None = None) -> History:
        """Train with Adam and cross-entropy for ``epochs`` passes over ``(x, y)`` (the loop convention of
        :mod:`flowedu.loops`).

        Args:
            x, y: images ``[n, *image_shape]`` and labels ``[n]``.
            epochs: passes over the data (default 20).
            batch_size, lr: mini-batch size and Adam's learning rate.
            generator: CPU generator for the batch order (default: a fresh one seeded with 0).
            progress: show a tqdm bar.
            n_epochs, seed: older spellings of ``epochs`` and ``generator=torch.Generator().manual_seed(seed)``.

        Returns:
            :class:`~flowedu.loops.History` ``{"loss": [mean training loss of each epoch], "steps", "seconds"}``.

        Raises:
            NonFiniteLossError: at the first non-finite loss, naming its step.
        """
        from flowedu import data

        if epochs is not None and n_epochs is not None:
            raise ValueError("give epochs or n_epochs, not both")
        epochs = integer(epochs if epochs is not None else (n_epochs if n_epochs is not None else 20), "epochs", 1)
        x = self._check_x(x)
        y = y.to(self.device)
        if len(y) != len(x) or y.min() < 0 or y.max() >= self.n_classes:
            raise ValueError(f"y must hold {len(x)} labels in [0, {self.n_classes})")
        batch_size = integer(batch_size, "batch_size", 1)  # larger than the data: one batch per epoch
        rng, start = seeded_generator(generator, seed), time.perf_counter()
        optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        per_epoch = -(-len(x) // batch_size)
        log, step = LossLog(("loss",), epochs * per_epoch, self.device), 0
        self.net.train()
        losses = []
        for _ in tqdm(range(epochs), desc="classifier", disable=not progress, leave=False):
            total = torch.zeros((), device=self.device)  # summed on the device, read once per epoch
            for xb, yb in data.batches((x, y), batch_size, generator=rng):
                loss = F.cross_entropy(self.net.head(self.net.body(xb)), yb)
                log.record(step, loss=loss)
                step += 1
                log.maybe_check(step, "classifier")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(xb)
            losses.append(total.item() / len(x))
        log.check(step, "classifier")
        self.net.eval()
        return History(loss=losses, steps=step, seconds=time.perf_counter() - start)

    @torch.no_grad()
    def features(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Penultimate activations ``[n, feature_dim]`` (float32, on the network's device)."""
        x = self._check_x(x)
        self.net.eval()
        return torch.cat([self.net.body(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])

    @torch.no_grad()
    def probs(self, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
        """Class probabilities ``[n, n_classes]``."""
        return torch.softmax(self.net.head(self.features(x, batch_size)), dim=1)

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Fraction of ``x`` classified as ``y``."""
        return (self.probs(x).argmax(1) == y.to(self.device)).double().mean().item()

    def save(self, path: str | os.PathLike) -> None:
        """Save the configuration and the weights (a state_dict) with ``torch.save``."""
        torch.save({"config": self.config, "state_dict": self.net.state_dict()}, path)

    @classmethod
    def load(cls, path: str | os.PathLike, device=None) -> ClassifierFeatures:
        """Load a network written by :meth:`save` (``torch.load(..., weights_only=True)``)."""
        saved = torch.load(path, map_location=device or "cpu", weights_only=True)
        model = cls(device=device, **{**saved["config"], "image_shape": tuple(saved["config"]["image_shape"])})
        model.net.load_state_dict(saved["state_dict"])
        model.net.eval()
        return model


class InceptionFID:
    """The Inception FID of generated images against one fixed set of real images.

    Wraps torchmetrics' ``FrechetInceptionDistance`` built with ``reset_real_features=False`` and
    ``normalize=True``: the real images' Inception statistics are computed once, here; each call
    resets only the generated side. Grey images (C = 1) are repeated to three channels; the metric
    resizes to 299×299 itself. Build it with :func:`load_inception_fid`.

    Args:
        metric: the torchmetrics metric (anything with ``update(x, real=...)``, ``reset()``, ``compute()``).
        x_real: real images ``[n, C, H, W]`` in [0, 1], n >= 2, C in (1, 3).
        batch_size: images per ``update``.
    """

    def __init__(self, metric, x_real: torch.Tensor, batch_size: int = 500):
        batch_size = integer(batch_size, "batch_size", 1)
        self.metric, self.batch_size = metric, batch_size
        self._update(x_real, real=True, name="x_real")

    def _update(self, x: torch.Tensor, real: bool, name: str) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] not in (1, 3) or len(x) < 2:
            raise ValueError(f"{name} must be [n >= 2, C in (1, 3), H, W], got {getattr(x, 'shape', type(x))}")
        for i in range(0, len(x), self.batch_size):
            batch = x[i : i + self.batch_size].clamp(0, 1)
            self.metric.update(batch.expand(-1, 3, -1, -1) if batch.shape[1] == 1 else batch, real=real)

    def __call__(self, x_fake: torch.Tensor) -> float:
        """The FID of ``x_fake`` ``[m, C, H, W]`` (m >= 2) against the real images."""
        self.metric.reset()  # keeps the real statistics (reset_real_features=False)
        self._update(x_fake, real=False, name="x_fake")
        return float(self.metric.compute())


def load_inception_fid(x_real: torch.Tensor, device=None, batch_size: int = 500):
    """An :class:`InceptionFID` against ``x_real``, or the reason it cannot run here.

    It needs ``torchmetrics`` with ``torch-fidelity`` (``pip install 'torchmetrics[image]'``, not a
    dependency of flowedu) and a download of the Inception weights on first use (Colab can; an offline
    machine cannot).

    Args:
        x_real: real images ``[n, C, H, W]`` in [0, 1] (their statistics are computed now).
        device: where the Inception network runs.
        batch_size: images per forward pass.

    Returns:
        ``(InceptionFID, None)`` when available, else ``(None, reason)``: one sentence saying what is
        missing and what to install.
    """
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as err:
        return None, (f"torchmetrics is not installed ({err.name or err}); install it with "
                      f"{INCEPTION_INSTALL} and re-run")
    try:
        metric = FrechetInceptionDistance(feature=2048, reset_real_features=False, normalize=True)
        metric = metric.to(device or "cpu")
        return InceptionFID(metric, x_real.to(device or "cpu"), batch_size), None
    except ModuleNotFoundError as err:
        return None, (f"torchmetrics needs {err.name or 'torch-fidelity'} for the Inception network; "
                      f"install it with {INCEPTION_INSTALL}")
    except (OSError, RuntimeError, ConnectionError) as err:  # most often: no network for the Inception weights
        return None, (f"the Inception network could not be built ({type(err).__name__}: {err}); it downloads "
                      "its weights on first use, which needs a network connection")
