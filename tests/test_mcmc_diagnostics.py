"""flowedu.hmc.diagnostics: split chains, ESS and split-R-hat, pinned to ArviZ's values (golden tests).

The golden values were computed by ArviZ 0.23.4 (``arviz.ess(x[:, :, d], method="mean")`` and
``arviz.rhat(x[:, :, d], method="split")``, NumPy 2.4.6) on the deterministic chains of
``golden_input`` below: ArviZ implements Vehtari et al. (2021) as Stan does, and its own tests pin it
to RStan's ``monitor.R``. The inputs come from an integer LCG, so every platform builds the same chains.
"""

import math

import numpy as np
import pytest

from flowedu import hmc


def golden_input(case: str):
    """Deterministic test chains [chains][draws][dim] as nested lists (integer LCG + Box-Muller + linear filter)."""
    chains, draws, coef, offsets, trend = {
        "ar1_positive": (4, 200, (0.9, 0.3), (0.0, 0.0, 0.0, 0.0), 0.0),
        "ar1_antithetic": (4, 150, (-0.3, -0.95), (0.0, 0.0, 0.0, 0.0), 0.0),
        "disagreeing_means": (4, 100, (0.5, 0.0), (0.0, 0.0, 0.0, 1.5), 0.0),
        "odd_draws_with_drift": (3, 101, (0.7, 0.2), (0.0, 0.0, 0.0), 2.0),
        "short": (2, 9, (0.4, -0.2), (0.0, 0.3), 0.0),
    }[case]
    state = 12345 + len(case)
    out = []
    for c in range(chains):
        chain, x = [], [0.0, 0.0]
        for t in range(draws):
            draw = []
            for d in range(2):
                state = (6364136223846793005 * state + 1442695040888963407) % 2**64
                u1 = ((state >> 11) + 0.5) / 2**53
                state = (6364136223846793005 * state + 1442695040888963407) % 2**64
                u2 = ((state >> 11) + 0.5) / 2**53
                noise = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)
                x[d] = coef[d] * x[d] + noise
                draw.append(x[d] + offsets[c] + trend * t / draws)
            chain.append(draw)
        out.append(chain)
    return out


# case: ((ESS theta_1, ESS theta_2), (split-R-hat theta_1, split-R-hat theta_2)), from ArviZ 0.23.4
GOLDEN = {
    "ar1_positive": ((12.336073264952258, 486.53801837620205), (1.2518308952405235, 0.999647957773208)),
    "ar1_antithetic": ((1042.8060828177731, 1666.890750230186), (0.9971097499736918, 0.9935072995949883)),
    "disagreeing_means": ((25.82604257083123, 14.382246902947099), (1.1259011268789978, 1.2209619959063962)),
    "odd_draws_with_drift": ((17.593094406524482, 11.079183601411634), (1.157000416210075, 1.208283121437307)),
    "short": ((19.265919722494797, 19.265919722494797), (1.2348612219570256, 0.9217481926823895)),
}


@pytest.mark.parametrize("case", sorted(GOLDEN))
def test_ess_and_split_rhat_match_arviz(case):
    x = np.array(golden_input(case))
    want_ess, want_rhat = GOLDEN[case]
    np.testing.assert_allclose(hmc.ess(x), want_ess, rtol=1e-8)
    np.testing.assert_allclose(hmc.split_rhat(x), want_rhat, rtol=1e-8)


def test_antithetic_chains_hit_stans_cap():
    # a = -0.95: tau-hat would be about 0.03; the cap 1 / log10(MN) makes ESS = MN log10(MN).
    x = np.array(golden_input("ar1_antithetic"))
    total = x.shape[0] * x.shape[1]
    assert hmc.ess(x)[1] == pytest.approx(total * math.log10(total), rel=1e-12)
    assert total < hmc.ess(x)[0] < total * math.log10(total)  # a = -0.3: antithetic, below the cap


def test_split_chains_halves_and_drops_the_middle_draw():
    x = np.arange(2 * 7 * 1, dtype=float).reshape(2, 7, 1)
    halves = hmc.split_chains(x)
    assert halves.shape == (4, 3, 1)
    np.testing.assert_array_equal(halves[:, :, 0], [[0, 1, 2], [7, 8, 9], [4, 5, 6], [11, 12, 13]])


