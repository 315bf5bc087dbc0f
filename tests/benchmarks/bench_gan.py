"""Fréchet distance: flowedu's symmetric-eigendecomposition square root vs scipy.linalg.sqrtm of Σ_a Σ_b.

Reports the time of each and how far the two values are apart, for the feature sizes of our classifier
(64) and of Inception-v3 (2048), with nearly singular covariances (fewer samples than features).
"""

import numpy as np
from scipy import linalg

from common import best_of, report
from flowedu.metrics import frechet_distance_gaussians


def scipy_fd(mu_a, cov_a, mu_b, cov_b):
    root = linalg.sqrtm(cov_a @ cov_b)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))
    return value, float(np.abs(root.imag).max())


def measure(d: int, n: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.1
    mu_a, mu_b, cov_a, cov_b = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ours = frechet_distance_gaussians(mu_a, cov_a, mu_b, cov_b)
    theirs, imag = scipy_fd(mu_a, cov_a, mu_b, cov_b)
    t_ours = best_of(lambda: frechet_distance_gaussians(mu_a, cov_a, mu_b, cov_b), repeats=repeats, warmup=0)
    t_scipy = best_of(lambda: scipy_fd(mu_a, cov_a, mu_b, cov_b), repeats=repeats, warmup=0)
    report("gan.frechet_distance_vs_scipy_sqrtm", dim=d, n=n, flowedu_s=round(t_ours, 4),
           scipy_s=round(t_scipy, 4), flowedu_value=round(ours, 6), scipy_value=round(theirs, 6),
           scipy_max_imag=imag)


measure(64, 500, repeats=10)
measure(2048, 2000, repeats=1)
