"""Chapter: book/hmc.md — convergence diagnostics: split chains, effective sample size, split-R-hat.

Both diagnostics follow Vehtari, Gelman, Simpson, Carpenter & Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat", Bayesian Analysis 16(2), arXiv:1903.08008, on split
chains and without rank normalisation (ArviZ's ``ess(method="mean")`` and ``rhat(method="split")``,
which ``tests/test_mcmc_diagnostics.py`` matches to 1e-8). Notation (``book/hmc.md``): M chains of N
draws, autocorrelation r_t at lag t, tau = 1 + 2 sum_{t >= 1} r_t, ESS = M N / tau.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["autocorrelation", "ess", "pooled_mean_se", "split_chains", "split_rhat"]


def _as_draws(samples, name: str = "samples", min_draws: int = 4) -> np.ndarray:
    x = samples.detach().cpu().double().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples, float)
    if x.ndim != 3:
        raise ValueError(f"{name} must have shape [chains, draws, dim], got {x.shape}")
    if x.shape[1] < min_draws:
        raise ValueError(f"{name} needs at least {min_draws} draws per chain, got {x.shape[1]}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite")
    return x


def split_chains(samples) -> np.ndarray:
    """Cut every chain into its first and second half (dropping the middle draw if N is odd).

    Args:
        samples: ``[chains, draws, dim]`` (tensor or array), draws >= 4.

    Returns:
        ``[2 * chains, draws // 2, dim]`` NumPy array: the first halves, then the second halves.
    """
    x = _as_draws(samples)
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, -half:]], axis=0)


def _autocovariance(x: np.ndarray) -> np.ndarray:
    """Biased autocovariance (divided by N) along axis 1 of ``[chains, draws, dim]``, by FFT."""
    n = x.shape[1]
    centred = x - x.mean(axis=1, keepdims=True)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, n=size, axis=1)
    return np.fft.irfft(f * np.conj(f), n=size, axis=1)[:, :n] / n


def autocorrelation(chains: np.ndarray) -> np.ndarray:
    """Multi-chain autocorrelation r_t of ``[chains, draws, dim]`` (Vehtari et al., 2021, eq. 10).

    r_t = 1 - (W - mean_c v_{c,t}) / var_plus, with v_{c,t} the (biased) lag-t autocovariance of
    chain c, W the mean within-chain variance and var_plus = (N - 1)/N W + B/N, B/N the variance of
    the chain means (zero for one chain). Pass split chains for the book's ESS. Needs >= 2 draws.

    Returns:
        ``[draws, dim]``. r_0 is set to 1, as in Stan and ArviZ (the formula gives
        1 - W / (N var_plus), slightly below 1, because W uses N - 1 and v_{c,0} uses N); a
        coordinate that is the same in every draw of every chain gets NaN.
    """
    x = _as_draws(chains, "chains", min_draws=2)
    m, n, _ = x.shape
    acov = _autocovariance(x)  # v_{c,t}: [chains, draws, dim]
    w = acov[:, 0].mean(axis=0) * n / (n - 1)  # W, from the unbiased chain variances
    var_plus = w * (n - 1) / n + (x.mean(axis=1).var(axis=0, ddof=1) if m > 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = 1 - (w - acov.mean(axis=0)) / var_plus
    r[0] = np.where(var_plus > 0, 1.0, np.nan)  # NaN for a coordinate that never changes
    return r


def _tau(r: np.ndarray, n: int, total: int) -> float:
    """tau-hat from the autocorrelations r_0..r_{n-1} of one coordinate, as Stan
    and ArviZ compute it."""
    kept = np.zeros(n)
    kept[0], kept[1] = r[0], r[1]
    # Geyer's initial positive sequence: pairs Gamma_s = r_{2s} + r_{2s+1},
    # kept while positive.
    t, even, odd = 1, r[0], r[1]
    while t < n - 3 and even + odd > 0:
        even, odd = r[t + 1], r[t + 2]
        if even + odd >= 0:
            kept[t + 1], kept[t + 2] = even, odd
        t += 2
    last = t - 2  # the last lag of the last positive pair
    # Stan's refinement (not Geyer's): half weight for a positive even lag
    # after the last pair.
    if even > 0:
        kept[last + 1] = even
    # Geyer's initial monotone sequence: a pair larger than the one before
    # it is cut to that one.
    t = 1
    while t <= last - 2:
        if kept[t + 1] + kept[t + 2] > kept[t - 1] + kept[t]:
            kept[t + 1] = kept[t + 2] = (kept[t - 1] + kept[t]) / 2
        t += 2
    tau = -1 + 2 * kept[: last + 1].sum() + kept[last + 1 : last + 2].sum()
    # Stan's floor (not Geyer's): the ESS is at most log10(MN) times MN.
    return max(tau, 1 / np.log10(total))


def ess(samples) -> np.ndarray:
    """Effective sample size of the mean, per coordinate, on split chains (Vehtari et al., 2021).

    The M chains are split into 2M halves of N' = N // 2 draws (:func:`split_chains`), so a drift
    within a chain lowers the ESS as it raises split-R-hat. From their :func:`autocorrelation` r_t,
    tau-hat = -1 + 2 sum_{t <= 2s+1} r_t with Geyer's (1992) initial monotone sequence: pairs
    Gamma_s = r_{2s} + r_{2s+1} are summed while positive and made non-increasing. Two details are
    Stan's (and ArviZ's), not Geyer's: a positive r_{2s} right after the last positive pair is added
    with half weight, and tau-hat is capped from below at 1 / log10(2M N'). ESS = 2M N' / tau-hat.
    Independent draws give about M N; an AR(1) chain X_t = a X_{t-1} + xi_t gives about
    M N (1 - a) / (1 + a).

    Args:
        samples: ``[chains, draws, dim]`` (tensor or array), draws >= 4.

    Returns:
        ``[dim]`` NumPy array; NaN for a coordinate that never changes (every proposal rejected).
    """
    halves = split_chains(samples)
    m, n, dim = halves.shape
    r = autocorrelation(halves)  # [draws, dim]
    tau = np.array([_tau(r[:, i], n, m * n) if np.isfinite(r[0, i]) else np.nan for i in range(dim)])
    return m * n / tau


def split_rhat(samples) -> np.ndarray:
    """Split-R-hat per coordinate (Gelman et al., BDA3, section 11.4; Vehtari et al., 2021, eq. 4).

    Each chain is cut in two halves (:func:`split_chains`), giving 2M chains of N' draws;
    R-hat = sqrt(var_plus / W) with W the mean within-chain variance and
    var_plus = (N' - 1)/N' W + B/N', B/N' the variance of the chain means. Values above 1.01 signal
    chains that disagree (Vehtari et al., 2021).

    Args:
        samples: ``[chains, draws, dim]``, draws >= 4.

    Returns:
        ``[dim]`` NumPy array: +inf where every half is constant but the halves differ (no
        within-chain variation at all), NaN where every draw is the same.
    """
    halves = split_chains(samples)
    n = halves.shape[1]
    w = halves.var(axis=1, ddof=1).mean(axis=0)
    b_over_n = halves.mean(axis=1).var(axis=0, ddof=1)
    var_plus = w * (n - 1) / n + b_over_n
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(var_plus / w)


def pooled_mean_se(values, chain) -> tuple[float, float]:
    """Mean of ``values`` pooled over independent chains of unequal lengths, and its standard error.

    The pooled mean is sum_c S_c / sum_c n_c (S_c, n_c: the sum and count of chain c); its standard
    error comes from the spread of the chain means (the ratio estimator's),
    se^2 = sum_c (n_c / nbar)^2 (mean_c - mean)^2 / (C (C - 1)) over the C chains that recorded a
    value. It needs no autocorrelation model and suits ragged outputs such as
    :func:`flowedu.hmc.hmc_accepted_only`'s; it assumes the chains are independent.

    Args:
        values: ``[n]`` (tensor or array).
        chain: ``[n]`` integer chain index of each value; at least two distinct chains.

    Returns:
        ``(mean, se)``.
    """
    v = values.detach().cpu().double().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    c = chain.detach().cpu().numpy() if isinstance(chain, torch.Tensor) else np.asarray(chain)
    if v.ndim != 1 or c.shape != v.shape:
        raise ValueError(f"values and chain must both have shape [n], got {v.shape} and {c.shape}")
    if not np.isfinite(v).all():
        raise ValueError("values must be finite")
    _, index = np.unique(c, return_inverse=True)
    n_chains = int(index.max()) + 1 if len(index) else 0
    if n_chains < 2:
        raise ValueError(f"values must come from at least 2 chains, got {n_chains}")
    counts = np.bincount(index).astype(float)
    sums = np.bincount(index, weights=v)
    mean = sums.sum() / counts.sum()
    weights = counts / counts.mean()
    se = np.sqrt(np.sum((weights * (sums / counts - mean)) ** 2) / (n_chains * (n_chains - 1)))
    return float(mean), float(se)