def test_autocorrelation_of_one_ar1_chain():
    a, n = 0.6, 200_000  # X_t = a X_{t-1} + xi_t has r_t = a^t
    rng = np.random.default_rng(4)
    x = np.empty(n)
    x[0] = rng.standard_normal() / math.sqrt(1 - a**2)
    noise = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = a * x[t - 1] + noise[t]
    r = hmc.autocorrelation(x[None, :, None])[:5, 0]
    np.testing.assert_allclose(r, a ** np.arange(5), atol=0.01)


def test_ess_of_independent_draws_is_about_n():
    x = np.random.default_rng(0).standard_normal((4, 5000, 2))
    e = hmc.ess(x)
    assert e.shape == (2,)
    assert (np.abs(e / 20000 - 1) < 0.1).all(), e


def test_ess_of_an_ar1_chain_matches_its_closed_form():
    a, chains, n = 0.9, 4, 20000
    rng = np.random.default_rng(1)
    x = np.empty((chains, n))
    x[:, 0] = rng.standard_normal(chains) / math.sqrt(1 - a**2)
    noise = rng.standard_normal((chains, n))
    for t in range(1, n):
        x[:, t] = a * x[:, t - 1] + noise[:, t]
    expected = chains * n * (1 - a) / (1 + a)
    got = hmc.ess(x[:, :, None])[0]
    assert abs(got / expected - 1) < 0.15, (got, expected)


def test_split_ess_sees_a_drift_within_chains():
    # Each chain drifts from 0 to 3 (one chain, no between-chain disagreement to see): the split
    # halves disagree, so the ESS collapses, as split-R-hat rises.
    rng = np.random.default_rng(3)
    good = rng.standard_normal((4, 1000, 1))
    trend = good + np.linspace(0, 3, 1000)[None, :, None]
    assert hmc.ess(good)[0] > 3000
    assert hmc.ess(trend)[0] < 0.1 * hmc.ess(good)[0], hmc.ess(trend)


def test_split_rhat_detects_disagreeing_chains():
    rng = np.random.default_rng(2)
    good = rng.standard_normal((4, 1000, 1))
    assert hmc.split_rhat(good)[0] < 1.01
    bad = good + np.array([0.0, 0.0, 0.0, 2.0])[:, None, None]
    assert hmc.split_rhat(bad)[0] > 1.1
    trend = good + np.linspace(0, 3, 1000)[None, :, None]  # each chain drifts: the split catches it
    assert hmc.split_rhat(trend)[0] > 1.1


def test_pooled_mean_se_matches_the_spread_of_independent_chains():
    rng = np.random.default_rng(5)
    n_chains = 400
    lengths = rng.integers(20, 60, n_chains)
    chain = np.repeat(np.arange(n_chains), lengths)
    values = rng.standard_normal(len(chain)) + 3.0
    mean, se = hmc.pooled_mean_se(values, chain * 3)  # chain labels need not be 0..C-1
    assert mean == pytest.approx(values.mean())
    assert se == pytest.approx(1 / math.sqrt(len(values)), rel=0.15)  # independent draws: sd / sqrt(n)
    with pytest.raises(ValueError, match="at least 2 chains"):
        hmc.pooled_mean_se(values, np.zeros(len(values), dtype=int))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"samples must have shape \[chains, draws, dim\]"):
        hmc.ess(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="needs at least 4 draws"):
        hmc.split_rhat(np.zeros((2, 3, 1)))
    with pytest.raises(ValueError, match="must be finite"):
        hmc.split_rhat(np.full((2, 10, 1), np.nan))



def test_chains_that_never_move_give_nan_or_inf_not_an_error():
    # Every proposal rejected (as after a two-iteration warm-up that overshot the step size).
    stuck = np.ones((2, 10, 2))
    stuck[1, :, 1] = 2.0  # coordinate 2: constant chains that disagree
    assert np.isnan(hmc.ess(stuck)[0]) and np.isnan(hmc.split_rhat(stuck)[0])
    assert np.isposinf(hmc.split_rhat(stuck)[1])
    assert hmc.ess(stuck)[1] < 0.5 * 2 * 10  # 20 draws worth a handful
