"""Chapter: book/gan.md — Scoring a generator's samples: a Fréchet classifier distance and a classifier score
for images, and a support check for low-dimensional samples.

:class:`SampleQuality` is the ``evaluate`` callback of :func:`flowedu.gan.train_gan`: it draws a fixed
set of latents once, and at every call scores the generator's samples of them with a
:class:`flowedu.metrics.ClassifierFeatures` network against the features of reference images.
:func:`fraction_far` asks how many points of one sample have no point of another nearby: model samples
far from every data point (samples off the data's support), or data points far from every sample
(data the model does not cover).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree

from flowedu.gan.models import sample_latent
from flowedu.metrics.images import ClassifierFeatures, frechet_distance_gaussians, inception_score
from flowedu.validate import integer

__all__ = ["SampleQuality", "fraction_far"]


def _gaussian(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[d]`` and unbiased covariance ``[d, d]`` of ``features`` ``[n, d]``, in float64 (as FCD fits them)."""
    a = features.detach().cpu().double().numpy()
    return a.mean(0), np.cov(a, rowvar=False).reshape(a.shape[1], a.shape[1])


class SampleQuality:
    """FCD and classifier score of ``n_samples`` generated images, on latents fixed at construction.

    ``fcd``: the Fréchet distance between the classifier's features of the samples and of
    ``x_reference`` (a squared W_2 between fitted Gaussians, :func:`flowedu.metrics.frechet_distance`);
    ``is``: the classifier score ``exp(E KL(p(y|x) ‖ p(y)))`` in ``[1, n_classes]`` (one split).
    Neither is comparable with Inception FID/IS.

    Args:
        classifier: a trained :class:`~flowedu.metrics.ClassifierFeatures`.
        x_reference: real images ``[m, C, H, W]`` whose features the samples are compared with (m >= 2).
        latent_dim: the generators' latent dimension.
        n_samples: images generated per evaluation (>= 2).
        seed: seed of the fixed latents.
        batch_size: images generated at once.
    """

    def __init__(self, classifier: ClassifierFeatures, x_reference: torch.Tensor, latent_dim: int,
                 n_samples: int = 500, seed: int = 0, batch_size: int = 1000):
        if not isinstance(classifier, ClassifierFeatures):
            raise ValueError(f"classifier must be a ClassifierFeatures, got {type(classifier).__name__}")
        for name, value, low in (("n_samples", n_samples, 2), ("batch_size", batch_size, 1),
                                 ("latent_dim", latent_dim, 1)):
            integer(value, name, low)
        self.classifier, self.latent_dim = classifier, latent_dim
        self.n_samples, self.batch_size = n_samples, batch_size
        self.reference_features = classifier.features(x_reference)
        if len(self.reference_features) < 2:
            raise ValueError("x_reference needs at least 2 images")
        # the reference Gaussian is fitted once (float64), not at every evaluation
        self._reference = _gaussian(self.reference_features)
        self.z = self.latents(seed)

    def latents(self, seed: int) -> torch.Tensor:
        """``[n_samples, latent_dim]`` latents drawn with ``seed``, on the classifier's device."""
        return sample_latent(self.n_samples, self.latent_dim, self.classifier.device,
                             torch.Generator().manual_seed(seed))

    @torch.no_grad()
    def samples(self, generator: torch.nn.Module, z: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's images of ``z`` (default: the fixed latents), ``[n, C, H, W]``, in eval mode."""
        was_training = generator.training
        generator.eval()
        z = self.z if z is None else z
        x = torch.cat([generator(zb) for zb in z.split(self.batch_size)])
        generator.train(was_training)
        return x

    def scores(self, x: torch.Tensor) -> dict:
        """``{"fcd": ..., "is": ...}`` of images ``x``."""
        features = self.classifier.features(x)
        if len(features) < 2:
            raise ValueError(f"x must hold at least 2 images, got {len(features)}")
        return {"fcd": frechet_distance_gaussians(*_gaussian(features), *self._reference),
                "is": inception_score(self.classifier.probs(x), splits=1)[0]}

    def __call__(self, generator: torch.nn.Module, seed: int | None = None) -> dict:
        """Score ``generator`` on the fixed latents, or on fresh ones drawn with ``seed``."""
        return self.scores(self.samples(generator, None if seed is None else self.latents(seed)))


def fraction_far(points, reference, radius: float) -> float:
    """The fraction of ``points`` with no point of ``reference`` within distance ``radius`` (Euclidean).

    With ``points`` = model samples and ``reference`` = data it measures samples off the data's
    support (a precision-type failure); with the roles swapped, data the model does not cover (a
    recall-type failure). Compare with two samples of the data, which give the value at this size.

    Args:
        points: ``[n, d]``; reference: ``[m, d]`` (tensors or arrays, finite).
        radius: > 0.

    Returns:
        A fraction in [0, 1].
    """
    a, b = (np.asarray(t.detach().cpu().double() if isinstance(t, torch.Tensor) else t, dtype=np.float64)
            for t in (points, reference))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) == 0 or len(b) == 0:
        raise ValueError(f"points and reference must be non-empty [n, d] with the same d, got {a.shape}, {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("points and reference must be finite")
    radius = float(radius)
    if not (np.isfinite(radius) and radius > 0):
        raise ValueError(f"radius must be a finite number > 0, got {radius}")
    distance = cKDTree(b).query(a)[0]
    return float((distance > radius).mean())
