"""GAN chapter benchmarks.

1. Fréchet distance: flowedu's symmetric-eigendecomposition square root vs scipy.linalg.sqrtm of Σ_a Σ_b.
   Reports the time of each and how far the two values are apart, for the feature sizes of our classifier
   (64) and of Inception-v3 (2048), with nearly singular covariances (fewer samples than features).
2. One training step of ``flowedu.gan.train_gan`` at the sizes of ``notebooks/gan_images.ipynb`` (8×8 quick,
   28×28 and 32×32 full): the measured step time on this device, the FLOPs of one step (counted by
   ``torch.utils.flop_counter``, which cannot follow R1's double backward: for R1 it reports the plain
   step) and the number of ATen operators dispatched per step. ``t4_estimate_ms`` turns these into an
   estimate for a Colab T4, for planning the notebook's full-mode budget:
   max(FLOPs / 4 TFLOP/s, operators × 4 µs), i.e. half the T4's 8.1 TFLOP/s fp32 peak, or the dispatch
   cost of a small-kernel step, whichever is larger (×1.35 for R1, the CPU-measured cost of its double
   backward). It is an estimate, not a measurement: run this file on a T4 to replace it.
"""

import time

import numpy as np
import torch
from scipy import linalg
from torch.utils.flop_counter import FlopCounterMode

from common import best_of, report
from flowedu.gan import DCGANCritic, DCGANGenerator, train_gan
from flowedu.metrics import frechet_distance_gaussians

T4_FLOPS = 4e12  # half of the T4's fp32 peak (8.1 TFLOP/s)
DISPATCH_S = 4e-6  # per ATen operator, a small-kernel GPU step being launch-bound
R1_FACTOR = 1.35  # R1's double backward, step time with R1 / without, measured on a CPU


def scipy_fd(mu_a, cov_a, mu_b, cov_b):
    root = linalg.sqrtm(cov_a @ cov_b)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root.real))
    return value, float(np.abs(root.imag).max())


def measure_fd(d: int, n: int, repeats: int) -> None:
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


def measure_step(shape, latent_dim: int, width: int, reg: str, n_steps: int) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    x = torch.rand(512, *shape, device=device)
    generator = DCGANGenerator(latent_dim, shape, width).to(device)
    critic = DCGANCritic(shape, width).to(device)
    kwargs = {"loss": "jsd", "reg": reg, "gamma": 1.0, "progress": False}
    plain = {**kwargs, "reg": "none"}
    with FlopCounterMode(display=False) as counter:
        train_gan(generator, critic, x, 1, **plain)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        train_gan(generator, critic, x, 1, **kwargs)
    operators = sum(e.count for e in prof.key_averages() if e.key.startswith("aten::"))
    train_gan(generator, critic, x, 3, **kwargs)  # warm-up
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    train_gan(generator, critic, x, n_steps, **kwargs)
    if device == "cuda":
        torch.cuda.synchronize()
    step_ms = 1000 * (time.perf_counter() - start) / n_steps
    flops = counter.get_total_flops()
    t4_ms = 1000 * max(flops / T4_FLOPS, operators * DISPATCH_S) * (R1_FACTOR if reg == "r1" else 1.0)
    report("gan.train_step", image_shape=list(shape), width=width, reg=reg, batch=64,
           gflop_per_step=round(flops / 1e9, 2), aten_operators=operators,
           measured_ms=round(step_ms, 1), t4_estimate_ms=round(t4_ms, 1))


measure_fd(64, 500, repeats=10)
measure_fd(2048, 2000, repeats=1)
for shape, latent_dim, width, n_steps in (((1, 8, 8), 32, 32, 50), ((1, 28, 28), 64, 64, 10),
                                          ((3, 32, 32), 128, 128, 5)):
    for reg in ("none", "r1"):
        measure_step(shape, latent_dim, width, reg, n_steps)
